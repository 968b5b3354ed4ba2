"""What the Dask tests send to the workers, importable there by its own name.

A worker process unpickles a class or function of a test by importing its module,
from the test process's ``sys.path``; in a whole-suite run the repository's root
comes first there, so a ``from conftest import ...`` would find the top-level
``conftest.py`` rather than ``tests/conftest.py``. This module imports neither.
"""

from __future__ import annotations

import os

from idc_sklearn import MLBNInceptionClassifier

# The pids of the processes that unpickled a CountedClassifier: in a worker, its
# own list.
LOADS: list[int] = []


class CountedClassifier(MLBNInceptionClassifier):
    """The MLBN estimator, counting in each process how often it is unpickled."""

    def __setstate__(self, state):
        LOADS.append(os.getpid())
        super().__setstate__(state)


def loads() -> int:
    """Run on a worker (``client.run``): how often the model was unpickled there."""
    return len(LOADS)


def plugin_names(dask_worker) -> list[str]:
    """Run on a worker: the names of its plugins."""
    return sorted(dask_worker.plugins)


def class_name(model) -> str:
    """Run on a worker with the model sent along with the task."""
    return type(model).__name__

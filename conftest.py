"""The package's doctests (``--doctest-modules``): an example that imports an
optional dependency (``accelerate``, the slides extra...) is skipped, with the
reason, where that dependency is not installed, so a base install passes."""

from __future__ import annotations

import ast
import importlib.util

import pytest

# A module that imports an optional dependency at its top cannot even be imported
# for its doctests where that dependency is absent. _cluster.py (dask.distributed,
# the cluster extra) has no examples; its tests, tests/test_wholeslide_cohort.py,
# skip with the reason.
collect_ignore = (
    []
    if importlib.util.find_spec("distributed")
    else ["idc_sklearn/wholeslide/_cluster.py"]
)


def imported_modules(source: str) -> set[str]:
    """The top-level modules the ``import`` statements of ``source`` name."""
    try:
        tree = ast.parse(source)
    except SyntaxError:  # a continuation line alone; doctest reports real errors
        return set()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def pytest_collection_modifyitems(config, items):
    for item in items:
        test = getattr(item, "dtest", None)  # a doctest's examples (DoctestItem)
        if test is None:
            continue
        needed = set().union(*(imported_modules(e.source) for e in test.examples))
        absent = sorted(n for n in needed if importlib.util.find_spec(n) is None)
        if absent:
            reason = f"{', '.join(absent)} is absent: the example imports it"
            item.add_marker(pytest.mark.skip(reason=f"{reason} (an optional extra)"))

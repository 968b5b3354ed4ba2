"""Shared fixtures: seeding, tiny estimators and synthetic patches."""

from __future__ import annotations

import contextlib
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
IDC_SAMPLE = SHARED_DATA / "idc_sample"
CRUZ_ROA_SPLIT = SHARED_DATA / "cruz_roa_split"

# A tiny MLBN network on 16x16 patches: a fit takes well under a second.
TINY = {
    "filters": (3, 3),
    "head_units": (8,),
    "patch_shape": (16, 16, 3),
    "max_epochs": 2,
    "batch_size": 16,
    "verbose": 0,
    "random_state": 0,
}


@pytest.fixture(autouse=True)
def _seed_everything():
    random.seed(0)
    np.random.seed(0)  # noqa: NPY002 - seeds legacy global-RNG users
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def idc_sample_root() -> Path:
    if not IDC_SAMPLE.is_dir():
        pytest.skip(f"the real IDC sample is absent: {IDC_SAMPLE} does not exist")
    return IDC_SAMPLE


@contextlib.contextmanager
def torch_threads(n: int):
    """torch computes with ``n`` threads inside, as a Dask worker of one thread does:
    the same float results (the thread count orders the sums in convolutions)."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def distributed():
    """dask.distributed (the dev and cluster extras), or the Dask tests skip."""
    return pytest.importorskip(
        "distributed", reason="dask.distributed is absent (the dev or cluster extra)"
    )


@pytest.fixture(scope="module")
def dask_client(distributed):
    """A client of a LocalCluster of two worker processes, one thread each.

    One per test module (a few seconds, most of it the workers importing torch),
    closed at its end. Processes, not threads, as on a real cluster: what a task
    needs is pickled to its worker and back.
    """
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            worker_dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def make_patches(n=80, size=16, n_patients=8, seed=0):
    """Learnable patches: IDC patches (label 1) carry a dark square in the middle."""
    rng = np.random.default_rng(seed)
    y = np.tile([0, 1], n // 2)
    X = rng.integers(120, 256, size=(n, size, size, 3), dtype=np.uint8)
    q = size // 4
    X[y == 1, q : size - q, q : size - q] //= 4
    groups = np.repeat([f"p{i}" for i in range(n_patients)], n // n_patients)
    return X, y, groups


@pytest.fixture(scope="module")
def patches():
    return make_patches()


def tiny_unsplit(**kwargs):
    """A tiny MLBN estimator that trains on all it gets (no validation split)."""
    from idc_sklearn import MLBNInceptionClassifier

    return MLBNInceptionClassifier(**{**TINY, "train_split": None, **kwargs})


@pytest.fixture(scope="module")
def patches48():
    return make_patches(n=48)


@pytest.fixture(scope="module")
def fitted_unsplit(patches48):
    """``tiny_unsplit`` fitted for one epoch on ``patches48``."""
    X, y, _ = patches48
    return tiny_unsplit(max_epochs=1).fit(X, y)


requires_cuda = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU; none is present"
)


class Crash(Callback):
    """Fails at the end of one epoch, as a crash in the middle of a fit."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epoch:
            raise RuntimeError("crash")

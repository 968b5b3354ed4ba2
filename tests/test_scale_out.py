"""Scale-out on existing engines: GridSearchCV on Dask, training through Accelerate.

The Dask tests start one two-process ``LocalCluster`` for the module (a few seconds,
most of it the workers importing torch) and close it at the end. Processes, not
threads: a seeded fit seeds torch's global generator, so two fits at once in one
process would draw from it in turn, and the results would not be the local run's;
and a single worker thread would not test Dask, as joblib runs the tasks of a
one-core backend on the calling thread.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
from types import SimpleNamespace

import joblib
import numpy as np
import pytest
import sklearn
from conftest import REPO_ROOT, make_patches, torch_threads
from conftest import TINY as TINY_NETWORK
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, GroupKFold

from idc_sklearn import (
    AcceleratedMLBNInceptionClassifier,
    MLBNInceptionClassifier,
    PatientValidSplit,
)


# Dask and Accelerate are optional (the dev extra): each half of the module skips,
# saying why, where its engine is absent, and the other half runs (the Dask
# fixtures, distributed and dask_client, are conftest's).
@pytest.fixture(scope="module")
def accelerate():
    return pytest.importorskip(
        "accelerate", reason="accelerate is absent (the dev extra)"
    )


# conftest's tiny network, trained on everything (no early stopping) unless a test
# gives a train_split.
TINY = {**TINY_NETWORK, "train_split": None}
GRID = {"lr": [1e-3, 1e-2]}


@contextlib.contextmanager
def _metadata_routing():
    before = sklearn.get_config()["enable_metadata_routing"]
    sklearn.set_config(enable_metadata_routing=True)
    try:
        yield
    finally:
        sklearn.set_config(enable_metadata_routing=before)


def _search(estimator, X, y, groups, *, dask: bool):
    # Log-loss tells the two learning rates apart where accuracy would tie at 1.
    search = GridSearchCV(
        estimator,
        GRID,
        cv=GroupKFold(2),
        scoring="neg_log_loss",
        refit=False,
        error_score="raise",
    )
    backend = joblib.parallel_backend("dask") if dask else contextlib.nullcontext()
    with backend, torch_threads(1):
        return search.fit(X, y, groups=groups)


def test_grid_search_on_dask_equals_the_local_run(dask_client, distributed):
    X, y, groups = make_patches(n=64)
    local = _search(MLBNInceptionClassifier(**TINY), X, y, groups, dask=False)
    with distributed.get_task_stream(dask_client) as tasks:
        remote = _search(MLBNInceptionClassifier(**TINY), X, y, groups, dask=True)
    # The fits ran on the workers, pickled there and back.
    workers = {task["worker"] for task in tasks.data}
    assert workers and workers <= set(dask_client.ncores())

    assert remote.cv_results_["params"] == local.cv_results_["params"]
    for key in local.cv_results_:
        if "test_score" in key:
            np.testing.assert_array_equal(
                remote.cv_results_[key], local.cv_results_[key], err_msg=key
            )
    assert remote.best_params_ == local.best_params_
    # The comparison has teeth: the two learning rates score differently.
    assert len(set(local.cv_results_["mean_test_score"])) == 2


def _folds_keeping(patient, groups):
    """GroupKFold(2) over the other patients, ``patient`` on every training side."""
    kept = np.flatnonzero(groups == patient)
    rest = np.flatnonzero(groups != patient)
    return [
        (np.sort(np.concatenate([rest[train], kept])), rest[test])
        for train, test in GroupKFold(2).split(rest, groups=groups[rest])
    ]


def test_groups_reach_the_early_stopping_split_through_dask(dask_client):
    X, y, groups = make_patches(n=64)
    # Holding out patient p0 is only possible where groups reach the split.
    clf = MLBNInceptionClassifier(
        **{**TINY, "train_split": PatientValidSplit(valid_groups=["p0"])}
    )
    search = GridSearchCV(
        clf, GRID, cv=_folds_keeping("p0", groups), refit=False, error_score="raise"
    )
    with _metadata_routing():
        # Each fit on a worker holds p0 out for early stopping, or raises.
        with joblib.parallel_backend("dask"):
            search.fit(X, y, groups=groups)
        assert np.isfinite(search.cv_results_["mean_test_score"]).all()

    # The control: with routing off, GridSearchCV gives groups to the folds only,
    # and the split says it needs them.
    with (
        joblib.parallel_backend("dask"),
        pytest.raises(ValueError, match="valid_groups needs the patient"),
    ):
        search.fit(X, y, groups=groups)


# -- data-parallel training through Accelerate (one CPU process here) --


@pytest.fixture(scope="module")
def fitted_pair(accelerate):
    """The accelerated and the plain estimator, fitted alike on one CPU process."""
    X, y, groups = make_patches(n=64)
    params = {**TINY, "train_split": PatientValidSplit(0.25)}
    accelerated = AcceleratedMLBNInceptionClassifier(
        accelerator=accelerate.Accelerator(cpu=True), **params
    ).fit(X, y, groups=groups)
    plain = MLBNInceptionClassifier(**params).fit(X, y, groups=groups)
    return accelerated, plain, X


def test_accelerated_fit_equals_the_plain_estimator_on_one_process(fitted_pair):
    accelerated, plain, X = fitted_pair
    assert accelerated.device_ == "cpu"
    assert accelerated.get_params()["device"] == "auto"
    # Unwrapped after training: the plain network, as the plain estimator's.
    assert type(accelerated.module_) is type(plain.module_)
    proba = accelerated.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_allclose(proba, plain.predict_proba(X), atol=1e-6)
    assert accelerated.history[:, "valid_bacc"] == plain.history[:, "valid_bacc"]
    np.testing.assert_array_equal(accelerated.predict(X), plain.predict(X))


def test_accelerated_clones_and_pickles(fitted_pair):
    accelerated, _, X = fitted_pair
    twin = clone(accelerated)
    assert twin.accelerator is accelerated.accelerator  # one per process
    assert twin.get_params()["filters"] == accelerated.get_params()["filters"]
    assert not hasattr(twin, "module_")

    loaded = pickle.loads(pickle.dumps(accelerated))
    np.testing.assert_array_equal(loaded.predict_proba(X), accelerated.predict_proba(X))


def test_accelerated_refuses_what_the_accelerator_does(patches, accelerate):
    X, y, _ = patches
    cpu = accelerate.Accelerator(cpu=True)
    with pytest.raises(ValueError, match="device must be \"auto\".*got 'cpu'"):
        AcceleratedMLBNInceptionClassifier(accelerator=cpu, device="cpu", **TINY).fit(
            X, y
        )
    with pytest.raises(ValueError, match='mixed_precision="fp16"'):
        AcceleratedMLBNInceptionClassifier(
            accelerator=cpu, precision="float16", **TINY
        ).fit(X, y)


def test_several_processes_need_a_seed_to_resample_alike(patches):
    X, y, _ = patches
    # What fit reads of an accelerator before any work: two processes.
    two = SimpleNamespace(device_placement=True, num_processes=2)
    clf = AcceleratedMLBNInceptionClassifier(
        accelerator=two, **{**TINY, "random_state": None}
    )
    with pytest.raises(ValueError, match="random_state must be set.*2 processes"):
        clf.fit(X, y)


TWO_PROCESSES = """
import sys
import numpy as np
import torch
from accelerate import Accelerator
sys.path.insert(0, {tests!r})
from conftest import make_patches
from idc_sklearn import AcceleratedMLBNInceptionClassifier, PatientValidSplit

accelerator = Accelerator(cpu=True)
X, y, groups = make_patches(n=96)
clf = AcceleratedMLBNInceptionClassifier(
    accelerator=accelerator, filters=(3, 3), head_units=(4,), patch_shape=(16, 16, 3),
    max_epochs=3, batch_size=8, verbose=0, random_state=0,
    train_split=PatientValidSplit(0.25),
).fit(X, y, groups=groups)
state = {{k: v.numpy() for k, v in clf.module_.state_dict().items() if v.ndim}}
np.savez(
    {out!r} + f"/rank{{accelerator.process_index}}.npz",
    n_processes=accelerator.num_processes,
    proba=clf.predict_proba(X),
    valid_bacc=clf.history[:, "valid_bacc"],
    **state,
)
"""


@pytest.mark.slow
def test_two_cpu_processes_train_one_model(tmp_path, accelerate):
    """torchrun starts 2 CPU processes (gloo): every rank ends with the same model."""
    script = tmp_path / "train.py"
    script.write_text(
        TWO_PROCESSES.format(tests=str(REPO_ROOT / "tests"), out=str(tmp_path))
    )
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    torchrun = [sys.executable, "-m", "torch.distributed.run"]
    subprocess.run(
        [*torchrun, "--standalone", "--nproc_per_node", "2", str(script)],
        check=True,
        cwd=REPO_ROOT,
        env=env,
        timeout=300,
    )
    rank0, rank1 = (np.load(tmp_path / f"rank{rank}.npz") for rank in (0, 1))
    assert int(rank0["n_processes"]) == 2
    # Predictions are gathered: every patch, on every rank.
    assert rank0["proba"].shape == (96, 2)
    for key in rank0.files:
        np.testing.assert_array_equal(rank0[key], rank1[key], err_msg=key)
    # BatchNorm statistics averaged over the ranks, weights kept in step by DDP.
    assert any("running_var" in key for key in rank0.files)

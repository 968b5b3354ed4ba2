"""``predict_proba`` from 8 threads at once on one fitted model: what one thread gets.

A web service or a ``joblib`` threading backend shares one fitted model between
threads. Each thread here predicts its own patches, all starting together (a
barrier), over several rounds; every answer must equal, exactly, the answer the
same call gives alone.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from conftest import TINY, make_patches

from idc_sklearn import MLBNInceptionClassifier, make_baseline

N_THREADS = 8
ROUNDS = 3
PATCH = TINY["patch_shape"]


def _patches(seed: int, n: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *PATCH), dtype=np.uint8)


@pytest.fixture(scope="module")
def training():
    X, y, _ = make_patches(n=48, size=PATCH[0])
    return X, y


@pytest.fixture(scope="module")
def mlbn(training):
    return MLBNInceptionClassifier(
        **{**TINY, "max_epochs": 1, "batch_size": 8, "train_split": None}
    ).fit(*training)


@pytest.fixture(scope="module")
def handcrafted(training):
    return make_baseline("color-logreg", patch_shape=PATCH).fit(*training)


def _concurrent(predict, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Call ``predict`` on each input, each in its own thread, all at once."""
    barrier = threading.Barrier(len(inputs))

    def call(X):
        barrier.wait()
        return predict(X)

    with ThreadPoolExecutor(max_workers=len(inputs)) as pool:
        return list(pool.map(call, inputs))


@pytest.mark.parametrize("which", ["mlbn", "handcrafted"])
def test_predict_proba_from_8_threads_equals_one_thread(which, request):
    model = request.getfixturevalue(which)
    # Sizes differ so that threads are in different batches at any moment; 11
    # patches make two batches of 8 and 3 for the CNN.
    inputs = [_patches(100 + i, 3 + i) for i in range(N_THREADS)]
    alone = [model.predict_proba(X) for X in inputs]
    for _ in range(ROUNDS):
        together = _concurrent(model.predict_proba, inputs)
        for expected, got in zip(alone, together, strict=True):
            np.testing.assert_array_equal(got, expected)


def test_the_same_patches_from_8_threads(mlbn):
    X = _patches(7, 20)
    alone = mlbn.predict_proba(X)
    for got in _concurrent(mlbn.predict_proba, [X] * N_THREADS):
        np.testing.assert_array_equal(got, alone)


def test_threads_leave_the_model_in_evaluation_mode(mlbn):
    _concurrent(mlbn.predict_proba, [_patches(i, 5) for i in range(N_THREADS)])
    assert not mlbn.module_.training

"""The AdaBN screen (scripts/experiments/adabn_screen.py): each patient predicted
with BatchNorm statistics measured on its own patches, the trained ones restored."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY, make_patches

from idc_sklearn import MLBNInceptionClassifier

EXPERIMENTS = Path(__file__).resolve().parents[1] / "scripts" / "experiments"


@pytest.fixture(scope="module")
def screen():
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(EXPERIMENTS))
        yield importlib.import_module("adabn_screen")


@pytest.fixture(scope="module")
def fitted():
    X, y, groups = make_patches(n=48)
    model = MLBNInceptionClassifier(
        **{**TINY, "filters": (4, 4), "max_epochs": 1, "train_split": None}
    ).fit(X, y)
    return model.set_params(inference="eager"), X, groups


def _state(model):
    return {k: v.clone() for k, v in model.module_.state_dict().items()}


def test_alpha_zero_is_the_trained_network(screen, fitted):
    model, X, groups = fitted
    before = _state(model)
    proba = screen.adapted_proba(model, X, groups, alpha=0.0)
    np.testing.assert_allclose(proba, model.predict_proba(X)[:, 1], atol=1e-6)
    for key, value in _state(model).items():
        torch.testing.assert_close(value, before[key])


def test_each_patient_gets_its_own_statistics(screen, fitted):
    model, X, groups = fitted
    before = _state(model)
    adapted = screen.adapted_proba(model, X, groups, alpha=1.0)
    assert not np.allclose(adapted, model.predict_proba(X)[:, 1], atol=1e-4)
    # One patient alone is adapted to itself only: its probabilities do not
    # depend on the other patients in the call.
    mine = groups == groups[0]
    alone = screen.adapted_proba(model, X[mine], groups[mine], alpha=1.0)
    np.testing.assert_allclose(alone, adapted[mine], atol=1e-5)
    for key, value in _state(model).items():
        torch.testing.assert_close(value, before[key])

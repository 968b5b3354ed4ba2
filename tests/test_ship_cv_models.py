"""scripts/build/ship_cv_models.py: the per-patient and context cards' settings are
chosen on the pooled out-of-fold scores, and scored with the other folds' choice."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score

from idc_sklearn import adapt_to_patients, smooth_neighbours

BUILD = Path(__file__).resolve().parents[1] / "scripts" / "build"


@pytest.fixture(scope="module")
def ship():
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(BUILD))
        yield importlib.import_module("ship_cv_models")


def _pooled(seed):
    """Ten patients on 6x6 grids, IDC in a block; noisy scores of two models."""
    rng = np.random.default_rng(seed)
    side, n_patients = 6, 10
    groups = np.repeat([f"p{i}" for i in range(n_patients)], side * side)
    cells = np.tile(np.arange(side * side), n_patients)
    xy = np.column_stack([50 * (cells % side), 50 * (cells // side)]).astype(float)
    # Each patient's IDC block has its own size: the shares differ.
    size = np.repeat(rng.integers(1, 5, n_patients), side * side)
    y = ((xy[:, 0] < 50 * size) & (xy[:, 1] < 150)).astype(int)
    fold = np.repeat(np.arange(5), len(y) // 5)

    def noisy(scale):
        return np.clip(0.5 + 0.3 * (y - 0.5) + rng.normal(0, scale, len(y)), 0, 1)

    return xy, groups, fold, y, noisy(0.2), noisy(0.3)


def test_the_context_card_chooses_its_pair_on_every_out_of_fold_score(ship):
    pooled, coords = {}, None
    for seed in (0, 1):
        xy, groups, fold, y, run, hgb = _pooled(seed)
        pooled["run", seed] = (fold, y, run, groups)
        pooled[ship.REFERENCE, seed] = (fold, y, hgb, groups)
        coords = (xy, groups)
    made = ship.patient_context(pooled, "run", [], coords)
    prior = made["per_patient"]
    assert prior["neighbour_weight"] in ship.NEIGHBOUR_WEIGHTS
    assert prior["strength"] in ship.STRENGTHS and prior["stride"] == 50.0

    def pooled_score(weight, strength):
        calls = [
            adapt_to_patients(
                smooth_neighbours(pooled["run", s][2], xy, groups, weight=weight),
                groups,
                strength=strength,
            )
            > 0.5
            for s in (0, 1)
        ]
        y = np.concatenate([pooled["run", s][1] for s in (0, 1)])
        return balanced_accuracy_score(y, np.concatenate(calls))

    best = max(
        pooled_score(w, s) for w in ship.NEIGHBOUR_WEIGHTS for s in ship.STRENGTHS
    )
    assert pooled_score(prior["neighbour_weight"], prior["strength"]) == best
    cv = made["cross_validation"]
    assert cv["run"] == "run per patient & neighbours" and cv["patients"] == 10
    for seed in cv["seeds"].values():
        for lead in ("lead_over_features-hgb", "lead_over_features-hgb_same_context"):
            low, high = seed[f"{lead}_95"]
            assert low <= seed[lead] <= high
        assert sorted(seed["chosen_by_fold"]) == list(range(5))
    with pytest.raises(AssertionError):  # positions of other patches
        ship.patient_context(pooled, "run", [], (xy, groups[::-1]))

"""Screen: a logistic regression on each patch's context, against the fixed mixing.

``mlbn-hgb-context`` mixes each patch's probability with its neighbours' at a fixed
weight and then adapts it to its patient's share; two settings, chosen on the
other folds. A stacking could learn the combination instead. On ``cv_select``'s
out-of-fold probabilities (``GroupKFold(5)`` over the 111 training and validation
patients, every held-out patch, positions from the archive's file names), for
each model and seed:

- ``fixed``: ``cv_select.with_neighbours(prior=True)``, the shipped form;
- ``stacked``: a logistic regression (``class_weight="balanced"``, so 0.5 is the
  balanced operating point) fitted on the other four folds' patches, on each
  patch's log-odds, its neighbours' Gaussian-weighted mean log-odds (its own
  where it has none) and whether it has any, and its patient's IDC share
  estimated by ``adapt_to_patients`` (strength 300), as log-odds. No held-out
  label is read: every feature comes from the model's own probabilities.

Each against ``fixed`` and against features-hgb, paired bootstrap over patients. ::

    python scripts/experiments/context_stacking_screen.py
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from cv_select import (
    REFERENCE,
    ensembles,
    pooled_coords,
    pooled_predictions,
    with_neighbours,
)
from scipy.special import logit
from shared_patients import CACHE, REPO_ROOT
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from idc_sklearn import adapt_to_patients, paired_bootstrap, smooth_neighbours

MODELS = ("base & hgb (mean)", REFERENCE, "base")
EDGE = 1e-4


def context_features(proba, groups, xy) -> np.ndarray:
    """Per patch: its log-odds, its neighbours' mean log-odds, whether it has
    neighbours, and its patient's estimated share as log-odds."""
    p = np.clip(proba, EDGE, 1 - EDGE)
    neighbours = smooth_neighbours(p, xy, groups, weight=1.0)
    has = neighbours != p  # a patch without neighbours keeps its own
    _, shares = adapt_to_patients(p, groups, strength=300, return_priors=True)
    share = np.array([shares[g] for g in groups])
    return np.column_stack(
        [logit(p), logit(np.clip(neighbours, EDGE, 1 - EDGE)), has, logit(share)]
    )


def stacked(fold, y, features) -> np.ndarray:
    out = np.empty(len(y))
    for k in np.unique(fold):
        other = fold != k
        model = make_pipeline(
            StandardScaler(), LogisticRegression(class_weight="balanced")
        )
        model.fit(features[other], y[other])
        out[~other] = model.predict_proba(features[~other])[:, 1]
    return out


def _paired(y, a, b, groups) -> str:
    r = paired_bootstrap(y, (a > 0.5).astype(int), (b > 0.5).astype(int), groups)
    return f"{r['difference']:+.3f} [{r['low']:+.3f}, {r['high']:+.3f}]"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(REPO_ROOT / "results" / "cv_select"))
    parser.add_argument("--reuse", default=str(REPO_ROOT / "results" / "split_cv"))
    parser.add_argument("--cache", default=str(CACHE))
    args = parser.parse_args(argv)
    pooled = pooled_predictions(Path(args.out), Path(args.reuse))
    pooled.update(ensembles(pooled))
    xy, coords_groups = pooled_coords(Path(args.cache))
    print(
        "| model | seed | fixed | stacked | ROC AUC fixed / stacked "
        "| stacked - fixed | stacked - features-hgb |"
    )
    print("|---|---|---|---|---|---|---|")
    for model in MODELS:
        for seed in (0, 1):
            fold, y, proba, groups = pooled[model, seed]
            np.testing.assert_array_equal(groups, coords_groups)
            fixed, _ = with_neighbours(fold, y, proba, groups, xy, prior=True)
            learned = stacked(fold, y, context_features(proba, groups, xy))
            hgb = pooled[REFERENCE, seed][2]
            print(
                f"| {model} | {seed} "
                f"| {balanced_accuracy_score(y, fixed > 0.5):.3f} "
                f"| {balanced_accuracy_score(y, learned > 0.5):.3f} "
                f"| {roc_auc_score(y, fixed):.3f} / {roc_auc_score(y, learned):.3f} "
                f"| {_paired(y, learned, fixed, groups)} "
                f"| {_paired(y, learned, hgb, groups)} |",
                flush=True,
            )


if __name__ == "__main__":
    main()

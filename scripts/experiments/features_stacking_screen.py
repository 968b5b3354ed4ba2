"""Screen: features-hgb with the network's out-of-fold log-odds as one more feature.

On ``cv_select``'s folds (``GroupKFold(5)`` over the 111 training and validation
patients), with the out-of-fold probabilities of ``base`` (``results/split_cv``):

- ``hgb60``: features-hgb's classifier on the other folds' patches, at most 60 per
  patient (the protocol's budget; it should reproduce ``features-hgb``);
- ``hgbAll``: the same on every patch of the other folds (up to 300 per patient);
- ``stack60`` / ``stackAll``: the same with the network's log-odds as a 236th
  feature (a stacking with the features passed through);
- ``mean`` and ``mean-hgbAll``: the plain means of the network's and the features'
  probabilities, for comparison.

Each against ``features-hgb`` with a paired bootstrap over patients. The features
are computed once (about 50 s a core) and cached in ``--cache``. ::

    python scripts/experiments/features_stacking_screen.py
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from cv_select import pooled_predictions
from recipe_search import load_split_patches
from shared_patients import CACHE, REPO_ROOT, cap_per_patient
from sklearn.base import clone
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from sklearn.model_selection import GroupKFold

from idc_sklearn import make_baseline, paired_bootstrap


def features(cache: Path):
    """features-hgb's features of every held-out patch, cached."""
    path = cache / "split_features.npz"
    if not path.exists():
        X, y, groups, _, _ = load_split_patches(cache)
        union = make_baseline("features-hgb", n_jobs=1).named_steps["features"]
        F = union.fit(X[:10]).transform(X)  # the extractors learn nothing from data
        np.savez(path, F=F.astype(np.float32), y=y, groups=groups)
    saved = np.load(path)
    return saved["F"], saved["y"], saved["groups"]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", default=str(CACHE))
    parser.add_argument("--cv", default=str(REPO_ROOT / "results" / "cv_select"))
    parser.add_argument("--reuse", default=str(REPO_ROOT / "results" / "split_cv"))
    args = parser.parse_args(argv)
    F, y, groups = features(Path(args.cache))
    folds = list(GroupKFold(5).split(F, y, groups))
    order = np.concatenate([test for _, test in folds])  # the pooled rows' order
    pooled = pooled_predictions(Path(args.cv), Path(args.reuse))
    head = make_baseline("features-hgb", n_jobs=1)[1:]  # binning and the classifier
    for seed in (0, 1):
        _, y_pooled, base, g_pooled = pooled["base", seed]
        reference = pooled["features-hgb", seed][2]
        assert np.array_equal(y[order], y_pooled)
        assert np.array_equal(groups[order], g_pooled)
        network = np.empty(len(y))
        network[order] = base
        clipped = np.clip(network, 1e-6, 1 - 1e-6)
        Z = np.column_stack([F, np.log(clipped / (1 - clipped))])
        made = {name: np.empty(len(y)) for name in ("hgb60", "hgbAll", "stack60")}
        made["stackAll"] = np.empty(len(y))
        for train, test in folds:
            capped = train[cap_per_patient(y[train], groups[train], 60, seed)]
            for name, rows, M in (
                ("hgb60", capped, F),
                ("hgbAll", train, F),
                ("stack60", capped, Z),
                ("stackAll", train, Z),
            ):
                model = clone(head).set_params(clf__random_state=seed)
                made[name][test] = model.fit(M[rows], y[rows]).predict_proba(M[test])[
                    :, 1
                ]
        rows = {name: proba[order] for name, proba in made.items()}
        rows["mean"] = (base + reference) / 2
        rows["mean-hgbAll"] = (base + rows["hgbAll"]) / 2
        for name, proba in rows.items():
            lead = paired_bootstrap(
                y_pooled,
                (proba > 0.5).astype(int),
                (reference > 0.5).astype(int),
                g_pooled,
            )
            print(
                f"seed {seed} {name:12s} balanced accuracy "
                f"{balanced_accuracy_score(y_pooled, proba > 0.5):.3f}, ROC AUC "
                f"{roc_auc_score(y_pooled, proba):.3f}, - features-hgb "
                f"{lead['difference']:+.3f} [{lead['low']:+.3f}, {lead['high']:+.3f}]",
                flush=True,
            )


if __name__ == "__main__":
    main()

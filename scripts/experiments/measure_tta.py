"""Test-time augmentation on every real patch in ``../shared``, grouped by patient.

One fit of the small MLBN network per fold (``GroupKFold`` by patient, training folds
cut as in ``compare_real.py``), then the test patients predicted twice by the same
fitted model: plainly and with ``tta=True`` (the mean of the 8 dihedral views). TTA
does not change training, so the difference is TTA's alone; its 95% interval comes
from resampling the test patients (``paired_bootstrap``).

    python scripts/experiments/measure_tta.py --folds 5 --train-size 2400 --max-epochs 8
"""

from __future__ import annotations

import argparse
import subprocess
import time

import numpy as np
import pandas as pd
import torch
from compare_real import SMALL, SubsampledGroupKFold, load_real_patches
from sklearn.metrics import balanced_accuracy_score

from idc_sklearn import (
    MLBNInceptionClassifier,
    paired_bootstrap,
    patient_predictions,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--more", default="../shared/data/idc_more")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--train-size", type=int, default=2400)
    parser.add_argument("--max-epochs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    X, y, groups = load_real_patches(args.more)
    cv = SubsampledGroupKFold(args.folds, args.train_size, random_state=args.seed)
    rows = []
    for fold, (train, test) in enumerate(cv.split(X, y, groups), start=1):
        clf = MLBNInceptionClassifier(
            **SMALL, max_epochs=args.max_epochs, random_state=args.seed, verbose=0
        ).fit(X[train], y[train], groups=groups[train])
        for tta in (False, True):
            proba = clf.set_params(tta=tta).predict_proba(X[test])[:, 1]
            rows.append(
                pd.DataFrame(
                    {
                        "fold": fold,
                        "tta": tta,
                        "patient": groups[test],
                        "y_true": y[test],
                        "proba": proba,
                    }
                )
            )
        print(f"fold {fold} done, {time.perf_counter() - started:.0f} s", flush=True)
    frame = pd.concat(rows, ignore_index=True)
    plain, tta = (frame[frame["tta"] == flag] for flag in (False, True))
    y_true = plain["y_true"].to_numpy()
    pred = {
        name: (f["proba"].to_numpy() >= 0.5).astype(int)
        for name, f in (("plain", plain), ("tta", tta))
    }
    per_fold = {
        name: [
            balanced_accuracy_score(
                y_true[plain["fold"].to_numpy() == k],
                pred[name][plain["fold"].to_numpy() == k],
            )
            for k in range(1, args.folds + 1)
        ]
        for name in pred
    }
    result = paired_bootstrap(y_true, pred["tta"], pred["plain"], plain["patient"])
    patients = {
        name: balanced_accuracy_score(table["y_true"], table["y_pred"])
        for name, f in (("plain", plain), ("tta", tta))
        for table in [
            patient_predictions(
                f["proba"].to_numpy(), f["patient"].to_numpy(), y_true=y_true
            )
        ]
    }
    cpu = (
        subprocess.run(
            ["sh", "-c", "lscpu | grep 'Model name'"], capture_output=True, text=True
        )
        .stdout.split(":")[-1]
        .strip()
    )
    print(
        f"# {cv!r}; small MLBN, <= {args.max_epochs} epochs, seed {args.seed}; "
        f"{cpu}, {torch.get_num_threads()} threads; "
        f"{time.perf_counter() - started:.0f} s"
    )
    for name in pred:
        print(
            f"{name}: balanced accuracy, mean over folds "
            f"{np.mean(per_fold[name]):.3f} (folds "
            f"{', '.join(f'{v:.3f}' for v in per_fold[name])}); pooled "
            f"{balanced_accuracy_score(y_true, pred[name]):.3f}; patient-level "
            f"{patients[name]:.3f}"
        )
    print(
        f"tta - plain (pooled): {result['difference']:+.3f} "
        f"[{result['low']:+.3f}, {result['high']:+.3f}], "
        f"{result['n_patients']} patients"
    )


if __name__ == "__main__":
    main()

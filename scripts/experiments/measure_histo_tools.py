"""Measured effects of stain normalisation and patient-level prediction on real data.

The real patches of ``../shared/data/idc_sample`` and ``idc_more`` (9,044
patches of 20 patients), ``GroupKFold(5)`` by patient, training folds cut to
``--train-size`` patches as in ``compare_real.py``. The handcrafted baselines
``features-rf`` and ``color-logreg`` run as they are and behind each stain
normaliser, fitted inside the pipeline on the training fold only (the reference is
the training patients' patches). Reported: the scores of ``compare_models``, the
balanced accuracy on the five patients with both classes, the paired difference
of each normaliser against no normalisation (bootstrap over patients), and the
patient-level balanced accuracy of ``patient_predictions`` on the out-of-fold
scores.

    OMP_NUM_THREADS=1 python scripts/experiments/measure_histo_tools.py \\
        --out /tmp/histo_tools
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import pandas as pd
from compare_real import SubsampledGroupKFold, load_real_patches, within_mixed
from joblib import Memory
from sklearn.metrics import balanced_accuracy_score
from sklearn.pipeline import Pipeline

from idc_sklearn import (
    MacenkoNormalizer,
    ReinhardNormalizer,
    compare_models,
    make_baseline,
    paired_bootstrap,
    patient_predictions,
)

NORMALIZERS = {"reinhard": ReinhardNormalizer, "macenko": MacenkoNormalizer}
METHODS = ("mean", "median", "fraction")


def models(baselines, memory) -> dict:
    chosen = {}
    for base in baselines:
        chosen[base] = make_baseline(base, random_state=0)
        for short, cls in NORMALIZERS.items():
            steps = make_baseline(base, random_state=0).steps
            # The cache shares a fold's normalised training patches between the
            # baselines: the normaliser and its input are the same for both.
            chosen[f"{base}+{short}"] = Pipeline(
                [("stain", cls()), *steps], memory=memory
            )
    return chosen


def paired(predictions: pd.DataFrame, baselines) -> pd.DataFrame:
    y_true = predictions["y_true"].to_numpy()
    rows = {}
    for base in baselines:
        for short in NORMALIZERS:
            name = f"{base}+{short}"
            result = paired_bootstrap(
                y_true,
                predictions[f"{name}_pred"],
                predictions[f"{base}_pred"],
                predictions["patient"],
            )
            rows[f"{name} minus {base}"] = {
                key: result[key] for key in ("difference", "low", "high")
            }
    return pd.DataFrame.from_dict(rows, orient="index")


def patient_level(predictions: pd.DataFrame, names) -> pd.DataFrame:
    rows = {}
    for name in names:
        row = {}
        for method in METHODS:
            table = patient_predictions(
                predictions[f"{name}_score"],
                predictions["patient"],
                y_true=predictions["y_true"],
                method=method,
            )
            row[method] = balanced_accuracy_score(table["y_true"], table["y_pred"])
            row[f"{method}_correct"] = int((table["y_true"] == table["y_pred"]).sum())
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--more", default="../shared/data/idc_more")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--train-size", type=int, default=1500)
    parser.add_argument(
        "--baselines", nargs="*", default=["features-rf", "color-logreg"]
    )
    parser.add_argument("--out", default="results_histo_tools")
    args = parser.parse_args()
    started = time.perf_counter()
    X, y, groups = load_real_patches(args.more)
    cv = SubsampledGroupKFold(args.folds, args.train_size, random_state=0)
    with tempfile.TemporaryDirectory() as cache:
        chosen = models(args.baselines, Memory(cache, verbose=0))
        table, details = compare_models(
            chosen, X, y, groups, cv=cv, return_details=True, progress=False
        )
    predictions = details.predictions
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    predictions.to_csv(out / "predictions.csv")
    table["balanced_accuracy_mixed_patients"] = within_mixed(predictions, chosen)
    differences = paired(predictions, args.baselines)
    patients = patient_level(predictions, chosen)
    cpu = subprocess.run(
        ["sh", "-c", "lscpu | grep 'Model name'"], capture_output=True, text=True
    ).stdout.split(":")[-1]
    table.to_csv(out / "table.csv")
    differences.to_csv(out / "differences.csv")
    patients.to_csv(out / "patients.csv")
    pd.set_option("display.width", 200)
    print(f"{len(y):,} patches, {len(set(groups))} patients; {cv!r}")
    print(table.round(3).to_string())
    print(differences.round(3).to_string())
    print(patients.round(3).to_string())
    print(f"Machine: {cpu.strip()}; {time.perf_counter() - started:.0f} s in all.")


if __name__ == "__main__":
    main()

"""The recipe search's table (``scripts/experiments/recipe_search.py``) on the
validation patients.

One row per run: the levers it set, the epoch early stopping kept, the validation
patients' balanced accuracy (pooled over their patches), ROC AUC and mean per-patient
balanced accuracy, with and without test-time augmentation (all scored from the saved
probabilities, a patch IDC where its probability exceeds 0.5, as ``predict`` calls it),
and the paired difference in balanced accuracy against the base run of the same seed,
epochs and cap, with its 95% interval from a bootstrap over the validation patients
(``paired_bootstrap``).
Runs of several seeds are also averaged per recipe. Prints Markdown::

    python scripts/experiments/recipe_table.py results/recipe
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from recipe_search import scores

from idc_sklearn import paired_bootstrap


def _predictions(folder: Path, row) -> dict:
    tag = f"{row['run']}-s{row['seed']}-e{row['epochs']}-c{row['cap']}"
    with np.load(folder / "predictions" / f"{tag}.npz", allow_pickle=False) as f:
        return {name: f[name] for name in f.files}


def _difference(pred, base, key: str) -> str:
    """The paired difference of balanced accuracy against the base, and its interval."""
    np.testing.assert_array_equal(pred["y"], base["y"])
    result = paired_bootstrap(
        pred["y"],
        (pred[key] > 0.5).astype(int),
        (base[key] > 0.5).astype(int),
        pred["groups"],
    )
    return f"{result['difference']:+.3f} [{result['low']:+.3f}, {result['high']:+.3f}]"


def table(folder: Path, base: str = "base") -> pd.DataFrame:
    runs = [
        json.loads(line) for line in (folder / "runs.jsonl").read_text().splitlines()
    ]
    rows = []
    for row in runs:
        pred = _predictions(folder, row)
        ref = next(
            (
                r
                for r in runs
                if r["run"] == base
                and (r["seed"], r["epochs"], r["cap"])
                == (row["seed"], row["epochs"], row["cap"])
            ),
            None,
        )
        versus = versus_tta = ""
        if ref is not None and ref is not row:
            base_pred = _predictions(folder, ref)
            versus = _difference(pred, base_pred, "proba")
            versus_tta = _difference(pred, base_pred, "proba_tta")
        # Scored from the saved probabilities, so the table follows one rule.
        plain = scores(pred["y"], pred["proba"], pred["groups"])
        tta = scores(pred["y"], pred["proba_tta"], pred["groups"])
        rows.append(
            {
                "run": row["run"],
                "seed": row["seed"],
                "best epoch": row["best_epoch"],
                "bacc": plain["balanced_accuracy"],
                "auc": plain["roc_auc"],
                "patient bacc": plain["patient_balanced_accuracy"],
                "bacc tta": tta["balanced_accuracy"],
                "auc tta": tta["roc_auc"],
                f"bacc - {base}": versus,
                f"bacc tta - {base} tta": versus_tta,
                "fit min": round(row["fit_s"] / 60, 1),
            }
        )
    return pd.DataFrame(rows)


def markdown(frame: pd.DataFrame) -> str:
    """The table as Markdown: scores to 3 decimals, epochs whole, minutes to 0.1."""
    shown = frame.copy()
    shown["best epoch"] = [
        "" if pd.isna(e) else str(int(e)) for e in shown["best epoch"]
    ]
    shown["fit min"] = shown["fit min"].map("{:.1f}".format)
    for column in ("bacc", "auc", "patient bacc", "bacc tta", "auc tta"):
        shown[column] = shown[column].map("{:.3f}".format)
    return shown.to_markdown(index=False, disable_numparse=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--base", default="base")
    args = parser.parse_args(argv)
    frame = table(args.folder, args.base)
    print(markdown(frame))
    if frame["seed"].nunique() > 1:
        means = frame.groupby("run")[["bacc", "auc", "bacc tta", "auc tta"]].agg(
            ["mean", "std", "count"]
        )
        print()
        print(means.to_markdown(floatfmt=".3f"))


if __name__ == "__main__":
    main()

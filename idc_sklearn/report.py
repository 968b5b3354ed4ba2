"""The report of a comparison: readable tables, the paired difference, its files.

Turns what :func:`~idc_sklearn.compare_models` returns with ``return_details=True``
into the printed table, the sentence on the reference model's lead, and the files
``idc-sklearn compare`` writes. pandas and matplotlib only; no torch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from idc_sklearn._files import atomic_write
from idc_sklearn.metrics import patient_scores
from idc_sklearn.plotting import plot_comparison

__all__ = [
    "REPORT_FILES",
    "format_difference",
    "format_folds",
    "format_table",
    "patient_table",
    "write_report",
]

REPORT_FILES = (
    "comparison.csv",
    "comparison.md",
    "comparison.png",
    "folds.csv",
    "predictions.csv",
    "patients.csv",
)
_METRIC_LABELS = {
    "balanced_accuracy": "bal. acc.",
    "f1_idc": "F1 IDC",
    "f1_weighted": "F1 weighted",
    "roc_auc": "ROC AUC",
    "average_precision": "avg. precision",
}
# The threshold at which each kind of IDC score calls a patch IDC, as predict does.
_THRESHOLDS = {"predict_proba": 0.5, "decision_function": 0.0}


def format_table(table: pd.DataFrame) -> pd.DataFrame:
    """The comparison table as strings: ``mean ± std`` scores, rounded times.

    Parameters
    ----------
    table : pandas.DataFrame
        As :func:`~idc_sklearn.compare_models` returns.

    Returns
    -------
    pandas.DataFrame
        Same index; one column per metric (``"0.812 ± 0.034"``, or the mean alone
        where the deviation is NaN), ``fit s`` and ``patches/s``.
    """
    columns = {}
    metrics = [c[: -len("_mean")] for c in table.columns if c.endswith("_mean")]
    for metric in metrics:
        means, stds = table[f"{metric}_mean"], table.get(f"{metric}_std")
        columns[_METRIC_LABELS.get(metric, metric)] = [
            f"{mean:.3f}" if std is None or np.isnan(std) else f"{mean:.3f} ± {std:.3f}"
            for mean, std in zip(
                means, stds if stds is not None else [None] * len(means), strict=True
            )
        ]
    columns["fit s"] = [f"{value:.1f}" for value in table["fit_seconds"]]
    columns["patches/s"] = [
        f"{value:,.0f}" for value in table["predict_patches_per_second"]
    ]
    return pd.DataFrame(columns, index=table.index)


def format_difference(differences: pd.DataFrame) -> str | None:
    """One sentence: the reference model against the best other, with its interval.

    Parameters
    ----------
    differences : pandas.DataFrame
        ``details.differences`` of :func:`~idc_sklearn.compare_models`.

    Returns
    -------
    str or None
        E.g. ``"mlbn-inception vs features-hgb (best other): +0.034 balanced
        accuracy, 95% CI [-0.021, +0.088], bootstrap over 19 test patients; the
        interval includes 0: no clear lead."``; None with a single model.
    """
    reference, best = differences.attrs["reference"], differences.attrs["best"]
    if best is None:
        return None
    row = differences.loc[best]
    if row["low"] > 0:
        verdict = f"the interval excludes 0: {reference} leads"
    elif row["high"] < 0:
        verdict = f"the interval excludes 0: {best} leads"
    else:
        verdict = "the interval includes 0: no clear lead"
    return (
        f"{reference} vs {best} (best other): {row['difference']:+.3f} balanced "
        f"accuracy, 95% CI [{row['low']:+.3f}, {row['high']:+.3f}], bootstrap over "
        f"{int(row['n_patients'])} test patients; {verdict}."
    )


def format_folds(folds: pd.DataFrame, metric: str = "balanced_accuracy"):
    """``metric`` of each model (rows) on each fold (columns), as strings.

    Parameters
    ----------
    folds : pandas.DataFrame
        ``details.folds`` of :func:`~idc_sklearn.compare_models`.
    metric : str, default="balanced_accuracy"
        The column of ``folds`` to show.

    Returns
    -------
    pandas.DataFrame
        Indexed by model in the given order; columns ``"fold k (n)"`` with the
        number of test patches of fold k.
    """
    scores = folds.pivot(index="model", columns="fold", values=metric)
    scores = scores.loc[pd.unique(folds["model"])]
    n_test = folds.groupby("fold")["n_test"].first()
    scores.columns = [f"fold {k} ({n_test[k]:,})" for k in scores.columns]
    return scores.map(lambda value: f"{value:.3f}")


def patient_table(predictions: pd.DataFrame) -> pd.DataFrame:
    """Scores of every model on every test patient, by :func:`patient_scores`.

    Parameters
    ----------
    predictions : pandas.DataFrame
        ``details.predictions`` of :func:`~idc_sklearn.compare_models`, with
        labels 0 and 1. A model's patches are called IDC where its score exceeds
        0.5 (a probability) or 0 (a margin), as its ``predict`` does; models
        without scores (``score_method`` None) are left out.

    Returns
    -------
    pandas.DataFrame
        One row per model and patient: ``model``, ``patient``, then the columns of
        :func:`patient_scores` (``n_patches``, ``n_idc`` and the metrics).
    """
    frames = []
    for model, method in predictions.attrs["score_method"].items():
        if method is None:
            continue
        scores = patient_scores(
            predictions["y_true"],
            predictions[f"{model}_score"],
            predictions["patient"],
            threshold=_THRESHOLDS[method],
        ).drop(index=["mean", "pooled"])
        frames.append(scores.reset_index().assign(model=model))
    table = pd.concat(frames, ignore_index=True)
    return table[["model", *table.columns.drop("model")]]


def _markdown(frame: pd.DataFrame) -> str:
    # tabulate (a skorch dependency) writes the table; numbers stay as formatted.
    return frame.to_markdown(
        colalign=("left",) + ("right",) * len(frame.columns), disable_numparse=True
    )


def write_report(
    out: str | Path, table: pd.DataFrame, details, *, description: str
) -> list[Path]:
    """Write the files of a comparison into the folder ``out``.

    ``comparison.csv`` (the table at full precision), ``comparison.md`` (the
    rounded table under ``description``, the paired difference and the per-fold
    scores), ``comparison.png`` (:func:`~idc_sklearn.plot_comparison`),
    ``folds.csv`` (``details.folds``), ``predictions.csv``
    (``details.predictions``) and ``patients.csv`` (:func:`patient_table`).

    Parameters
    ----------
    out : str or path-like
        The folder; created if missing.
    table, details
        What :func:`~idc_sklearn.compare_models` returns with
        ``return_details=True``.
    description : str
        Markdown naming the data, folds, models and machine, put under the title.

    Returns
    -------
    list of pathlib.Path
        The files written, in the order of :data:`REPORT_FILES`.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / name for name in REPORT_FILES]
    csv, markdown, chart, folds, predictions, patients = paths
    _write_csv(table, csv)
    sections = [
        "# IDC model comparison",
        description,
        "Scores are mean ± standard deviation over folds on held-out patients; "
        "fit s is the mean fit time per fold, patches/s the speed of predict.",
        _markdown(format_table(table)),
    ]
    sentence = format_difference(details.differences)
    if sentence is not None:
        sections.append(
            f"{sentence} The difference is on every fold's test patches pooled; "
            "the interval is the 2.5th to 97.5th percentile of the difference over "
            "2,000 resamples of the test patients with replacement (all of a "
            "patient's patches together, both models on the same resample)."
        )
    sections += [
        "## Per fold",
        "Balanced accuracy on each fold's test patients (test patches in "
        "brackets). Every score: `folds.csv`; every test prediction: "
        "`predictions.csv`; every patient's scores: `patients.csv`.",
        _markdown(format_folds(details.folds)),
    ]
    with atomic_write(markdown, "w") as f:
        f.write("\n\n".join(sections) + "\n")
    figure = plot_comparison(table)
    with atomic_write(chart) as f:
        figure.savefig(f, format="png", dpi=150)
    _write_csv(details.folds, folds, index=False)
    _write_csv(details.predictions, predictions)
    _write_csv(patient_table(details.predictions), patients, index=False)
    return paths


def _write_csv(frame: pd.DataFrame, path: Path, **kwargs) -> None:
    # Each file is whole or absent: an interrupted run leaves no torn table.
    with atomic_write(path, "w", newline="") as f:
        frame.to_csv(f, **kwargs)

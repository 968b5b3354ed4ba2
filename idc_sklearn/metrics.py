"""Metrics of the IDC comparison: sklearn scorers and per-patient scores.

The MLBN paper reports balanced accuracy and an F1 averaged over both classes
weighted by support (``average="weighted"``); the earlier baselines report the
F-measure of the IDC class alone. Both are here, with ROC AUC and average precision.

IDC is label 1 and no IDC label 0, the dataset's convention (the ``class1`` folders).
``f1_idc`` and ``average_precision`` score label 1 as the positive class, and
``roc_auc`` ranks the greater label as positive, so targets with other labels (e.g.
strings) must be mapped to 0/1 first.

numpy, pandas and sklearn only: no torch here.
"""

from __future__ import annotations

from numbers import Real

import numpy as np
import pandas as pd
from sklearn.metrics import (
    average_precision_score,
    balanced_accuracy_score,
    f1_score,
    make_scorer,
    recall_score,
    roc_auc_score,
)

__all__ = ["SCORING", "patient_scores"]

# Ranking metrics use the margin where a classifier has one (SVC without
# probabilities) and the IDC probability otherwise.
_RANKING = ("decision_function", "predict_proba")

SCORING = {
    "balanced_accuracy": make_scorer(balanced_accuracy_score),
    "f1_idc": make_scorer(f1_score, pos_label=1),
    "f1_weighted": make_scorer(f1_score, average="weighted"),
    "roc_auc": make_scorer(roc_auc_score, response_method=_RANKING),
    "average_precision": make_scorer(
        average_precision_score, response_method=_RANKING, pos_label=1
    ),
}
"""Scorers for ``cross_validate`` and ``GridSearchCV``, keyed by metric name.

- ``"balanced_accuracy"``: mean of the recalls of both classes.
- ``"f1_idc"``: F1 of the IDC class (label 1), the earlier papers' F-measure.
- ``"f1_weighted"``: F1 of both classes averaged by support, the MLBN paper's F1.
- ``"roc_auc"`` and ``"average_precision"``: from ``decision_function`` where the
  estimator has one, else from the IDC column of ``predict_proba``.

Labels must be 0 (no IDC) and 1 (IDC).

Examples
--------
>>> from sklearn.linear_model import LogisticRegression
>>> from sklearn.model_selection import GridSearchCV
>>> from idc_sklearn.metrics import SCORING
>>> search = GridSearchCV(
...     LogisticRegression(), {"C": [0.1, 1.0]}, scoring=SCORING,
...     refit="balanced_accuracy",
... )
"""

_COLUMNS = (
    "n_patches",
    "n_idc",
    "balanced_accuracy",
    "f1_idc",
    "f1_weighted",
    "roc_auc",
    "average_precision",
)
_AGGREGATES = ("mean", "pooled")


def _check_1d(values, name: str, n: int | None) -> np.ndarray:
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError(
            f"{name} must be 1-D with one entry per patch; got shape {values.shape}."
        )
    if n is not None and values.shape[0] != n:
        raise ValueError(
            f"{name} has {values.shape[0]} entries but y_true has {n}; "
            "expected one per patch."
        )
    return values


def _check_y_true(y_true) -> np.ndarray:
    y_true = _check_1d(y_true, "y_true", None)
    if y_true.shape[0] == 0:
        raise ValueError("y_true is empty; at least one patch is required.")
    labels = pd.unique(y_true)
    if not set(labels.tolist()) <= {0, 1} or y_true.dtype.kind not in "biuf":
        raise ValueError(
            "y_true must hold the labels 0 (no IDC) and 1 (IDC); got labels "
            f"{sorted(map(repr, labels.tolist()))[:10]}."
        )
    return y_true.astype(np.int64)


def _check_y_score(y_score, n: int) -> np.ndarray:
    y_score = np.asarray(y_score)
    if y_score.ndim == 2 and y_score.shape[1] == 2:
        y_score = y_score[:, 1]
    elif y_score.ndim != 1:
        raise ValueError(
            "y_score must be the IDC score, 1-D, or predict_proba output of shape "
            f"(n, 2); got shape {y_score.shape}."
        )
    y_score = _check_1d(y_score, "y_score", n)
    if y_score.dtype.kind not in "biuf":
        raise TypeError(f"y_score must be numeric; got dtype {y_score.dtype}.")
    y_score = y_score.astype(np.float64)
    if not np.isfinite(y_score).all():
        raise ValueError("y_score contains NaN or infinity.")
    return y_score


def _scores(y_true: np.ndarray, y_score: np.ndarray, y_pred: np.ndarray) -> dict:
    """The metrics of one set of patches, NaN where a metric is undefined."""
    present = np.unique(y_true)
    n_idc = int(y_true.sum())
    return {
        "n_patches": y_true.shape[0],
        "n_idc": n_idc,
        # The mean recall of the classes present: the plain balanced accuracy with
        # both classes, the recall of the only class otherwise.
        "balanced_accuracy": recall_score(
            y_true, y_pred, labels=present, average="macro", zero_division=np.nan
        ),
        "f1_idc": f1_score(y_true, y_pred, pos_label=1, zero_division=np.nan),
        "f1_weighted": f1_score(
            y_true, y_pred, average="weighted", zero_division=np.nan
        ),
        "roc_auc": roc_auc_score(y_true, y_score) if present.size == 2 else np.nan,
        "average_precision": (
            average_precision_score(y_true, y_score) if n_idc else np.nan
        ),
    }


def patient_scores(y_true, y_score, groups, *, threshold: float = 0.5) -> pd.DataFrame:
    """Score predictions per patient, averaged over patients and pooled.

    A patch is called IDC where its score exceeds ``threshold`` (``y_score >
    threshold``), as ``predict`` does for probabilities at 0.5 and for
    ``decision_function`` at 0.

    Metrics are NaN where undefined, without warnings:

    - ``roc_auc`` needs both classes: NaN for a patient whose patches are all IDC or
      all not.
    - ``average_precision`` needs an IDC patch: NaN for a patient without one.
    - ``f1_idc`` is NaN for a patient with no IDC patch and no patch called IDC;
      with no IDC patch but false positives it is 0.
    - ``balanced_accuracy`` is the mean recall of the classes a patient has, so for
      a patient with one class it is that class's recall (the specificity of an
      IDC-free patient).

    Parameters
    ----------
    y_true : array-like of shape (n,)
        0 (no IDC) or 1 (IDC) per patch.
    y_score : array-like of shape (n,) or (n, 2)
        IDC score per patch: a probability, a ``predict_proba`` array (its column 1
        is used) or a ``decision_function`` margin (then pass ``threshold=0``).
    groups : array-like of shape (n,)
        Patient id per patch.
    threshold : float, default=0.5
        Score above which a patch is called IDC.

    Returns
    -------
    scores : pandas.DataFrame
        One row per patient, indexed by the patient id as a string (sorted by the
        ids' own order), then the rows ``"mean"`` (each column's mean over the
        patients, NaN ignored; its ``n_patches`` and ``n_idc`` are means per
        patient) and ``"pooled"`` (every patch scored together). Columns:
        ``n_patches``, ``n_idc``, ``balanced_accuracy``, ``f1_idc``,
        ``f1_weighted``, ``roc_auc``, ``average_precision``.

    Raises
    ------
    ValueError
        Naming the argument: lengths that differ, labels other than 0 and 1, a
        missing patient id, scores that are not finite.

    Examples
    --------
    >>> from idc_sklearn.metrics import patient_scores
    >>> scores = patient_scores(
    ...     y_true=[0, 1, 1, 0, 0, 0],
    ...     y_score=[0.2, 0.9, 0.4, 0.6, 0.1, 0.3],
    ...     groups=["p1", "p1", "p1", "p1", "p2", "p2"],
    ... )
    >>> scores.index.tolist()
    ['p1', 'p2', 'mean', 'pooled']
    >>> scores.loc["p1", ["balanced_accuracy", "roc_auc"]].tolist()
    [0.5, 0.75]
    """
    y_true = _check_y_true(y_true)
    n = y_true.shape[0]
    y_score = _check_y_score(y_score, n)
    groups = _check_1d(groups, "groups", n)
    if pd.isna(groups).any():
        raise ValueError("groups contains a missing patient id (None or NaN).")
    if not isinstance(threshold, Real) or not np.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number; got {threshold!r}.")
    codes, patients = pd.factorize(groups, sort=True)
    names = [str(patient) for patient in patients]
    clashes = set(names) & set(_AGGREGATES)
    if len(set(names)) != len(names) or clashes:
        raise ValueError(
            "groups must hold patient ids that stay distinct as strings and are not "
            f"{' or '.join(map(repr, _AGGREGATES))}; got {sorted(names)[:10]}."
        )
    y_pred = (y_score > threshold).astype(np.int64)
    rows = {}
    for code, name in enumerate(names):
        mask = codes == code
        rows[name] = _scores(y_true[mask], y_score[mask], y_pred[mask])
    patients_table = pd.DataFrame.from_dict(rows, orient="index", columns=_COLUMNS)
    rows["mean"] = patients_table.mean(axis=0, skipna=True).to_dict()
    rows["pooled"] = _scores(y_true, y_score, y_pred)
    table = pd.DataFrame.from_dict(rows, orient="index", columns=_COLUMNS)
    table.index.name = "patient"
    return table

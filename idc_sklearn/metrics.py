"""Metrics of the IDC comparison: sklearn scorers, per-patient scores and predictions.

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

from collections.abc import Callable
from numbers import Integral, Real

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

__all__ = ["SCORING", "paired_bootstrap", "patient_predictions", "patient_scores"]

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


def _check_1d(
    values, name: str, n: int | None, reference: str = "y_true"
) -> np.ndarray:
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError(
            f"{name} must be 1-D with one entry per patch; got shape {values.shape}."
        )
    if n is not None and values.shape[0] != n:
        raise ValueError(
            f"{name} has {values.shape[0]} entries but {reference} has {n}; "
            "expected one per patch."
        )
    return values


def _check_threshold(value, name: str) -> None:
    if not isinstance(value, Real) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number; got {value!r}.")


def _check_patients(
    groups, n: int, reference: str = "y_true", reserved: tuple[str, ...] = ()
) -> tuple[np.ndarray, list[str]]:
    """Patient codes per patch and the patients' names as strings, sorted by id."""
    groups = _check_1d(groups, "groups", n, reference)
    if pd.isna(groups).any():
        raise ValueError("groups contains a missing patient id (None or NaN).")
    codes, patients = pd.factorize(groups, sort=True)
    names = [str(patient) for patient in patients]
    if len(set(names)) != len(names) or set(names) & set(reserved):
        not_reserved = (
            f" and are not {' or '.join(map(repr, reserved))}" if reserved else ""
        )
        raise ValueError(
            f"groups must hold patient ids that stay distinct as strings"
            f"{not_reserved}; got {sorted(names)[:10]}."
        )
    return codes, names


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
    codes, names = _check_patients(groups, n, reserved=_AGGREGATES)
    _check_threshold(threshold, "threshold")
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


_METHODS = ("mean", "median", "fraction")


def patient_predictions(
    y_score,
    groups,
    *,
    y_true=None,
    method: str = "mean",
    threshold: float = 0.5,
    fraction: float = 0.5,
) -> pd.DataFrame:
    """Aggregate patch predictions into one prediction per patient.

    A pathologist's question is often about the patient (the slide), not the patch:
    does this slide show IDC? Each patient's patch scores are summarised in one
    ``score`` and the patient is called IDC where it exceeds a cutoff:

    - ``"mean"``: the mean IDC score of the patient's patches, called IDC above
      ``threshold``;
    - ``"median"``: their median, called IDC above ``threshold`` (robust to a few
      confident errors);
    - ``"fraction"``: the share of the patient's patches called IDC (``y_score >
      threshold``, as :func:`patient_scores` calls them), called IDC above
      ``fraction``.

    With ``y_true``, each patient's true label follows one documented rule for
    every method: IDC where the share of its IDC patches exceeds ``fraction``.
    At the defaults a patient is IDC when most of its patches are, which is also
    what a perfect patch classifier would get from each method; ``fraction=0``
    makes a patient IDC as soon as one patch is (called) IDC.

    Parameters
    ----------
    y_score : array-like of shape (n,) or (n, 2)
        IDC score per patch: a probability, a ``predict_proba`` array (its column 1
        is used) or a ``decision_function`` margin (then pass ``threshold=0``).
    groups : array-like of shape (n,)
        Patient id per patch.
    y_true : array-like of shape (n,), default=None
        0 (no IDC) or 1 (IDC) per patch; adds the columns ``n_idc``,
        ``idc_fraction`` and ``y_true``.
    method : {"mean", "median", "fraction"}, default="mean"
        How a patient's patch scores are summarised.
    threshold : float, default=0.5
        The cutoff on the score scale: of the aggregate for ``"mean"`` and
        ``"median"``, of each patch for ``"fraction"``.
    fraction : float in [0, 1], default=0.5
        The share of patches above which a patient is IDC: called IDC with
        ``method="fraction"``, truly IDC for the ``y_true`` column.

    Returns
    -------
    predictions : pandas.DataFrame
        One row per patient, indexed by the patient id as a string (sorted by the
        ids' own order, as in :func:`patient_scores`), with the columns
        ``n_patches``, ``score`` (the aggregate), ``y_pred`` (0 or 1) and, with
        ``y_true``, ``n_idc``, ``idc_fraction`` and ``y_true`` (0 or 1).

    Raises
    ------
    ValueError
        Naming the argument: lengths that differ, labels other than 0 and 1, a
        missing patient id, scores that are not finite, an unknown ``method``.

    See Also
    --------
    patient_scores : Patch-level metrics within each patient.

    Examples
    --------
    >>> from sklearn.metrics import balanced_accuracy_score
    >>> from idc_sklearn.metrics import patient_predictions
    >>> table = patient_predictions(
    ...     y_score=[0.9, 0.8, 0.3, 0.2, 0.4, 0.6, 0.7, 0.1],
    ...     groups=["p1", "p1", "p1", "p2", "p2", "p2", "p3", "p3"],
    ...     y_true=[1, 1, 0, 0, 0, 0, 1, 0],
    ...     method="fraction",
    ... )
    >>> columns = ["n_patches", "score", "y_pred", "y_true"]
    >>> table[columns].round(2)  # doctest: +NORMALIZE_WHITESPACE
             n_patches  score  y_pred  y_true
    patient
    p1               3   0.67       1       1
    p2               3   0.33       0       0
    p3               2   0.50       0       0
    >>> float(balanced_accuracy_score(table["y_true"], table["y_pred"]))
    1.0
    """
    if method not in _METHODS:
        raise ValueError(
            f"method must be one of {', '.join(map(repr, _METHODS))}; got {method!r}."
        )
    _check_threshold(threshold, "threshold")
    if not isinstance(fraction, Real) or not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be a number in [0, 1]; got {fraction!r}.")
    if y_true is None:
        y_score = _check_y_score(y_score, None)
        n, reference = y_score.shape[0], "y_score"
    else:
        y_true = _check_y_true(y_true)
        n, reference = y_true.shape[0], "y_true"
        y_score = _check_y_score(y_score, n)
    if n == 0:
        raise ValueError("y_score is empty; at least one patch is required.")
    codes, names = _check_patients(groups, n, reference)
    n_patches = np.bincount(codes)
    if method == "median":
        score = pd.Series(y_score).groupby(codes).median().to_numpy()
    else:
        values = y_score > threshold if method == "fraction" else y_score
        score = np.bincount(codes, weights=values) / n_patches
    cutoff = fraction if method == "fraction" else threshold
    table = pd.DataFrame(
        {
            "n_patches": n_patches,
            "score": score,
            "y_pred": (score > cutoff).astype(np.int64),
        },
        index=pd.Index(names, name="patient"),
    )
    if y_true is not None:
        n_idc = np.bincount(codes, weights=y_true).astype(np.int64)
        table["n_idc"] = n_idc
        table["idc_fraction"] = n_idc / n_patches
        table["y_true"] = (table["idc_fraction"] > fraction).astype(np.int64)
    return table


_LABEL_METRICS = ("balanced_accuracy", "f1_idc", "f1_weighted")
_SCORE_METRICS = ("roc_auc", "average_precision")
# Resamples x patches weighed at once for average precision (16 MiB of floats).
_CHUNK_CELLS = 2**21


def _from_confusion(metric: str, counts: np.ndarray) -> np.ndarray:
    """``metric`` from summed confusion counts of shape (..., 4): TN, FP, FN, TP."""
    tn, fp, fn, tp = np.moveaxis(counts.astype(np.float64), -1, 0)
    if metric == "balanced_accuracy":
        return (tp / (tp + fn) + tn / (tn + fp)) / 2
    f1_idc = 2 * tp / (2 * tp + fp + fn)
    if metric == "f1_idc":
        return f1_idc
    # The F1 of class 0 swaps the roles: its true positives are the TN.
    f1_normal = 2 * tn / (2 * tn + fn + fp)
    n_idc, n_normal = tp + fn, tn + fp
    return (n_idc * f1_idc + n_normal * f1_normal) / (n_idc + n_normal)


def _check_metric(metric) -> str | Callable:
    if callable(metric):
        return metric
    known = (*_LABEL_METRICS, *_SCORE_METRICS)
    if metric not in known:
        raise ValueError(
            f"metric must be one of {list(known)} or a callable metric(y_true, "
            f"y_pred); got {metric!r}."
        )
    return metric


def _check_predictions(pred, name: str, metric, n: int) -> np.ndarray:
    if metric in _SCORE_METRICS:
        return _check_y_score(pred, n)
    pred = _check_1d(pred, name, n)
    if metric in _LABEL_METRICS and (
        pred.dtype.kind not in "biuf" or not set(np.unique(pred).tolist()) <= {0, 1}
    ):
        raise ValueError(
            f"{name} must hold predicted labels 0 and 1 for metric={metric!r}; got "
            f"values {sorted(map(repr, np.unique(pred).tolist()))[:10]}. Pass scores "
            "only with metric='roc_auc' or 'average_precision'."
        )
    return pred


def _check_bootstrap_options(n_resamples, confidence_level) -> None:
    if not isinstance(n_resamples, Integral) or isinstance(n_resamples, bool):
        raise TypeError(f"n_resamples must be an integer; got {n_resamples!r}.")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1; got {n_resamples}.")
    if not isinstance(confidence_level, Real) or not 0 < confidence_level < 1:
        raise ValueError(
            f"confidence_level must be a number in (0, 1), e.g. 0.95; got "
            f"{confidence_level!r}."
        )


def _draw_patients(rng, y_true, codes, n_patients, n_resamples):
    """Patients drawn with replacement, ``(n_resamples, n_patients)``, and redraws.

    A resample whose patches lack a class leaves balanced accuracy, ROC AUC and
    the F1 scores undefined; it is drawn again, and counted. With a patient of each
    class among the n, at least about a third of the draws hold both classes.
    """
    idc = np.bincount(codes, weights=y_true, minlength=n_patients)
    normal = np.bincount(codes, minlength=n_patients) - idc
    kept, n_kept, n_redrawn = [], 0, 0
    while n_kept < n_resamples:
        draws = rng.integers(0, n_patients, size=(n_resamples - n_kept, n_patients))
        both = (idc[draws].sum(axis=1) > 0) & (normal[draws].sum(axis=1) > 0)
        kept.append(draws[both])
        n_kept += int(both.sum())
        n_redrawn += int((~both).sum())
    return np.concatenate(kept), n_redrawn


def paired_bootstrap(
    y_true,
    pred_a,
    pred_b,
    groups,
    *,
    metric: str | Callable = "balanced_accuracy",
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    random_state=0,
) -> dict:
    """Difference of a metric between two models, with a bootstrap over patients.

    Both models predicted the same patches (e.g. their out-of-fold predictions of
    :func:`~idc_sklearn.compare_models`, every fold pooled). The difference is
    ``metric(y_true, pred_a) - metric(y_true, pred_b)`` over all the patches. Its
    interval comes from a paired, nonparametric bootstrap over patients: each
    resample draws as many patients as there are, with replacement, takes all the
    patches of every drawn patient (twice if drawn twice), and scores both models
    on the same resample. ``low`` and ``high`` are percentiles of the resampled
    differences (the percentile interval). Patients, not patches, are resampled
    because patches of one patient are alike and share errors: treating them as
    independent would make the interval too narrow.

    A resample whose patches lack a class (possible with few patients of one
    class) is drawn again; ``n_redrawn`` counts those.

    The named metrics are exact and computed for all resamples at once: the label
    metrics from summed per-patient confusion counts (milliseconds), ROC AUC from
    per-patient-pair counts of rightly ranked (IDC, non-IDC) pairs (2 s for 2,000
    resamples of 80,000 patches), average precision from weighted counts at each
    distinct score (ties as in scikit-learn; 40 s for the same). A callable is
    called on each resample in turn: a few milliseconds a resample.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        0 (no IDC) or 1 (IDC) per patch.
    pred_a, pred_b : array-like of shape (n,)
        Predicted labels of the two models, or their IDC scores with
        ``metric="roc_auc"`` or ``"average_precision"``.
    groups : array-like of shape (n,)
        Patient id per patch: the unit of resampling.
    metric : str or callable, default="balanced_accuracy"
        ``"balanced_accuracy"``, ``"f1_idc"``, ``"f1_weighted"`` (from labels),
        ``"roc_auc"``, ``"average_precision"`` (from scores), as in
        :data:`SCORING`; or a callable ``metric(y_true, y_pred)``.
    n_resamples : int, default=2000
        Bootstrap resamples.
    confidence_level : float, default=0.95
        Coverage of the interval.
    random_state : int, numpy Generator or None, default=0
        Seed of the resampling (``numpy.random.default_rng``).

    Returns
    -------
    result : dict
        ``difference`` (on all patches), ``low`` and ``high`` (the interval),
        ``n_patients``, ``n_resamples`` and ``n_redrawn`` (resamples drawn again
        for lacking a class).

    Raises
    ------
    ValueError
        Naming the argument: lengths that differ, labels other than 0 and 1 (or
        scores where labels are expected), a missing patient id, fewer than two
        patients, a class absent from ``y_true``, an unknown metric.

    See Also
    --------
    idc_sklearn.compare_models : its ``details.differences`` come from here.

    Examples
    --------
    >>> import numpy as np
    >>> from idc_sklearn.metrics import paired_bootstrap
    >>> y = np.array([0, 1] * 20)
    >>> groups = np.repeat(np.arange(10), 4)  # 10 patients of 4 patches
    >>> perfect = y
    >>> wrong_on_two = np.where(groups < 2, 1 - y, y)  # all wrong on 2 patients
    >>> result = paired_bootstrap(y, perfect, wrong_on_two, groups)
    >>> [round(result[key], 3) for key in ("difference", "low", "high")]
    [0.2, 0.0, 0.5]
    """
    metric = _check_metric(metric)
    y_true = _check_y_true(y_true)
    n = y_true.shape[0]
    pred_a = _check_predictions(pred_a, "pred_a", metric, n)
    pred_b = _check_predictions(pred_b, "pred_b", metric, n)
    groups = _check_1d(groups, "groups", n)
    if pd.isna(groups).any():
        raise ValueError("groups contains a missing patient id (None or NaN).")
    _check_bootstrap_options(n_resamples, confidence_level)
    codes, patients = pd.factorize(groups)
    n_patients = len(patients)
    if n_patients < 2:
        raise ValueError(
            f"groups holds {n_patients} patient; a bootstrap over patients needs "
            "at least 2."
        )
    if np.unique(y_true).size < 2:
        raise ValueError(
            "y_true must hold both IDC (1) and non-IDC (0) patches; got only "
            f"label {int(y_true[0])}."
        )
    rng = np.random.default_rng(random_state)
    draws, n_redrawn = _draw_patients(rng, y_true, codes, n_patients, n_resamples)
    if callable(metric):
        difference, resampled = _loop_differences(
            metric, y_true, pred_a, pred_b, codes, draws
        )
    else:
        # How often each patient was drawn in each resample: a resample's metric is
        # the metric of all patches weighted so, exactly as if they were repeated.
        # Row 0 weighs every patient once: the difference on all patches.
        cells = np.arange(n_resamples)[:, None] * n_patients + draws
        weights = np.ones((n_resamples + 1, n_patients))
        weights[1:] = np.bincount(
            cells.ravel(), minlength=n_resamples * n_patients
        ).reshape(n_resamples, n_patients)
        score_a, score_b = (
            _weighted_metric(metric, y_true, pred, codes, weights)
            for pred in (pred_a, pred_b)
        )
        difference = score_a[0] - score_b[0]
        resampled = score_a[1:] - score_b[1:]
    tail = (1 - confidence_level) / 2 * 100
    low, high = np.percentile(resampled, [tail, 100 - tail])
    return {
        "difference": float(difference),
        "low": float(low),
        "high": float(high),
        "n_patients": n_patients,
        "n_resamples": n_resamples,
        "n_redrawn": n_redrawn,
    }


def _weighted_metric(metric, y_true, pred, codes, weights) -> np.ndarray:
    """``metric`` of every row of patient weights, shape (n_rows, n_patients)."""
    if metric in _LABEL_METRICS:
        # A row's confusion counts (TN, FP, FN, TP) are its patients', weighted.
        n_patients = weights.shape[1]
        cells = codes * 4 + 2 * y_true + pred.astype(np.int64)
        counts = np.bincount(cells, minlength=n_patients * 4).reshape(n_patients, 4)
        return _from_confusion(metric, weights @ counts)
    if metric == "roc_auc":
        return _weighted_roc_auc(y_true, pred, codes, weights)
    return _weighted_average_precision(y_true, pred, codes, weights)


def _weighted_roc_auc(y_true, pred, codes, weights) -> np.ndarray:
    # Mann-Whitney: ROC AUC is the share of (IDC, non-IDC) patch pairs ranked
    # right, ties counting half. wins[p, q] counts those pairs with the IDC patch
    # of patient p and the other of patient q, so a row's pairs are w' wins w.
    n_patients = weights.shape[1]
    idc = y_true == 1
    wins = np.empty((n_patients, n_patients))
    for q in range(n_patients):
        normal = np.sort(pred[(codes == q) & ~idc])
        below = np.searchsorted(normal, pred[idc], side="left")
        tied = np.searchsorted(normal, pred[idc], side="right") - below
        wins[:, q] = np.bincount(
            codes[idc], weights=below + tied / 2, minlength=n_patients
        )
    n_idc = np.bincount(codes, weights=y_true, minlength=n_patients)
    n_normal = np.bincount(codes, minlength=n_patients) - n_idc
    pairs = (weights @ n_idc) * (weights @ n_normal)
    return np.einsum("rp,pq,rq->r", weights, wins, weights) / pairs


def _weighted_average_precision(y_true, pred, codes, weights) -> np.ndarray:
    # The precision at each distinct score from the top down (tied scores are one
    # threshold, as in sklearn), weighted by the IDC patches it adds.
    order = np.argsort(-pred, kind="stable")
    truth, patch_codes = y_true[order], codes[order]
    thresholds = np.flatnonzero(np.r_[True, np.diff(pred[order]) != 0])
    rows = max(1, _CHUNK_CELLS // len(pred))
    result = np.empty(len(weights))
    for start in range(0, len(weights), rows):
        patch_weights = weights[start : start + rows][:, patch_codes]
        idc = np.add.reduceat(patch_weights * truth, thresholds, axis=1)
        called = np.cumsum(np.add.reduceat(patch_weights, thresholds, axis=1), axis=1)
        precision = np.divide(
            np.cumsum(idc, axis=1), called, out=np.zeros_like(called), where=called > 0
        )
        result[start : start + rows] = (idc * precision).sum(axis=1) / idc.sum(axis=1)
    return result


def _loop_differences(metric, y_true, pred_a, pred_b, codes, draws):
    members = np.split(np.argsort(codes, kind="stable"), np.cumsum(np.bincount(codes)))
    difference = metric(y_true, pred_a) - metric(y_true, pred_b)
    resampled = np.empty(len(draws))
    for r, drawn in enumerate(draws):
        index = np.concatenate([members[patient] for patient in drawn])
        truth = y_true[index]
        resampled[r] = metric(truth, pred_a[index]) - metric(truth, pred_b[index])
    return difference, resampled

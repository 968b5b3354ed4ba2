"""ROC and precision-recall curves of several models, and the confusion matrix.

Drawn by sklearn's displays on axes this module creates, so none of them makes a
pyplot figure.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    PrecisionRecallDisplay,
    RocCurveDisplay,
)

from idc_sklearn.plotting._base import check_path, check_vector, figure_and_axes, save

_CLASS_NAMES = ("non-IDC", "IDC")


def _check_scores(scores, n: int) -> dict[str, np.ndarray]:
    if isinstance(scores, pd.DataFrame):
        scores = dict(scores.items())
    if not isinstance(scores, Mapping):
        raise TypeError(
            "scores must be a mapping of model name to its IDC scores, e.g. "
            f"{{'mlbn': proba[:, 1]}}; got {type(scores).__name__}."
        )
    if not scores:
        raise ValueError("scores is empty; give at least one model's IDC scores.")
    return {
        str(name): check_vector(values, f"scores[{name!r}]", n)
        for name, values in scores.items()
    }


def _plot_curves(display, y_true, scores, pos_label, ax, path, title):
    y_true = np.asarray(y_true)
    if y_true.ndim != 1:
        raise ValueError(f"y_true must be 1-D; got an array of shape {y_true.shape}.")
    scores = _check_scores(scores, len(y_true))
    if pos_label not in set(y_true.tolist()):
        raise ValueError(
            f"pos_label={pos_label!r} is not among y_true's labels "
            f"{sorted(set(y_true.tolist()))}; a curve needs positives."
        )
    path = check_path(path)
    figure, (ax,) = figure_and_axes(ax, 1, (5.0, 4.5))
    displays = {}
    for i, (name, values) in enumerate(scores.items()):
        displays[name] = display.from_predictions(
            y_true,
            values,
            pos_label=pos_label,
            name=name,
            ax=ax,
            # The chance level depends on y_true alone: drawn once, last in the legend.
            plot_chance_level=i == len(scores) - 1,
        )
    ax.set_title(title)
    ax.legend(loc="lower right" if display is RocCurveDisplay else "lower left")
    save(figure, path)
    return figure, ax, displays


_CURVE_PARAMETERS = """
    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    scores : mapping of str to array-like of shape (n_samples,), or DataFrame
        Each model's scores for the positive class (``predict_proba(X)[:, 1]`` or
        ``decision_function(X)``), by model name; a DataFrame's columns are read
        as models.
    pos_label : int or str, default=1
        The positive class (1, IDC, in this library's data).
    ax : matplotlib.axes.Axes, default=None
        Axes to draw on; None makes a new figure.
    path : str or path-like, default=None
        Where to save the figure as PNG; its folder must exist.
"""


def plot_roc_curves(
    y_true,
    scores: Mapping[str, np.ndarray] | pd.DataFrame,
    *,
    pos_label: int | str = 1,
    ax: Axes | None = None,
    path: str | os.PathLike | None = None,
) -> tuple[Figure, Axes, dict[str, RocCurveDisplay]]:
    """ROC curves of several models on one axis, their AUC in the legend.
    {parameters}
    Returns
    -------
    figure : matplotlib.figure.Figure
        The figure holding the axes.
    ax : matplotlib.axes.Axes
        The axes the curves are drawn on, with their legend.
    displays : dict of str to sklearn.metrics.RocCurveDisplay
        One per model, drawn by ``RocCurveDisplay.from_predictions``; its
        ``roc_auc`` and ``line_`` are the model's AUC and curve.

    See Also
    --------
    plot_precision_recall_curves : The same models' precision-recall curves.

    Examples
    --------
    >>> import numpy as np
    >>> from idc_sklearn.plotting import plot_roc_curves
    >>> y = np.array([0, 0, 1, 1, 0, 1])
    >>> scores = {{"good": [0.1, 0.3, 0.8, 0.7, 0.2, 0.9],
    ...           "poor": [0.6, 0.2, 0.4, 0.7, 0.5, 0.3]}}
    >>> fig, ax, displays = plot_roc_curves(y, scores)
    >>> [text.get_text() for text in ax.get_legend().get_texts()]
    ['good (AUC = 1.00)', 'poor (AUC = 0.56)', 'Chance level (AUC = 0.5)']
    """
    return _plot_curves(RocCurveDisplay, y_true, scores, pos_label, ax, path, "ROC")


def plot_precision_recall_curves(
    y_true,
    scores: Mapping[str, np.ndarray] | pd.DataFrame,
    *,
    pos_label: int | str = 1,
    ax: Axes | None = None,
    path: str | os.PathLike | None = None,
) -> tuple[Figure, Axes, dict[str, PrecisionRecallDisplay]]:
    """Precision-recall curves of several models on one axis, AP in the legend.
    {parameters}
    Returns
    -------
    figure : matplotlib.figure.Figure
        The figure holding the axes.
    ax : matplotlib.axes.Axes
        The axes the curves are drawn on, with their legend.
    displays : dict of str to sklearn.metrics.PrecisionRecallDisplay
        One per model, drawn by ``PrecisionRecallDisplay.from_predictions``; its
        ``average_precision`` and ``line_`` are the model's AP and curve.

    See Also
    --------
    plot_roc_curves : The same models' ROC curves.

    Examples
    --------
    >>> import numpy as np
    >>> from idc_sklearn.plotting import plot_precision_recall_curves
    >>> y = np.array([0, 0, 1, 1, 0, 1])
    >>> fig, ax, displays = plot_precision_recall_curves(
    ...     y, {{"good": [0.1, 0.3, 0.8, 0.7, 0.2, 0.9]}})
    >>> [text.get_text() for text in ax.get_legend().get_texts()]
    ['good (AP = 1.00)', 'Chance level (AP = 0.50)']
    """
    return _plot_curves(
        PrecisionRecallDisplay, y_true, scores, pos_label, ax, path, "Precision-recall"
    )


for _function in (plot_roc_curves, plot_precision_recall_curves):
    _function.__doc__ = _function.__doc__.format(parameters=_CURVE_PARAMETERS)


def plot_confusion_matrix(
    y_true,
    y_pred,
    *,
    labels: Sequence | None = None,
    display_labels: Sequence[str] | None = None,
    normalize: str | None = None,
    ax: Axes | None = None,
    path: str | os.PathLike | None = None,
) -> tuple[Figure, Axes, ConfusionMatrixDisplay]:
    """The confusion matrix of predicted labels, with counts or rates in the cells.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_pred : array-like of shape (n_samples,)
        Predicted labels.
    labels : sequence, default=None
        The labels to show, in order; None shows those present, and always both
        0 and 1 where the labels are 0/1.
    display_labels : sequence of str, default=None
        Names of ``labels`` on the axes; None names 0/1 labels "non-IDC" and "IDC"
        and shows other labels as they are.
    normalize : {"true", "pred", "all"}, default=None
        Rates over the true (rows), predicted (columns) or all labels; None shows
        counts.
    ax : matplotlib.axes.Axes, default=None
        Axes to draw on; None makes a new figure.
    path : str or path-like, default=None
        Where to save the figure as PNG; its folder must exist.

    Returns
    -------
    figure : matplotlib.figure.Figure
        The figure holding the axes (and the colour bar).
    ax : matplotlib.axes.Axes
        The axes the matrix is drawn on.
    display : sklearn.metrics.ConfusionMatrixDisplay
        Its ``confusion_matrix`` holds the numbers drawn; ``im_`` and
        ``text_`` the artists.

    See Also
    --------
    plot_roc_curves : Curves over every threshold of the scores.

    Examples
    --------
    >>> from idc_sklearn.plotting import plot_confusion_matrix
    >>> fig, ax, display = plot_confusion_matrix([0, 0, 1, 1, 1], [0, 1, 1, 1, 0])
    >>> display.confusion_matrix.tolist()
    [[1, 1], [1, 2]]
    >>> [label.get_text() for label in ax.get_xticklabels()]
    ['non-IDC', 'IDC']
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    for name, values in (("y_true", y_true), ("y_pred", y_pred)):
        if values.ndim != 1 or len(values) == 0:
            raise ValueError(
                f"{name} must be a non-empty 1-D array of labels; got shape "
                f"{values.shape}."
            )
    if len(y_pred) != len(y_true):
        raise ValueError(
            f"y_pred has {len(y_pred)} labels; expected {len(y_true)}, as y_true."
        )
    path = check_path(path)
    present = set(y_true.tolist()) | set(y_pred.tolist())
    if labels is None and present <= {0, 1}:
        labels = [0, 1]
        if display_labels is None:
            display_labels = list(_CLASS_NAMES)
    figure, (ax,) = figure_and_axes(ax, 1, (4.5, 4.0))
    display = ConfusionMatrixDisplay.from_predictions(
        y_true,
        y_pred,
        labels=labels,
        display_labels=display_labels,
        normalize=normalize,
        cmap="Blues",
        ax=ax,
        colorbar=True,
    )
    ax.set_title(
        "Confusion matrix" + (f" (normalised: {normalize})" if normalize else "")
    )
    save(figure, path)
    return figure, ax, display

"""Bar chart of a comparison table, as compare_models returns it."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from idc_sklearn.plotting._base import check_path, save

_LABELS = {
    "balanced_accuracy": "balanced accuracy",
    "f1_idc": "F1 (IDC)",
    "f1_weighted": "F1 (weighted)",
    "roc_auc": "ROC AUC",
    "average_precision": "average precision",
}


def _check_table(table, metrics) -> tuple[pd.DataFrame, list[str]]:
    if not isinstance(table, pd.DataFrame):
        raise TypeError(
            "table must be the pandas DataFrame compare_models returns; got "
            f"{type(table).__name__}."
        )
    if table.empty:
        raise ValueError("table has no rows; there is nothing to plot.")
    if isinstance(metrics, str):
        metrics = [metrics]
    metrics = list(metrics)
    if not metrics:
        raise ValueError("metrics is empty; name at least one metric to plot.")
    available = [c[: -len("_mean")] for c in table.columns if c.endswith("_mean")]
    missing = [m for m in metrics if f"{m}_mean" not in table.columns]
    if missing:
        raise ValueError(
            f"metrics names {missing}, which table lacks (no '<metric>_mean' "
            f"column); table has {available}."
        )
    return table, metrics


def plot_comparison(
    table: pd.DataFrame,
    metrics: Sequence[str] = ("balanced_accuracy", "f1_idc"),
    ax: Axes | None = None,
    path: str | os.PathLike | None = None,
) -> Figure:
    """Bar chart of models' scores with their standard deviations over folds.

    One group of bars per model (the table's rows, in order), one bar per metric,
    with error bars of one standard deviation where ``<metric>_std`` is present
    and not NaN.

    Parameters
    ----------
    table : pandas.DataFrame
        As :func:`~idc_sklearn.compare_models` returns: indexed by model name,
        with ``<metric>_mean`` and optionally ``<metric>_std`` columns.
    metrics : sequence of str, default=("balanced_accuracy", "f1_idc")
        The metrics to draw, by name.
    ax : matplotlib.axes.Axes, default=None
        Axes to draw on; None makes a new figure sized for the table.
    path : str or path-like, default=None
        Where to save the figure as PNG; its folder must exist.

    Returns
    -------
    figure : matplotlib.figure.Figure
        The figure holding the chart (``ax.figure`` when ``ax`` is given).

    Raises
    ------
    ValueError
        If ``table`` is empty or lacks a ``<metric>_mean`` column of ``metrics``.

    Examples
    --------
    >>> import pandas as pd
    >>> from idc_sklearn.plotting import plot_comparison
    >>> table = pd.DataFrame(
    ...     {"balanced_accuracy_mean": [0.89, 0.81],
    ...      "balanced_accuracy_std": [0.02, 0.03],
    ...      "f1_idc_mean": [0.85, 0.78], "f1_idc_std": [0.03, 0.04]},
    ...     index=["mlbn-inception", "color-logreg"],
    ... )
    >>> fig = plot_comparison(table)
    >>> len(fig.axes[0].patches)
    4
    >>> fig = plot_comparison(table, path="comparison.png")  # doctest: +SKIP
    """
    table, metrics = _check_table(table, metrics)
    path = check_path(path)
    n_models = len(table)
    if ax is None:
        figure = Figure(figsize=(max(6.0, 1.1 * n_models + 2.0), 4.5), layout="tight")
        ax = figure.add_subplot()
    else:
        figure = ax.figure
    positions = np.arange(n_models)
    width = 0.8 / len(metrics)
    for i, metric in enumerate(metrics):
        means = table[f"{metric}_mean"].to_numpy(dtype=float)
        std_column = f"{metric}_std"
        errors = (
            table[std_column].to_numpy(dtype=float)
            if std_column in table.columns
            else np.full(n_models, np.nan)
        )
        offset = (i - (len(metrics) - 1) / 2) * width
        bars = ax.bar(
            positions + offset,
            means,
            width,
            # A NaN deviation (one fold) draws no error bar rather than a zero one.
            yerr=None if np.isnan(errors).all() else errors,
            capsize=3,
            label=_LABELS.get(metric, metric),
        )
        ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=2)
    ax.set_xticks(positions, [str(name) for name in table.index])
    ax.tick_params(axis="x", labelrotation=30)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
    ax.set_ylabel("score")
    top = np.nanmax([table[f"{m}_mean"].max() for m in metrics] + [1.0])
    # Headroom above the tallest bar for its label and the legend.
    ax.set_ylim(0, top * 1.2)
    if top <= 1:
        ax.set_yticks(np.linspace(0, 1, 6))
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(loc="upper center", ncols=len(metrics), fontsize=8, frameon=False)
    folds = table.attrs.get("n_folds")
    title = "Model comparison"
    if folds:
        title += f" ({folds} fold{'s' if folds != 1 else ''}, mean ± std)"
    ax.set_title(title)
    save(figure, path)
    return figure

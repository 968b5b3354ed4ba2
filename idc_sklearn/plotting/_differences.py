"""The figures of a comparison's paired differences and per-patient scores."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from idc_sklearn.plotting._base import check_path, figure_and_axes, save

_DIFFERENCE_COLUMNS = ("difference", "low", "high")
_PATIENT_COLUMNS = ("model", "patient", "n_patches", "n_idc")
# Colours of a difference whose interval lies above 0, straddles it, lies below it.
_VERDICT_COLOURS = {"leads": "tab:green", "unclear": "tab:gray", "trails": "tab:red"}
_MARKERS = "osD^vP*X<>"


def _check_frame(frame, name: str, columns, source: str) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(
            f"{name} must be the pandas DataFrame {source}; got {type(frame).__name__}."
        )
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(
            f"{name} lacks the columns {missing}; it has {list(frame.columns)}, "
            f"expected those of {source}."
        )
    if frame.empty:
        raise ValueError(f"{name} has no rows; there is nothing to plot.")
    return frame


def plot_paired_differences(
    differences: pd.DataFrame,
    *,
    ax: Axes | None = None,
    path: str | os.PathLike | None = None,
) -> tuple[Figure, Axes, dict]:
    """Forest plot of a reference model's lead over every other model.

    One row per other model, in the order of ``differences`` (best other first, as
    :func:`~idc_sklearn.compare_models` sorts them): a dot at the difference in
    balanced accuracy, a bar over its 95% interval, green where the interval lies
    above 0 (the reference leads), red where it lies below (the other leads), grey
    where it includes 0. A line marks no difference.

    Parameters
    ----------
    differences : pandas.DataFrame
        ``details.differences`` of :func:`~idc_sklearn.compare_models`: indexed by
        the other model, with ``difference``, ``low`` and ``high``;
        ``differences.attrs["reference"]`` names the reference (else "reference").
    ax : matplotlib.axes.Axes, default=None
        Axes to draw on; None makes a new figure sized for the rows.
    path : str or path-like, default=None
        Where to save the figure as PNG; its folder must exist.

    Returns
    -------
    figure : matplotlib.figure.Figure
    ax : matplotlib.axes.Axes
    artists : dict of str to matplotlib.container.ErrorbarContainer
        One per other model, by name.

    Raises
    ------
    TypeError
        If ``differences`` is not a DataFrame.
    ValueError
        If it lacks a column above, has no rows, or holds a non-finite value.

    Examples
    --------
    >>> import pandas as pd
    >>> from idc_sklearn.plotting import plot_paired_differences
    >>> differences = pd.DataFrame(
    ...     {"difference": [0.01, 0.06], "low": [-0.02, 0.03], "high": [0.04, 0.09]},
    ...     index=["features-rf", "color-logreg"],
    ... )
    >>> fig, ax, artists = plot_paired_differences(differences)
    >>> sorted(artists)
    ['color-logreg', 'features-rf']
    """
    differences = _check_frame(
        differences,
        "differences",
        _DIFFERENCE_COLUMNS,
        "compare_models returns as details.differences",
    )
    values = differences[list(_DIFFERENCE_COLUMNS)].to_numpy(dtype=float)
    if not np.isfinite(values).all():
        raise ValueError("differences holds NaN or infinity; expected finite scores.")
    path = check_path(path)
    n = len(differences)
    figure, (ax,) = figure_and_axes(ax, 1, (7.0, 1.0 + 0.45 * n))
    reference = differences.attrs.get("reference") or "reference"
    positions = np.arange(n)[::-1]  # the first row on top
    artists = {}
    rows = zip(positions, differences.index, values, strict=True)
    for position, name, (difference, low, high) in rows:
        verdict = "leads" if low > 0 else "trails" if high < 0 else "unclear"
        artists[str(name)] = ax.errorbar(
            difference,
            position,
            xerr=[[difference - low], [high - difference]],
            fmt="o",
            color=_VERDICT_COLOURS[verdict],
            capsize=4,
        )
        ax.annotate(
            f"{difference:+.3f} [{low:+.3f}, {high:+.3f}]",
            (high, position),
            xytext=(6, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(positions, [str(name) for name in differences.index])
    ax.set_ylim(-0.7, n - 0.3)
    low, high = values[:, 1].min(), values[:, 2].max()
    span = max(high - low, 0.02)
    # Room on the right for the annotations.
    ax.set_xlim(min(low, 0) - 0.05 * span, max(high, 0) + 0.6 * span)
    ax.set_xlabel(f"balanced accuracy of {reference} minus the other's (95% CI)")
    ax.set_title(f"{reference} against every other model")
    ax.grid(axis="x", alpha=0.3)
    save(figure, path)
    return figure, ax, artists


def plot_patient_scores(
    patients: pd.DataFrame,
    *,
    metric: str = "balanced_accuracy",
    ax: Axes | None = None,
    path: str | os.PathLike | None = None,
) -> tuple[Figure, Axes, dict]:
    """Each model's score on each test patient: a dot per patient and model.

    Patients who show both classes come first, on a shaded band, ordered by their
    mean score over the models (hardest first); patients who show one class
    follow, where balanced accuracy is the share of that class called right.

    Parameters
    ----------
    patients : pandas.DataFrame
        One row per model and patient, with ``model``, ``patient``, ``n_patches``,
        ``n_idc`` and ``metric``: :func:`~idc_sklearn.report.patient_table` of a
        comparison's predictions, or :func:`~idc_sklearn.metrics.patient_scores`
        per model with a ``model`` column.
    metric : str, default="balanced_accuracy"
        The column to plot.
    ax : matplotlib.axes.Axes, default=None
        Axes to draw on; None makes a new figure sized for the patients.
    path : str or path-like, default=None
        Where to save the figure as PNG; its folder must exist.

    Returns
    -------
    figure : matplotlib.figure.Figure
    ax : matplotlib.axes.Axes
    artists : dict of str to matplotlib.lines.Line2D
        The dots of each model, by name.

    Raises
    ------
    TypeError
        If ``patients`` is not a DataFrame.
    ValueError
        If it lacks a column above or has no rows.

    Examples
    --------
    >>> import pandas as pd
    >>> from idc_sklearn.plotting import plot_patient_scores
    >>> patients = pd.DataFrame({
    ...     "model": ["a", "a", "b", "b"], "patient": ["1", "2", "1", "2"],
    ...     "n_patches": [10, 8, 10, 8], "n_idc": [4, 0, 4, 0],
    ...     "balanced_accuracy": [0.9, 0.75, 0.7, 0.5],
    ... })
    >>> fig, ax, artists = plot_patient_scores(patients)
    >>> [tick.get_text() for tick in ax.get_xticklabels()]
    ['1', '2']
    """
    if not isinstance(metric, str):
        raise TypeError(f"metric must be a column name; got {type(metric).__name__}.")
    patients = _check_frame(
        patients,
        "patients",
        (*_PATIENT_COLUMNS, metric),
        "report.patient_table returns",
    )
    path = check_path(path)
    frame = patients.assign(patient=patients["patient"].astype(str))
    per_patient = frame.groupby("patient").agg(
        n_patches=("n_patches", "first"),
        n_idc=("n_idc", "first"),
        score=(metric, "mean"),
    )
    per_patient["both"] = (per_patient["n_idc"] > 0) & (
        per_patient["n_idc"] < per_patient["n_patches"]
    )
    order = per_patient.sort_values(
        ["both", "score"], ascending=[False, True], kind="stable"
    ).index
    n_both = int(per_patient["both"].sum())
    position = pd.Series(np.arange(len(order)), index=order)
    figure, (ax,) = figure_and_axes(ax, 1, (max(7.0, 0.12 * len(order) + 3.0), 4.2))
    if n_both:
        ax.axvspan(-0.5, n_both - 0.5, color="tab:orange", alpha=0.12, linewidth=0)
        ax.text(
            (n_both - 1) / 2,
            1.04,
            f"both classes ({n_both})",
            ha="center",
            fontsize=8,
            transform=ax.get_xaxis_transform(),
        )
    if n_both < len(order):
        ax.text(
            (n_both + len(order) - 1) / 2,
            1.04,
            f"one class only ({len(order) - n_both})",
            ha="center",
            fontsize=8,
            transform=ax.get_xaxis_transform(),
        )
    models = list(pd.unique(frame["model"]))
    # A small offset per model keeps the dots of one patient apart.
    offsets = np.linspace(-0.25, 0.25, len(models)) if len(models) > 1 else [0.0]
    artists = {}
    for i, (model, offset) in enumerate(zip(models, offsets, strict=True)):
        rows = frame[frame["model"] == model]
        (artists[str(model)],) = ax.plot(
            position[rows["patient"]].to_numpy() + offset,
            rows[metric].to_numpy(dtype=float),
            _MARKERS[i % len(_MARKERS)],
            markersize=4,
            alpha=0.8,
            label=str(model),
            linestyle="none",
        )
    ax.set_xticks(np.arange(len(order)), list(order))
    ax.tick_params(axis="x", labelrotation=90, labelsize=6 if len(order) > 30 else 8)
    ax.set_xlim(-0.5, len(order) - 0.5)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("test patient")
    ax.set_ylabel(metric.replace("_", " "))
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right", ncols=min(len(models), 4))
    save(figure, path)
    return figure, ax, artists

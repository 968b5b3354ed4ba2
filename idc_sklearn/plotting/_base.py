"""What every figure shares: the axes to draw on, the PNG to save, argument checks."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure, FigureBase

# check_fraction, the check of an opacity (alpha), is imported by the slide
# figures from here, with the figures' other checks.
from idc_sklearn._checks import check_fraction as check_fraction
from idc_sklearn._checks import check_output_path


def check_path(path) -> Path | None:
    """Validate ``path`` before anything is drawn, so a bad one fails fast."""
    return check_output_path(
        path,
        "path",
        ("", ".png"),
        optional=True,
        expected="None or the path of a PNG file",
        wrong_suffix="{name}={path!r} does not end in .png; figures are saved as PNG "
        "(call the returned figure's savefig for other formats).",
        no_folder="{name}={path!r}: its folder {folder!r} does not exist; create it "
        "first.",
    )


def save(figure: Figure, path: Path | None) -> None:
    """Write ``figure`` to ``path`` (checked by :func:`check_path`) as PNG, if given."""
    if path is not None:
        figure.savefig(path, format="png")


def root_figure(ax: Axes) -> Figure:
    """The Figure that ``ax`` is drawn in, through any SubFigure."""
    figure = ax.figure
    # Axes on a SubFigure: the root Figure is the one that saves and draws.
    while not isinstance(figure, Figure) and isinstance(figure, FigureBase):
        figure = figure.figure
    return figure


def figure_and_axes(
    ax, n: int, figsize: tuple[float, float]
) -> tuple[Figure, list[Axes]]:
    """New figure with ``n`` axes side by side, or the ``n`` axes given, checked."""
    if ax is None:
        figure = Figure(figsize=figsize, layout="constrained")
        return figure, list(figure.subplots(1, n, squeeze=False)[0])
    axes = [ax] if isinstance(ax, Axes) else ax
    if isinstance(axes, Iterable) and not isinstance(axes, str):
        axes = list(np.ravel(np.asarray(axes, dtype=object)))
    if (
        not isinstance(axes, list)
        or len(axes) != n
        or not all(isinstance(a, Axes) for a in axes)
    ):
        expected = "a matplotlib Axes" if n == 1 else f"{n} matplotlib Axes"
        got = f"{len(axes)} item(s)" if isinstance(axes, list) else type(ax).__name__
        raise ValueError(f"ax must be None or {expected} to draw on; got {got}.")
    return root_figure(axes[0]), axes


def check_vector(values, name: str, n: int | None = None) -> np.ndarray:
    """A 1-D array of ``n`` finite real numbers (any ``n`` when None)."""
    values = np.asarray(values)
    if values.ndim != 1:
        hint = (
            " For predict_proba's output pass its IDC column, proba[:, 1]."
            if values.ndim == 2 and values.shape[1] == 2
            else ""
        )
        raise ValueError(
            f"{name} must be 1-D; got an array of shape {values.shape}.{hint}"
        )
    if values.dtype == bool:
        values = values.astype(np.int64)
    if not (
        np.issubdtype(values.dtype, np.integer)
        or np.issubdtype(values.dtype, np.floating)
    ):
        raise ValueError(f"{name} must hold real numbers; got dtype {values.dtype}.")
    if n is not None and len(values) != n:
        raise ValueError(f"{name} has {len(values)} values; expected {n}.")
    if len(values) == 0:
        raise ValueError(f"{name} is empty; at least one value is required.")
    if not np.isfinite(values).all():
        raise ValueError(f"{name} contains NaN or infinity.")
    return values


def check_integers(values, name: str, n: int) -> np.ndarray:
    values = check_vector(values, name, n)
    fractional = values != np.round(values)
    if fractional.any():
        raise ValueError(
            f"{name} must hold whole numbers of pixels; got {values[fractional][0]!r} "
            f"among {fractional.sum()} fractional values."
        )
    return values.astype(np.int64)

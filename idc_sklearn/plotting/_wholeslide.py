"""The figure of a whole-slide prediction: its thumbnail with the IDC probability.

It takes arrays (the thumbnail, the probability map and the grid's geometry) and
GeoJSON regions, so it needs neither the slide readers nor ``wholeslide``:
:meth:`idc_sklearn.SlideResult.plot` passes it a result's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from idc_sklearn.plotting._base import (
    check_fraction,
    check_path,
    figure_and_axes,
    save,
)
from idc_sklearn.plotting._slides import draw_probability


def _check_pair(value, name: str, *, positive: bool) -> tuple[float, float]:
    try:
        pair = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        pair = ()
    least = (lambda v: v > 0) if positive else (lambda v: v >= 0)
    if len(pair) != 2 or not all(np.isfinite(v) and least(v) for v in pair):
        kind = "positive" if positive else "non-negative"
        raise ValueError(
            f"{name} must be (x, y), two {kind} numbers of level-0 pixels; "
            f"got {value!r}."
        )
    return pair


def _check_arrays(thumbnail, probability_map) -> tuple[np.ndarray, np.ndarray]:
    thumbnail = np.asarray(thumbnail)
    if thumbnail.ndim != 3 or thumbnail.shape[2] != 3 or thumbnail.dtype != np.uint8:
        raise ValueError(
            "thumbnail must be an RGB uint8 array of shape (h, w, 3); got shape "
            f"{thumbnail.shape} and dtype {thumbnail.dtype}."
        )
    probability_map = np.asarray(probability_map)
    if probability_map.ndim != 2 or not np.issubdtype(
        probability_map.dtype, np.floating
    ):
        raise ValueError(
            "probability_map must be a 2-D float array (rows, cols), NaN off the "
            f"tissue; got shape {probability_map.shape} and dtype "
            f"{probability_map.dtype}."
        )
    return thumbnail, probability_map


def _rings(regions) -> list[np.ndarray]:
    """The outlines of a GeoJSON FeatureCollection's polygons, as (n, 2) arrays."""
    if not (isinstance(regions, Mapping) and "features" in regions):
        raise TypeError(
            "regions must be None or a GeoJSON FeatureCollection (a dict with "
            f"features), as SlideResult.to_geojson returns; got "
            f"{type(regions).__name__}."
        )
    rings = []
    for feature in regions["features"]:
        geometry = feature["geometry"]
        polygons = (
            [geometry["coordinates"]]
            if geometry["type"] == "Polygon"
            else geometry["coordinates"]
        )
        rings += [np.asarray(ring, float) for polygon in polygons for ring in polygon]
    return rings


def plot_slide_prediction(
    thumbnail,
    probability_map,
    *,
    dimensions,
    stride,
    origin=(0, 0),
    regions=None,
    title: str | None = None,
    cmap="RdYlBu_r",
    alpha: float = 0.5,
    ax: Axes | None = None,
    path: str | os.PathLike | None = None,
) -> tuple[Figure, list[Axes], dict]:
    """A slide's thumbnail with the IDC probability of each tile over it.

    Each tile sent to the model is coloured by its IDC probability, translucent
    over the thumbnail; cells that are NaN (background) stay clear. ``regions``
    (GeoJSON polygons, as :meth:`SlideResult.to_geojson` returns) are outlined.
    Axes are in the slide's level-0 pixels, as QuPath shows them.
    :meth:`SlideResult.plot` draws :func:`~idc_sklearn.predict_slide`'s result
    with this function.

    Parameters
    ----------
    thumbnail : ndarray of shape (h, w, 3), uint8
        The whole slide, at any downsample.
    probability_map : ndarray of shape (rows, cols), float
        The IDC probability per grid cell; NaN where none was predicted.
    dimensions : (int, int)
        The slide's level-0 width and height in pixels (the thumbnail spans them).
    stride : (float, float)
        A grid cell's side in level-0 pixels, along x and y.
    origin : (float, float), default=(0, 0)
        The level-0 pixel of the grid's top-left corner.
    regions : dict, default=None
        A GeoJSON FeatureCollection of Polygons or MultiPolygons in level-0
        pixels, outlined in black; None outlines none.
    title : str, default=None
        The axes' title; None leaves it empty.
    cmap : str or matplotlib Colormap, default="RdYlBu_r"
    alpha : float, default=0.5
        Opacity of the colour over the tissue.
    ax : matplotlib Axes, default=None
        Where to draw; None makes a new figure.
    path : str or path-like, default=None
        Where to save the figure as PNG; its folder must exist.

    Returns
    -------
    figure : matplotlib.figure.Figure
    axes : list of one matplotlib.axes.Axes
    artists : dict
        ``"thumbnail"`` and ``"proba"`` (AxesImage), ``"colorbar"``, and
        ``"regions"`` (the outlines' Line2D, empty without ``regions``).

    Examples
    --------
    >>> import numpy as np
    >>> from idc_sklearn.plotting import plot_slide_prediction
    >>> thumbnail = np.full((40, 60, 3), 230, np.uint8)
    >>> proba = np.array([[0.9, np.nan, 0.1], [np.nan, 0.2, 0.8]])
    >>> fig, axes, artists = plot_slide_prediction(
    ...     thumbnail, proba, dimensions=(600, 400), stride=(200, 200))
    >>> artists["proba"].get_extent()
    [0.0, 600.0, 400.0, 0.0]
    """
    thumbnail, probability_map = _check_arrays(thumbnail, probability_map)
    width, height = _check_pair(dimensions, "dimensions", positive=True)
    stride = _check_pair(stride, "stride", positive=True)
    x0, y0 = _check_pair(origin, "origin", positive=False)
    rings = [] if regions is None else _rings(regions)
    check_fraction(alpha, "alpha")
    path = check_path(path)
    aspect = height / width
    figure, axes = figure_and_axes(
        ax, 1, (6.2, float(np.clip(5.0 * aspect, 2.5, 9)) + 0.8)
    )
    axis = axes[0]
    artists = {"thumbnail": axis.imshow(thumbnail, extent=(0, width, height, 0))}
    rows, cols = probability_map.shape
    extent = (x0, x0 + cols * stride[0], y0 + rows * stride[1], y0)
    artists["proba"] = draw_probability(
        axis, probability_map, cmap=cmap, alpha=alpha, extent=extent
    )
    artists["regions"] = []
    for ring in rings:
        artists["regions"] += axis.plot(ring[:, 0], ring[:, 1], color="k", lw=1)
    axis.set_xlim(0, width)
    axis.set_ylim(height, 0)
    if title is not None:
        axis.set_title(title)
    axis.set_xlabel("x (level-0 pixels)")
    axis.set_ylabel("y (level-0 pixels)")
    artists["colorbar"] = figure.colorbar(
        artists["proba"], ax=axis, label="IDC probability", shrink=0.8
    )
    save(figure, path)
    return figure, axes, artists

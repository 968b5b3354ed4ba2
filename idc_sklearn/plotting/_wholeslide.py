"""The figure of a whole-slide prediction: its thumbnail with the IDC probability."""

from __future__ import annotations

import os

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from idc_sklearn.plotting._base import (
    check_fraction,
    check_path,
    figure_and_axes,
    save,
)


def plot_slide_prediction(
    result,
    *,
    threshold: float | None = None,
    cmap="RdYlBu_r",
    alpha: float = 0.5,
    ax: Axes | None = None,
    path: str | os.PathLike | None = None,
) -> tuple[Figure, list[Axes], dict]:
    """A slide's thumbnail with :func:`~idc_sklearn.predict_slide`'s probabilities.

    Each tile sent to the model is coloured by its IDC probability, translucent
    over the thumbnail; background tiles stay clear. With ``threshold``, the IDC
    regions (the polygons of :meth:`SlideResult.to_geojson`) are outlined. Axes are
    in the slide's level-0 pixels, as QuPath shows them.

    Parameters
    ----------
    result : SlideResult
        What :func:`~idc_sklearn.predict_slide` returned.
    threshold : float, default=None
        Outline the regions of tiles above this probability; None outlines none.
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
        ``"regions"`` (the outlines' Line2D, empty without ``threshold``).
    """
    from idc_sklearn.wholeslide import SlideResult

    if not isinstance(result, SlideResult):
        raise TypeError(
            f"result must be the SlideResult of predict_slide; got "
            f"{type(result).__name__}."
        )
    check_fraction(alpha, "alpha")
    path = check_path(path)
    regions = [] if threshold is None else result.to_geojson(threshold=threshold)
    width, height = result.dimensions
    aspect = height / width
    figure, axes = figure_and_axes(
        ax, 1, (6.2, float(np.clip(5.0 * aspect, 2.5, 9)) + 0.8)
    )
    axis = axes[0]
    artists = {"thumbnail": axis.imshow(result.thumbnail, extent=(0, width, height, 0))}
    rows, cols = result.probability_map.shape
    x0, y0 = result.origin
    extent = (
        x0,
        x0 + cols * result.stride[0],
        y0 + rows * result.stride[1],
        y0,
    )
    artists["proba"] = axis.imshow(
        np.ma.masked_invalid(result.probability_map),
        cmap=cmap,
        vmin=0,
        vmax=1,
        alpha=alpha,
        extent=extent,
        interpolation="nearest",
    )
    artists["regions"] = []
    for feature in [] if threshold is None else regions["features"]:
        geometry = feature["geometry"]
        rings = (
            geometry["coordinates"]
            if geometry["type"] == "Polygon"
            else [r for polygon in geometry["coordinates"] for r in polygon]
        )
        for ring in rings:
            ring = np.asarray(ring)
            artists["regions"] += axis.plot(ring[:, 0], ring[:, 1], color="k", lw=1)
    axis.set_xlim(0, width)
    axis.set_ylim(height, 0)
    summary = result.summary(0.5 if threshold is None else threshold)
    axis.set_title(
        f"{os.path.basename(result.slide)}: IDC {summary['idc_mm2']:.2f} of "
        f"{summary['tissue_mm2']:.2f} mm² of tissue"
    )
    axis.set_xlabel("x (level-0 pixels)")
    axis.set_ylabel("y (level-0 pixels)")
    artists["colorbar"] = figure.colorbar(
        artists["proba"], ax=axis, label="IDC probability", shrink=0.8
    )
    save(figure, path)
    return figure, axes, artists

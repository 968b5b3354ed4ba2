"""What :func:`predict_slide` returns: a slide's tiles, maps and numbers, and
the writers of its outputs (heatmap, probability map, tile CSV, GeoJSON)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from idc_sklearn._checks import check_fraction, check_output_path

# What SlideResult.save writes into a slide's folder, in this order.
OUTPUT_FILES = (
    "heatmap.png",
    "probability.tif",
    "tiles.csv",
    "regions.geojson",
    "summary.json",
)


@dataclass(frozen=True, eq=False, repr=False)
class SlideResult:
    """What :func:`predict_slide` found on one slide.

    Attributes
    ----------
    slide : str
        The slide's path.
    dimensions : (int, int)
        Its level-0 width and height in pixels.
    mpp : (float, float)
        Its level-0 microns per pixel along x and y.
    target_mpp : float
        The resolution the tiles were read at, microns per tile pixel.
    tile_px : int
        The tiles' side in pixels as the model saw them.
    stride : (float, float)
        A tile's side in level-0 pixels, along x and y (tiles do not overlap).
    origin : (float, float)
        The level-0 pixel of the tile grid's top-left corner.
    tiles : pandas.DataFrame
        One row per tile sent to the model (tissue at least ``min_tissue``):
        ``x``, ``y`` (level-0 top-left pixel), ``row``, ``col`` (its cell of the
        grid), ``tissue`` (fraction of tissue) and ``probability`` (of IDC).
    probability_map : ndarray of shape (rows, cols), float32
        The IDC probability per grid cell; NaN where no tile was sent to the model.
    tissue_map : ndarray of shape (rows, cols), float32
        The tissue fraction per grid cell.
    thumbnail : ndarray of shape (h, w, 3), uint8
        The slide's thumbnail the tissue was found on.
    thumbnail_downsample : (float, float)
        Level-0 pixels per thumbnail pixel, along x and y.
    tissue_threshold : float
        The saturation above which a thumbnail pixel is tissue.
    backend : {"openslide", "tiffslide"}
        The reader that read the slide.
    """

    slide: str
    dimensions: tuple[int, int]
    mpp: tuple[float, float]
    target_mpp: float
    tile_px: int
    stride: tuple[float, float]
    origin: tuple[float, float]
    tiles: pd.DataFrame
    probability_map: np.ndarray
    tissue_map: np.ndarray
    thumbnail: np.ndarray
    thumbnail_downsample: tuple[float, float]
    tissue_threshold: float
    backend: str

    def __repr__(self) -> str:
        rows, cols = self.probability_map.shape
        return (
            f"SlideResult({Path(self.slide).name!r}, {len(self.tiles):,} tissue tiles "
            f"of a {rows} x {cols} grid, mean IDC probability "
            f"{self.tiles['probability'].mean():.3f})"
        )

    @property
    def tile_area_mm2(self) -> float:
        """The area of one tile in mm²."""
        return float(self.stride[0] * self.mpp[0] * self.stride[1] * self.mpp[1] / 1e6)

    def summary(self, threshold: float = 0.5) -> dict:
        """The slide in numbers: tissue and IDC areas, IDC fraction of tissue.

        Parameters
        ----------
        threshold : float, default=0.5
            A tile is IDC where its probability exceeds this (``predict``'s rule).

        Returns
        -------
        dict
            ``slide``, ``width``, ``height``, ``mpp``, ``tiles`` (sent to the
            model), ``idc_tiles``, ``tissue_mm2`` (the tissue inside those tiles),
            ``idc_mm2`` (the tissue inside the IDC tiles), ``idc_fraction``
            (``idc_mm2 / tissue_mm2``), ``mean_probability`` and ``threshold``.
        """
        threshold = check_fraction(threshold, "threshold")
        tissue = self.tiles["tissue"].to_numpy()
        idc = self.tiles["probability"].to_numpy() > threshold
        tissue_mm2 = float(tissue.sum() * self.tile_area_mm2)
        idc_mm2 = float(tissue[idc].sum() * self.tile_area_mm2)
        return {
            "slide": str(self.slide),
            "width": self.dimensions[0],
            "height": self.dimensions[1],
            "mpp": float(np.mean(self.mpp)),
            "tiles": len(self.tiles),
            "idc_tiles": int(idc.sum()),
            "tissue_mm2": tissue_mm2,
            "idc_mm2": idc_mm2,
            "idc_fraction": idc_mm2 / tissue_mm2 if tissue_mm2 else 0.0,
            "mean_probability": float(self.tiles["probability"].mean()),
            "threshold": threshold,
        }

    def to_geojson(self, path=None, *, threshold: float = 0.5) -> dict:
        """The IDC regions as GeoJSON that QuPath imports as annotations.

        The tiles whose probability exceeds ``threshold`` are merged (shapely's
        ``union_all``) into polygons in level-0 pixel coordinates; each region is a
        Feature with QuPath's ``objectType`` "annotation", classification "IDC",
        and its tiles' count and mean probability as measurements.

        Parameters
        ----------
        path : str or path-like, default=None
            Where to write the GeoJSON (``.geojson`` or ``.json``); None writes
            nothing.
        threshold : float, default=0.5

        Returns
        -------
        dict
            The FeatureCollection.
        """
        import shapely

        threshold = check_fraction(threshold, "threshold")
        path = check_output_path(path, "path", (".geojson", ".json"), optional=True)
        idc = self.tiles[self.tiles["probability"] > threshold]
        # Each box from the grid's edges, not from the tiles' rounded corners: with
        # a stride that is not a whole number of pixels (400.8 at 0.499 um), boxes
        # from the corners overlap or leave slits of a fraction of a pixel, and a
        # region of adjacent tiles falls apart into several.
        (ox, oy), (sx, sy) = self.origin, self.stride
        col, row = idc["col"].to_numpy(float), idc["row"].to_numpy(float)
        x, y = ox + col * sx, oy + row * sy
        boxes = shapely.box(x, y, ox + (col + 1) * sx, oy + (row + 1) * sy)
        merged = shapely.union_all(boxes) if len(boxes) else shapely.Polygon()
        polygons = list(getattr(merged, "geoms", [merged]))
        cx, cy = x + sx / 2, y + sy / 2
        proba = idc["probability"].to_numpy()
        features = []
        for polygon in polygons:
            if polygon.is_empty:
                continue
            inside = shapely.contains_xy(polygon, cx, cy)
            features.append(
                {
                    "type": "Feature",
                    "geometry": shapely.geometry.mapping(polygon),
                    "properties": {
                        "objectType": "annotation",
                        "classification": {"name": "IDC", "color": [220, 40, 40]},
                        "measurements": {
                            "tiles": int(inside.sum()),
                            "mean_probability": float(proba[inside].mean()),
                            "area_mm2": float(
                                polygon.area * self.mpp[0] * self.mpp[1] / 1e6
                            ),
                        },
                    },
                }
            )
        collection = _plain({"type": "FeatureCollection", "features": features})
        if path is not None:
            path.write_text(json.dumps(collection))
        return collection

    def save_tiles(self, path) -> None:
        """Write the tile table as CSV."""
        self.tiles.to_csv(
            check_output_path(path, "path", (".csv",), optional=True), index=False
        )

    def save_probability_map(self, path) -> None:
        """Write the probability map: NumPy ``.npy``, or a float32 TIFF.

        Cells no tile was sent to the model for are NaN. In the TIFF, the
        resolution is recorded: one pixel per tile.
        """
        path = check_output_path(path, "path", (".npy", ".tif", ".tiff"), optional=True)
        data = self.probability_map.astype(np.float32)
        if path.suffix.lower() == ".npy":
            np.save(path, data)
            return
        import tifffile

        # pixels per centimetre
        resolution = tuple(
            1e4 / (s * m) for s, m in zip(self.stride, self.mpp, strict=True)
        )
        tifffile.imwrite(path, data, resolution=resolution, resolutionunit="CENTIMETER")

    def save(self, folder, *, threshold: float = 0.5) -> list[Path]:
        """Write every output of the slide into ``folder``, as ``idc-sklearn slide``.

        ``heatmap.png`` (:meth:`plot`, the regions outlined), ``probability.tif``
        (:meth:`save_probability_map`), ``tiles.csv`` (:meth:`save_tiles`),
        ``regions.geojson`` (:meth:`to_geojson`) and ``summary.json``
        (:meth:`summary`), each at ``threshold``.

        Parameters
        ----------
        folder : str or path-like
            Made where it does not exist; its parent must.
        threshold : float, default=0.5
            A tile is IDC where its probability exceeds this.

        Returns
        -------
        list of pathlib.Path
            The files written, in the order of ``OUTPUT_FILES``.
        """
        threshold = check_fraction(threshold, "threshold")
        folder = check_output_path(
            folder,
            "folder",
            expected="a str or path-like",
            no_folder="{name}={path!r}: its parent {folder!r} does not exist.",
        )
        folder.mkdir(exist_ok=True)
        heatmap, probability, tiles, regions, summary = (
            folder / name for name in OUTPUT_FILES
        )
        self.plot(threshold=threshold, path=heatmap)
        self.save_probability_map(probability)
        self.save_tiles(tiles)
        self.to_geojson(regions, threshold=threshold)
        summary.write_text(json.dumps(self.summary(threshold), indent=2) + "\n")
        return [folder / name for name in OUTPUT_FILES]

    def plot(self, *, threshold=None, ax=None, path=None, **kwargs):
        """The thumbnail with the IDC probability over the tissue.

        The arrays of this result drawn by
        :func:`idc_sklearn.plotting.plot_slide_prediction`, with the IDC regions
        of :meth:`to_geojson` outlined where ``threshold`` is given, and the
        slide's name and areas (:meth:`summary`) as the title.

        Parameters
        ----------
        threshold : float, default=None
            Outline the regions of tiles above this probability; None outlines
            none (the title's IDC area is then at 0.5).
        ax : matplotlib Axes, default=None
        path : str or path-like, default=None
            Where to save the figure as PNG.
        **kwargs
            ``cmap`` and ``alpha``, as
            :func:`~idc_sklearn.plotting.plot_slide_prediction` takes them.

        Returns
        -------
        figure, axes, artists
            As :func:`~idc_sklearn.plotting.plot_slide_prediction` returns.
        """
        from idc_sklearn.plotting import plot_slide_prediction

        regions = None if threshold is None else self.to_geojson(threshold=threshold)
        summary = self.summary(0.5 if threshold is None else threshold)
        title = (
            f"{os.path.basename(self.slide)}: IDC {summary['idc_mm2']:.2f} of "
            f"{summary['tissue_mm2']:.2f} mm² of tissue"
        )
        return plot_slide_prediction(
            self.thumbnail,
            self.probability_map,
            dimensions=self.dimensions,
            origin=self.origin,
            stride=self.stride,
            regions=regions,
            title=title,
            ax=ax,
            path=path,
            **kwargs,
        )


def _plain(value):
    """Tuples (as shapely's mapping returns) as lists, for JSON."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value

"""Whole-slide inference: a fitted estimator run over a slide file, tile by tile.

:func:`predict_slide` opens a whole-slide image with OpenSlide (any format it reads:
Aperio SVS, generic tiled TIFF, Hamamatsu, MIRAX, ...) or, where OpenSlide cannot
serve, with tiffslide; finds the tissue on a thumbnail; cuts the tissue into tiles
of the estimator's patch size at the archive's resolution (``target_mpp``); and
streams them, read in batches by DataLoader workers while the model predicts, through
the estimator's own ``predict_proba``. Memory is bounded by the batch and the
thumbnail, never by the slide.

It returns a :class:`SlideResult`: the tile table, the probability map, the slide's
summary, and the writers of the outputs (heatmap PNG, probability map, tile CSV,
GeoJSON regions that QuPath imports as annotations).

The slide readers are an optional extra: ``pip install "idc_sklearn[slides]"``.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["ARCHIVE_MPP", "SlideResult", "predict_slide", "write_slide"]

# The archive's patches: slides scanned at 40x (about 0.25 um per pixel) and
# downsampled 16:1 by the authors, so one patch pixel spans about 4 um.
ARCHIVE_MPP = 4.0

_BACKENDS = ("auto", "openslide", "tiffslide")
_EXTRA = 'pip install "idc_sklearn[slides]"'
# The thumbnail tissue is found on: about this many thumbnail pixels per tile side,
# and at most this many pixels on its longer side.
_THUMB_PER_TILE = 8
_THUMB_MAX = 2048
# The thumbnail is read in blocks of this many thumbnail pixels a side, so a slide
# without a pyramid is never read whole.
_THUMB_BLOCK = 512
# Saturation below this is never tissue, whatever Otsu's threshold says (a blank
# slide has no tissue to split from the background).
_MIN_SATURATION = 0.05
# Tiles side by side in a row of the grid are read as one region of at most this
# many tiles.
_RUN = 32


# ---------------------------------------------------------------------------
# Reading slides


class _Reader:
    """One open slide, OpenSlide's or tiffslide's, behind the calls used here."""

    def __init__(self, path: str, backend: str) -> None:
        self.path, self.backend = path, backend
        if backend == "openslide":
            import openslide

            self._slide = openslide.OpenSlide(path)
            prefix = "openslide"
        else:
            import tiffslide

            self._slide = tiffslide.TiffSlide(path)
            prefix = "tiffslide"
        props = self._slide.properties
        self.mpp = tuple(_float_or_none(props.get(f"{prefix}.mpp-{a}")) for a in "xy")
        self.dimensions = tuple(int(v) for v in self._slide.dimensions)
        self.level_downsamples = tuple(float(d) for d in self._slide.level_downsamples)
        self.level_dimensions = tuple(
            tuple(int(v) for v in d) for d in self._slide.level_dimensions
        )

    def best_level(self, downsample: float) -> int:
        """The most detailed level at or finer than ``downsample``."""
        fits = [
            i for i, d in enumerate(self.level_downsamples) if d <= downsample * 1.0001
        ]
        return max(fits, key=lambda i: self.level_downsamples[i]) if fits else 0

    def read(self, x: int, y: int, level: int, size: tuple[int, int]) -> np.ndarray:
        """RGB uint8 of ``size`` (width, height) at ``level``, from level-0 (x, y).

        Transparent pixels (outside the scanned area) are white.
        """
        region = np.asarray(self._slide.read_region((int(x), int(y)), level, size))
        if region.shape[2] == 3:
            return region
        rgb, alpha = region[..., :3], region[..., 3:]
        if alpha.min() == 255:
            return rgb
        # Over white: rgb * a + 255 * (1 - a), with a = alpha / 255.
        alpha = alpha.astype(np.uint16)
        blended = (rgb * alpha + 255 * (255 - alpha) + 127) // 255
        return blended.astype(np.uint8)

    def close(self) -> None:
        self._slide.close()


def _float_or_none(value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None


def _open(path: str, backend: str) -> _Reader:
    """Open ``path`` with ``backend``; "auto" tries OpenSlide, then tiffslide."""
    if backend != "auto":
        try:
            return _Reader(path, backend)
        except ImportError as exc:
            raise ImportError(
                f"backend={backend!r} needs the {backend} package: {_EXTRA}"
            ) from exc
        except Exception as exc:  # noqa: BLE001 - each reader has its own errors
            raise ValueError(
                f"slide={path!r} is not a whole-slide image that {backend} reads: {exc}"
            ) from exc
    reasons = []
    for name in ("openslide", "tiffslide"):
        try:
            reader = _Reader(path, name)
        except ImportError:
            reasons.append(f"{name} is not installed")
            continue
        except Exception as exc:  # noqa: BLE001
            reasons.append(f"{name}: {type(exc).__name__}: {exc}".rstrip(": "))
            continue
        if reasons:
            warnings.warn(
                f"OpenSlide cannot read {path!r} ({reasons[0]}); reading it with "
                "tiffslide.",
                stacklevel=3,
            )
        return reader
    if all(r.endswith("not installed") for r in reasons):
        raise ImportError(
            f"Reading whole-slide images needs OpenSlide or tiffslide: {_EXTRA}"
        )
    raise ValueError(
        f"slide={path!r} is not a whole-slide image that OpenSlide or tiffslide "
        f"reads ({'; '.join(reasons)})."
    )


class _TileBatches:
    """The tiles of one slide in batches, as a map-style dataset of batches.

    Each batch is read by one process (the DataLoader's workers included), which
    opens the slide once, on its first batch: an open slide cannot be sent between
    processes. Tiles side by side along a row of the grid are read as one region
    (at most ``_RUN`` tiles), so the reader is called once per run, not per tile.
    """

    def __init__(
        self, path, backend, level, level_ds, tiles, read_size, tile_px, batch_size
    ):
        self.path, self.backend = path, backend
        self.level, self.level_ds = level, level_ds
        self.xs, self.ys, self.cols = tiles
        self.read_size, self.tile_px = read_size, tile_px
        self.batch_size = batch_size
        self._reader, self._pid = None, None

    def __len__(self) -> int:
        return -(-len(self.xs) // self.batch_size)

    def _runs(self, start: int, stop: int):
        i = start
        while i < stop:
            j = i + 1
            while (
                j < stop
                and j - i < _RUN
                and self.ys[j] == self.ys[i]
                and self.cols[j] == self.cols[j - 1] + 1
            ):
                j += 1
            yield i, j
            i = j

    def __getitem__(self, b: int) -> np.ndarray:
        if self._pid != os.getpid():
            self._reader, self._pid = _Reader(self.path, self.backend), os.getpid()
        start = b * self.batch_size
        stop = min(len(self.xs), start + self.batch_size)
        width, height = self.read_size
        out = np.empty((stop - start, self.tile_px, self.tile_px, 3), np.uint8)
        for i, j in self._runs(start, stop):
            # Each tile's left edge in the level's pixels, from the run's first.
            lefts = np.rint((self.xs[i:j] - self.xs[i]) / self.level_ds).astype(int)
            region = self._reader.read(
                self.xs[i], self.ys[i], self.level, (int(lefts[-1]) + width, height)
            )
            for k, left in enumerate(lefts):
                out[i - start + k] = self._fit(region[:, left : left + width])
        return out

    def close(self) -> None:
        """Close this process's slide, if open."""
        if self._reader is not None:
            self._reader.close()
            self._reader, self._pid = None, None

    def _fit(self, tile: np.ndarray) -> np.ndarray:
        """The tile at the model's size: area averaging down, bilinear up."""
        if tile.shape[:2] == (self.tile_px, self.tile_px):
            return tile
        from PIL import Image

        shrink = min(tile.shape[:2]) >= self.tile_px
        resample = Image.Resampling.BOX if shrink else Image.Resampling.BILINEAR
        return np.asarray(
            Image.fromarray(np.ascontiguousarray(tile)).resize(
                (self.tile_px, self.tile_px), resample=resample
            )
        )


def write_slide(image, path, *, mpp: float, tile: int = 256, compression="zlib"):
    """Write an RGB image as a tiled, pyramidal TIFF that OpenSlide reads.

    Each level halves the one before until the image fits in one tile; the
    resolution is recorded, so OpenSlide reports ``openslide.mpp-x`` and
    :func:`predict_slide` needs no ``mpp=``. For slides rebuilt from patches
    (:func:`idc_sklearn.plotting.slide_image`), or any image to open in QuPath.

    Parameters
    ----------
    image : ndarray of shape (height, width, 3), uint8
    path : str or path-like
        The TIFF to write (``.tif`` or ``.tiff``).
    mpp : float
        Microns per pixel of ``image``.
    tile : int, default=256
        The TIFF's tile side, a multiple of 16.
    compression : str, default="zlib"
        tifffile's compression ("zlib", "jpeg", "none", ...).
    """
    import tifffile
    from PIL import Image

    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(
            "image must be an RGB uint8 array of shape (height, width, 3); got "
            f"shape {image.shape} and dtype {image.dtype}."
        )
    mpp = _positive(mpp, "mpp")
    if isinstance(tile, bool) or not (
        isinstance(tile, (int, np.integer)) and tile >= 16 and tile % 16 == 0
    ):
        raise ValueError(f"tile must be a positive multiple of 16; got {tile!r}.")
    path = _check_output(path, "path", (".tif", ".tiff"))
    level, scale = image, 1
    with tifffile.TiffWriter(path, bigtiff=image.nbytes > 2**31) as tif:
        while True:
            tif.write(
                level,
                tile=(tile, tile),
                photometric="rgb",
                compression=None if compression == "none" else compression,
                resolution=(1e4 / (mpp * scale),) * 2,
                resolutionunit="CENTIMETER",
                subfiletype=1 if scale > 1 else 0,
            )
            if max(level.shape[:2]) <= tile:
                break
            scale *= 2
            size = (max(1, level.shape[1] // 2), max(1, level.shape[0] // 2))
            level = np.asarray(
                Image.fromarray(level).resize(size, Image.Resampling.BOX)
            )


# ---------------------------------------------------------------------------
# Tissue


def _thumbnail(reader: _Reader, downsample: float) -> np.ndarray:
    """The slide at ``downsample`` (level-0 pixels per thumbnail pixel), read in
    blocks from the nearest finer level, so memory is bounded by the block."""
    from PIL import Image

    width, height = reader.dimensions
    cols, rows = max(1, round(width / downsample)), max(1, round(height / downsample))
    level = reader.best_level(downsample)
    level_ds = reader.level_downsamples[level]
    thumb = np.empty((rows, cols, 3), np.uint8)
    for top in range(0, rows, _THUMB_BLOCK):
        for left in range(0, cols, _THUMB_BLOCK):
            bottom, right = (
                min(rows, top + _THUMB_BLOCK),
                min(cols, left + _THUMB_BLOCK),
            )
            x0, y0 = left * downsample, top * downsample
            x1 = min(width, right * downsample)
            y1 = min(height, bottom * downsample)
            size = (
                max(1, math.ceil((x1 - x0) / level_ds)),
                max(1, math.ceil((y1 - y0) / level_ds)),
            )
            block = reader.read(round(x0), round(y0), level, size)
            thumb[top:bottom, left:right] = np.asarray(
                Image.fromarray(block).resize(
                    (right - left, bottom - top), Image.Resampling.BOX
                )
            )
    return thumb


def _saturation(thumb: np.ndarray) -> np.ndarray:
    """HSV saturation, (max - min) / max of R, G, B, in float32 (0 where black)."""
    high = thumb.max(axis=2).astype(np.float32)
    low = thumb.min(axis=2).astype(np.float32)
    return np.divide(high - low, high, out=np.zeros_like(high), where=high > 0)


def _tissue_mask(thumb: np.ndarray, threshold) -> tuple[np.ndarray, float]:
    """Tissue where the saturation exceeds ``threshold`` (Otsu's when "otsu")."""
    from skimage.filters import threshold_otsu

    saturation = _saturation(thumb)
    if threshold == "otsu":
        threshold = float(threshold_otsu(saturation)) if np.ptp(saturation) > 0 else 1.0
        threshold = max(threshold, _MIN_SATURATION)
    return saturation > threshold, float(threshold)


def _tile_fractions(mask, thumb_ds, origin, stride, grid) -> np.ndarray:
    """The tissue fraction of each tile of the grid, from the thumbnail mask."""
    rows, cols = grid
    integral = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1))
    integral[1:, 1:] = mask.cumsum(0).cumsum(1)

    def edges(o, s, n, ds, limit):
        e = np.rint((o + s * np.arange(n + 1)) / ds).astype(np.int64)
        return np.clip(e, 0, limit)

    ye = edges(origin[1], stride[1], rows, thumb_ds[1], mask.shape[0])
    xe = edges(origin[0], stride[0], cols, thumb_ds[0], mask.shape[1])
    y0, y1 = ye[:-1, None], ye[1:, None]
    x0, x1 = xe[None, :-1], xe[None, 1:]
    area = (y1 - y0) * (x1 - x0)
    inside = integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]
    return np.divide(inside, area, out=np.zeros(area.shape), where=area > 0)


# ---------------------------------------------------------------------------
# The result


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

    def __init__(self, **fields) -> None:
        self.__dict__.update(fields)

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
        threshold = _check_threshold(threshold)
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

        threshold = _check_threshold(threshold)
        path = _check_output(path, "path", (".geojson", ".json"))
        idc = self.tiles[self.tiles["probability"] > threshold]
        x = idc["x"].to_numpy(float)
        y = idc["y"].to_numpy(float)
        sx, sy = self.stride
        boxes = shapely.box(x, y, x + sx, y + sy)
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
        self.tiles.to_csv(_check_output(path, "path", (".csv",)), index=False)

    def save_probability_map(self, path) -> None:
        """Write the probability map: NumPy ``.npy``, or a float32 TIFF.

        Cells no tile was sent to the model for are NaN. In the TIFF, the
        resolution is recorded: one pixel per tile.
        """
        path = _check_output(path, "path", (".npy", ".tif", ".tiff"))
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

    def plot(self, *, threshold=None, ax=None, path=None, **kwargs):
        """The thumbnail with the IDC probability over the tissue; see
        :func:`idc_sklearn.plotting.plot_slide_prediction`."""
        from idc_sklearn.plotting import plot_slide_prediction

        return plot_slide_prediction(
            self, threshold=threshold, ax=ax, path=path, **kwargs
        )


def _plain(value):
    """Tuples (as shapely's mapping returns) as lists, for JSON."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _check_fraction(value, name: str, *, also: str = "") -> float:
    """A number in [0, 1], or a ValueError naming ``name`` (``also``: other forms)."""
    if isinstance(value, bool) or not (
        isinstance(value, (int, float, np.integer, np.floating)) and 0 <= value <= 1
    ):
        raise ValueError(f"{name} must be {also}a number in [0, 1]; got {value!r}.")
    return float(value)


def _check_threshold(threshold) -> float:
    return _check_fraction(threshold, "threshold")


def _check_output(path, name: str, suffixes: tuple[str, ...]):
    if path is None:
        return None
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path; got {type(path).__name__}.")
    path = Path(path).expanduser()
    if path.suffix.lower() not in suffixes:
        raise ValueError(
            f"{name}={str(path)!r}: expected a file name ending in "
            f"{' or '.join(suffixes)}."
        )
    if not path.parent.is_dir():
        raise FileNotFoundError(
            f"{name}={str(path)!r}: its folder {str(path.parent)!r} does not exist."
        )
    return path


# ---------------------------------------------------------------------------
# predict_slide


def _final_step(estimator):
    from sklearn.pipeline import Pipeline

    return estimator[-1] if isinstance(estimator, Pipeline) else estimator


def _check_estimator(estimator, tile_size) -> tuple[int, int]:
    """The fitted estimator's IDC column and the tile side it takes."""
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    if not hasattr(estimator, "predict_proba"):
        raise TypeError(
            "estimator must be a fitted classifier with predict_proba (an estimator "
            "of idc_sklearn, or a Pipeline ending in one); got "
            f"{type(estimator).__name__}."
        )
    try:
        check_is_fitted(estimator)
    except NotFittedError as exc:
        raise NotFittedError(
            f"estimator: this {type(estimator).__name__} is not fitted yet; fit it, "
            "or load a saved or pretrained model (load_model, load_pretrained), "
            "before predict_slide."
        ) from exc
    final = _final_step(estimator)
    classes = list(getattr(final, "classes_", [0, 1]))
    column = classes.index(1) if 1 in classes else len(classes) - 1
    shape = getattr(final, "patch_shape", None)
    model_px = None
    if shape is not None:
        if shape[0] != shape[1] or shape[2] != 3:
            raise ValueError(
                f"estimator takes patches of shape {tuple(shape)}; predict_slide cuts "
                "square RGB tiles (height == width, 3 channels)."
            )
        model_px = int(shape[0])
    if tile_size is None:
        return column, model_px or 50
    if isinstance(tile_size, bool) or not (
        isinstance(tile_size, (int, np.integer)) and tile_size > 0
    ):
        raise ValueError(
            f"tile_size must be None or a positive int (pixels); got {tile_size!r}."
        )
    if model_px is not None and tile_size != model_px:
        raise ValueError(
            f"tile_size={tile_size}: the estimator takes {model_px}x{model_px} "
            f"patches (its patch_shape {tuple(shape)}); pass tile_size={model_px} "
            "or None."
        )
    return column, int(tile_size)


def _positive(value, name: str, *, none: bool = False):
    if value is None and none:
        return None
    if isinstance(value, bool) or not (
        isinstance(value, (int, float, np.integer, np.floating))
        and math.isfinite(value)
        and value > 0
    ):
        expected = "None or a positive number" if none else "a positive number"
        raise ValueError(f"{name} must be {expected}; got {value!r}.")
    return float(value)


def _check_slide_path(slide) -> str:
    if not isinstance(slide, (str, os.PathLike)):
        raise TypeError(
            f"slide must be the path of a whole-slide image; got "
            f"{type(slide).__name__}."
        )
    path = Path(slide).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"slide={str(slide)!r} does not exist.")
    return str(path)


def _check_origin(origin) -> tuple[float, float]:
    try:
        values = tuple(float(v) for v in origin)
    except (TypeError, ValueError):
        values = ()
    if len(values) != 2 or not all(math.isfinite(v) and v >= 0 for v in values):
        raise ValueError(
            f"origin must be (x, y), two non-negative level-0 pixel offsets; "
            f"got {origin!r}."
        )
    return values


def predict_slide(
    estimator,
    slide,
    *,
    mpp=None,
    target_mpp: float = ARCHIVE_MPP,
    tile_size: int | None = None,
    min_tissue: float = 0.25,
    tissue_threshold="otsu",
    origin=(0, 0),
    batch_size: int = 256,
    num_workers: int | str = "auto",
    backend: str = "auto",
    progress: bool = True,
) -> SlideResult:
    """Predict IDC over a whole-slide image with a fitted estimator.

    The slide is cut into a grid of square, non-overlapping tiles of the
    estimator's patch size at ``target_mpp`` microns per pixel (the archive's 50x50
    patches span about 200 um at about 4 um per pixel). Tissue is found on a
    thumbnail (Otsu's threshold on the saturation, scikit-image); tiles with at
    least ``min_tissue`` of tissue are read at the pyramid level nearest the
    target resolution, resized to it where the levels do not match, and predicted
    in batches through ``estimator.predict_proba``, so the estimator's device,
    precision and test-time augmentation apply. DataLoader workers read the next
    batches while the model predicts; background tiles are never read.

    Parameters
    ----------
    estimator : fitted classifier
        An estimator of idc_sklearn (``MLBNInceptionClassifier``, a CNN baseline,
        a handcrafted baseline, a loaded or pretrained model), or a Pipeline
        ending in one, that takes square RGB patches.
    slide : str or path-like
        A whole-slide image that OpenSlide reads, or tiffslide where OpenSlide
        cannot (then with a warning that says why).
    mpp : float, default=None
        The slide's level-0 microns per pixel; None reads them from the slide,
        and a slide without them is refused.
    target_mpp : float, default=4.0
        The microns per pixel the model was trained at (``ARCHIVE_MPP`` for the
        IDC archive).
    tile_size : int, default=None
        The tile side in pixels at ``target_mpp``; None takes the estimator's
        patch size (50 where it has none). A size the estimator does not take is
        refused.
    min_tissue : float, default=0.25
        The least fraction of tissue a tile must hold to be predicted.
    tissue_threshold : "otsu" or float, default="otsu"
        The saturation (0 to 1) above which a thumbnail pixel is tissue; "otsu"
        picks it per slide (at least 0.05).
    origin : (float, float), default=(0, 0)
        The level-0 pixel of the tile grid's top-left corner (the archive's
        patches sit at ``x, y = 1, 1`` modulo 50, for instance).
    batch_size : int, default=256
        Tiles per call of ``predict_proba``, and per read.
    num_workers : int or "auto", default="auto"
        DataLoader worker processes reading tiles while the model predicts; 0
        reads them in this process, between predictions. "auto": 0 where the
        model runs on the CPU (its threads take every core: on 2 cores a worker
        slowed the whole by 10%; ``docs/benchmarks.md``), else up to 4.
    backend : {"auto", "openslide", "tiffslide"}, default="auto"
    progress : bool, default=True
        Show a progress bar over the tiles (tqdm).

    Returns
    -------
    SlideResult
        The tile table, probability and tissue maps, thumbnail, and the writers of
        the heatmap, probability map, tile CSV, GeoJSON and summary.

    Raises
    ------
    FileNotFoundError
        If ``slide`` does not exist.
    ValueError
        If ``slide`` is not a slide either reader reads, has no resolution and no
        ``mpp`` is given, shows no tissue, or if ``tile_size`` is not the
        estimator's patch size.
    sklearn.exceptions.NotFittedError
        If ``estimator`` is not fitted.
    ImportError
        If neither OpenSlide nor tiffslide is installed (the ``slides`` extra).

    Examples
    --------
    >>> from idc_sklearn import load_pretrained, predict_slide
    >>> model = load_pretrained("mlbn-small")
    >>> result = predict_slide(model, "slide.svs")  # doctest: +SKIP
    >>> result.summary()["idc_fraction"]  # doctest: +SKIP
    0.18
    >>> result.to_geojson("slide.geojson")  # doctest: +SKIP
    """
    column, tile_px = _check_estimator(estimator, tile_size)
    path = _check_slide_path(slide)
    mpp = _positive(mpp, "mpp", none=True)
    target_mpp = _positive(target_mpp, "target_mpp")
    _check_fraction(min_tissue, "min_tissue")
    if tissue_threshold != "otsu":
        _check_fraction(tissue_threshold, "tissue_threshold", also="'otsu' or ")
    origin = _check_origin(origin)
    checks = [("batch_size", batch_size, 1)]
    if num_workers != "auto":
        checks.append(("num_workers", num_workers, 0))
    for name, value, least in checks:
        if isinstance(value, bool) or not (
            isinstance(value, (int, np.integer)) and value >= least
        ):
            expected = f"an int >= {least}" + (
                " or 'auto'" if name == "num_workers" else ""
            )
            raise ValueError(f"{name} must be {expected}; got {value!r}.")
    if backend not in _BACKENDS:
        raise ValueError(f"backend must be one of {_BACKENDS}; got {backend!r}.")

    reader = _open(path, backend)
    try:
        if mpp is not None:
            slide_mpp = (mpp, mpp)
        elif None in reader.mpp:
            raise ValueError(
                f"slide={path!r} records no resolution (microns per pixel); pass "
                "mpp=, the slide's level-0 microns per pixel."
            )
        else:
            slide_mpp = reader.mpp
        width, height = reader.dimensions
        stride = tuple(tile_px * target_mpp / m for m in slide_mpp)
        cols = int((width - origin[0]) // stride[0])
        rows = int((height - origin[1]) // stride[1])
        if rows < 1 or cols < 1:
            raise ValueError(
                f"slide={path!r} ({width} x {height} pixels at {slide_mpp[0]:g} um) "
                f"is smaller than one {tile_px}-pixel tile at target_mpp="
                f"{target_mpp:g} ({stride[0]:.0f} level-0 pixels)."
            )
        thumb_ds = max(min(stride) / _THUMB_PER_TILE, max(width, height) / _THUMB_MAX)
        thumb = _thumbnail(reader, thumb_ds)
        thumb_ds_xy = (width / thumb.shape[1], height / thumb.shape[0])
        mask, threshold = _tissue_mask(thumb, tissue_threshold)
        tissue = _tile_fractions(mask, thumb_ds_xy, origin, stride, (rows, cols))
        keep_rows, keep_cols = np.nonzero((tissue >= min_tissue) & (tissue > 0))
        if len(keep_rows) == 0:
            raise ValueError(
                f"slide={path!r}: no tissue found (no tile of {tile_px} pixels holds "
                f"min_tissue={min_tissue:g} of pixels with saturation above "
                f"{threshold:.3f}); lower min_tissue, or pass tissue_threshold."
            )
        level = reader.best_level(min(stride) / tile_px)
        level_ds = reader.level_downsamples[level]
        backend_used = reader.backend
    finally:
        reader.close()

    xs = np.rint(origin[0] + keep_cols * stride[0]).astype(np.int64)
    ys = np.rint(origin[1] + keep_rows * stride[1]).astype(np.int64)
    read_size = tuple(_level_size(s, level_ds) for s in stride)
    batches = _TileBatches(
        path,
        backend_used,
        level,
        level_ds,
        (xs, ys, keep_cols),
        read_size,
        tile_px,
        batch_size,
    )
    if num_workers == "auto":
        num_workers = _auto_workers(estimator)
    proba = _predict_tiles(estimator, column, batches, num_workers, progress)
    probability_map = np.full((rows, cols), np.nan, np.float32)
    probability_map[keep_rows, keep_cols] = proba
    tiles = pd.DataFrame(
        {
            "x": xs,
            "y": ys,
            "row": keep_rows,
            "col": keep_cols,
            "tissue": tissue[keep_rows, keep_cols].astype(np.float32),
            "probability": proba.astype(np.float32),
        }
    )
    return SlideResult(
        slide=path,
        dimensions=(width, height),
        mpp=tuple(float(m) for m in slide_mpp),
        target_mpp=target_mpp,
        tile_px=tile_px,
        stride=stride,
        origin=origin,
        tiles=tiles,
        probability_map=probability_map,
        tissue_map=tissue.astype(np.float32),
        thumbnail=thumb,
        thumbnail_downsample=thumb_ds_xy,
        tissue_threshold=threshold,
        backend=backend_used,
    )


def _level_size(stride: float, level_ds: float) -> int:
    """A tile's side in pixels of a level: exact where it divides, else rounded up."""
    size = stride / level_ds
    return max(1, round(size) if abs(size - round(size)) < 1e-6 else math.ceil(size))


def _auto_workers(estimator) -> int:
    """No worker where the model runs on the CPU, else up to 4 (a core kept)."""
    device = str(getattr(_final_step(estimator), "device_", "cpu"))
    if device.startswith("cpu"):
        return 0
    return min(4, max(1, (os.cpu_count() or 1) - 1))


def _predict_tiles(estimator, column, batches, num_workers, progress):
    """``predict_proba``'s IDC column over the tiles, read while it predicts."""
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    loader = DataLoader(
        batches,
        batch_size=None,  # each item is a batch already
        num_workers=num_workers,
        # Two batches ahead per worker: memory bounded by the batch.
        prefetch_factor=2 if num_workers else None,
    )
    n = len(batches.xs)
    out = np.empty(n, np.float32)
    done = 0
    try:
        with tqdm(
            total=n, unit="tile", disable=not progress, desc="predict_slide"
        ) as bar:
            for batch in loader:
                batch = np.asarray(batch)
                proba = estimator.predict_proba(batch)[:, column]
                out[done : done + len(batch)] = proba
                done += len(batch)
                bar.update(len(batch))
    finally:
        batches.close()  # the slide this process opened (num_workers=0)
    return out

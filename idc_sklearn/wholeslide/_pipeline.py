"""predict_slide: a fitted estimator over a whole-slide image, in four stages.

:func:`predict_slide` validates its arguments (:func:`_validate`), opens the
slide and plans the grid: resolution, tile grid, tissue, the pyramid level to
read (:func:`_plan`); predicts the tissue tiles, streamed through the estimator
(:func:`_predict`); and assembles the :class:`SlideResult` (:func:`_assemble`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from idc_sklearn._checks import check_fraction, final_step
from idc_sklearn.prior_shift import PatientPriorClassifier
from idc_sklearn.wholeslide._arguments import (
    check_backend,
    check_count,
    check_estimator,
    check_origin,
    check_positive,
    check_slide_path,
)
from idc_sklearn.wholeslide._readers import open_slide
from idc_sklearn.wholeslide._result import SlideResult
from idc_sklearn.wholeslide._tiling import (
    TileBatches,
    TileGrid,
    auto_workers,
    level_size,
    predict_tiles,
)
from idc_sklearn.wholeslide._tissue import TISSUE_SATURATION, Tissue, find_tissue

# The archive's patches: slides scanned at 40x (about 0.25 um per pixel) and
# downsampled 16:1 by the authors, so one patch pixel spans about 4 um.
ARCHIVE_MPP = 4.0


def predict_slide(
    estimator,
    slide,
    *,
    mpp=None,
    target_mpp: float = ARCHIVE_MPP,
    tile_size: int | None = None,
    min_tissue: float = 0.25,
    tissue_threshold=TISSUE_SATURATION,
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
    thumbnail (its saturation above ``tissue_threshold``); tiles with at
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
        ending in one, that takes square RGB patches. A
        :class:`~idc_sklearn.PatientPriorClassifier` (``load_pretrained(
        "mlbn-hgb-patient")``) takes the slide as one patient: its tiles'
        probabilities are adapted to the slide's own IDC share, estimated from
        them (:func:`~idc_sklearn.adapt_to_patients`). One with a
        ``neighbour_weight`` above 0 (``"mlbn-hgb-context"``) first mixes each
        tile's probability with its neighbours' on the tile grid
        (:func:`~idc_sklearn.smooth_neighbours`).
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
    tissue_threshold : float or "otsu", default=0.05
        The saturation (0 to 1) above which a thumbnail pixel is tissue. 0.05
        keeps the archive's fat and pale stroma and leaves the glass of real
        scanner slides out (``docs/wholeslide.md``); "otsu" picks it per slide
        with Otsu's method (scikit-image; at least 0.05), for a slide whose glass
        is tinted above 0.05.
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
    request = _validate(
        estimator,
        slide,
        mpp=mpp,
        target_mpp=target_mpp,
        tile_size=tile_size,
        min_tissue=min_tissue,
        tissue_threshold=tissue_threshold,
        origin=origin,
        batch_size=batch_size,
        num_workers=num_workers,
        backend=backend,
    )
    plan = _plan(request)
    proba = _predict(estimator, request, plan, progress)
    if isinstance(estimator, PatientPriorClassifier):
        # A slide is one patient's tissue: its tiles at the slide's own IDC share,
        # each first mixed with its neighbours' where the model has a weight.
        proba = estimator.adapt_proba(
            proba,
            np.zeros(len(proba), dtype=int),
            coords=np.column_stack([plan.cols, plan.rows]) * estimator.stride,
        )
    return _assemble(request, plan, proba)


@dataclass(frozen=True)
class _Request:
    """predict_slide's arguments, checked."""

    path: str
    column: int  # predict_proba's IDC column
    tile_px: int
    mpp: float | None
    target_mpp: float
    min_tissue: float
    tissue_threshold: str | float
    origin: tuple[float, float]
    batch_size: int
    num_workers: int | str
    backend: str


def _validate(estimator, slide, **options) -> _Request:
    """Every argument checked before the slide is opened, the estimator first."""
    checked = check_options(estimator, **options)
    return _Request(path=check_slide_path(slide), **checked)


def check_options(
    estimator,
    *,
    mpp,
    target_mpp,
    tile_size,
    min_tissue,
    tissue_threshold,
    origin,
    batch_size,
    num_workers,
    backend,
) -> dict:
    """predict_slide's arguments but the slide, checked, as its request's fields.

    :func:`~idc_sklearn.wholeslide.predict_slides` checks a cohort's options with
    it once, before any slide is read.
    """
    column, tile_px = check_estimator(estimator, tile_size)
    mpp = check_positive(mpp, "mpp", none=True)
    target_mpp = check_positive(target_mpp, "target_mpp")
    min_tissue = check_fraction(min_tissue, "min_tissue")
    if tissue_threshold != "otsu":
        tissue_threshold = check_fraction(
            tissue_threshold, "tissue_threshold", also="'otsu' or "
        )
    return {
        "column": column,
        "tile_px": tile_px,
        "mpp": mpp,
        "target_mpp": target_mpp,
        "min_tissue": min_tissue,
        "tissue_threshold": tissue_threshold,
        "origin": check_origin(origin),
        "batch_size": check_count(batch_size, "batch_size", 1),
        "num_workers": check_count(num_workers, "num_workers", 0, auto=True),
        "backend": check_backend(backend),
    }


@dataclass(frozen=True)
class _Plan:
    """What the slide's metadata and thumbnail decide before any tile is read."""

    backend: str  # the reader that opened it
    dimensions: tuple[int, int]
    mpp: tuple[float, float]
    grid: TileGrid
    tissue: Tissue
    rows: np.ndarray  # the grid cells of the tiles to predict
    cols: np.ndarray
    level: int  # the pyramid level they are read at
    level_downsample: float


def _plan(request: _Request) -> _Plan:
    """Open the slide, lay the grid, find the tissue, pick the level; close it."""
    # The warning of a fallback to tiffslide points at predict_slide's caller.
    reader = open_slide(request.path, request.backend, stacklevel=3)
    try:
        mpp = reader.resolution(request.mpp)
        grid = _grid(reader.dimensions, mpp, request)
        tissue = find_tissue(reader, grid, request.tissue_threshold)
        rows, cols = np.nonzero(
            (tissue.fractions >= request.min_tissue) & (tissue.fractions > 0)
        )
        if len(rows) == 0:
            raise ValueError(
                f"slide={request.path!r}: no tissue found (no tile of "
                f"{request.tile_px} pixels holds min_tissue={request.min_tissue:g} "
                f"of pixels with saturation above {tissue.threshold:.3f}); lower "
                "min_tissue, or pass tissue_threshold."
            )
        level = reader.best_level(min(grid.stride) / request.tile_px)
        return _Plan(
            backend=reader.backend,
            dimensions=reader.dimensions,
            mpp=tuple(float(m) for m in mpp),
            grid=grid,
            tissue=tissue,
            rows=rows,
            cols=cols,
            level=level,
            level_downsample=reader.level_downsamples[level],
        )
    finally:
        reader.close()


def _grid(dimensions, mpp, request: _Request) -> TileGrid:
    """Tiles of ``tile_px`` pixels at ``target_mpp``; at least one must fit."""
    stride = tuple(request.tile_px * request.target_mpp / m for m in mpp)
    grid = TileGrid.over(dimensions, request.origin, stride)
    if min(grid.shape) < 1:
        width, height = dimensions
        raise ValueError(
            f"slide={request.path!r} ({width} x {height} pixels at {mpp[0]:g} um) "
            f"is smaller than one {request.tile_px}-pixel tile at target_mpp="
            f"{request.target_mpp:g} ({stride[0]:.0f} level-0 pixels)."
        )
    return grid


def _predict(estimator, request: _Request, plan: _Plan, progress: bool) -> np.ndarray:
    """The IDC probability of each planned tile, read while the estimator predicts."""
    xs, ys = plan.grid.corners(plan.rows, plan.cols)
    batches = TileBatches(
        request.path,
        plan.backend,
        level=plan.level,
        level_downsample=plan.level_downsample,
        xs=xs,
        ys=ys,
        cols=plan.cols,
        read_size=tuple(level_size(s, plan.level_downsample) for s in plan.grid.stride),
        tile_px=request.tile_px,
        batch_size=request.batch_size,
    )
    num_workers = request.num_workers
    if num_workers == "auto":
        num_workers = auto_workers(
            str(getattr(final_step(estimator), "device_", "cpu"))
        )
    return predict_tiles(
        estimator.predict_proba, request.column, batches, num_workers, progress
    )


def _assemble(request: _Request, plan: _Plan, proba: np.ndarray) -> SlideResult:
    """The tile table and the maps, in a SlideResult."""
    rows, cols = plan.rows, plan.cols
    xs, ys = plan.grid.corners(rows, cols)
    probability_map = np.full(plan.grid.shape, np.nan, np.float32)
    probability_map[rows, cols] = proba
    tiles = pd.DataFrame(
        {
            "x": xs,
            "y": ys,
            "row": rows,
            "col": cols,
            "tissue": plan.tissue.fractions[rows, cols].astype(np.float32),
            "probability": proba.astype(np.float32),
        }
    )
    return SlideResult(
        slide=request.path,
        dimensions=plan.dimensions,
        mpp=plan.mpp,
        target_mpp=request.target_mpp,
        tile_px=request.tile_px,
        stride=plan.grid.stride,
        origin=request.origin,
        tiles=tiles,
        probability_map=probability_map,
        tissue_map=plan.tissue.fractions.astype(np.float32),
        thumbnail=plan.tissue.thumbnail,
        thumbnail_downsample=plan.tissue.downsample,
        tissue_threshold=plan.tissue.threshold,
        backend=plan.backend,
    )

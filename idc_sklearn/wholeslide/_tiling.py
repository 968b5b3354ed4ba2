"""The tile grid over a slide, and its tiles read in batches while a model predicts.

:class:`TileGrid` places square, non-overlapping tiles on level 0;
:class:`TileBatches` reads a list of them in batches, a map-style dataset whose
items are batches; :func:`predict_tiles` streams those batches through DataLoader
workers into ``predict_proba``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from idc_sklearn.wholeslide._readers import SlideReader

# Tiles side by side in a row of the grid are read as one region of at most this
# many tiles.
_RUN = 32


@dataclass(frozen=True)
class TileGrid:
    """Square, non-overlapping tiles from ``origin``, ``stride`` level-0 pixels a side.

    Attributes
    ----------
    origin : (float, float)
        The level-0 pixel of the grid's top-left corner.
    stride : (float, float)
        A tile's side in level-0 pixels, along x and y.
    shape : (int, int)
        Rows and columns: the whole tiles that fit in the slide.
    """

    origin: tuple[float, float]
    stride: tuple[float, float]
    shape: tuple[int, int]

    @classmethod
    def over(cls, dimensions, origin, stride) -> TileGrid:
        """The grid of whole tiles inside a slide of ``dimensions`` (width, height)."""
        cols = int((dimensions[0] - origin[0]) // stride[0])
        rows = int((dimensions[1] - origin[1]) // stride[1])
        return cls(tuple(origin), tuple(stride), (rows, cols))

    def edges(self, axis: int, scale: float, limit: int) -> np.ndarray:
        """The cells' edges along ``axis`` (0: x, 1: y) in pixels of ``scale``
        level-0 pixels, rounded and clipped to ``[0, limit]``."""
        n = self.shape[1 - axis]
        e = np.rint((self.origin[axis] + self.stride[axis] * np.arange(n + 1)) / scale)
        return np.clip(e.astype(np.int64), 0, limit)

    def corners(self, rows: np.ndarray, cols: np.ndarray):
        """The level-0 top-left pixels (x, y) of the cells ``rows``, ``cols``."""
        xs = np.rint(self.origin[0] + cols * self.stride[0]).astype(np.int64)
        ys = np.rint(self.origin[1] + rows * self.stride[1]).astype(np.int64)
        return xs, ys


def level_size(stride: float, level_downsample: float) -> int:
    """A tile's side in pixels of a level: exact where it divides, else rounded up."""
    size = stride / level_downsample
    return max(1, round(size) if abs(size - round(size)) < 1e-6 else math.ceil(size))


class TileBatches:
    """The tiles of one slide in batches, as a map-style dataset of batches.

    Each batch is read by one process (the DataLoader's workers included), which
    opens the slide once, on its first batch: an open slide cannot be sent between
    processes. Tiles side by side along a row of the grid are read as one region
    (at most ``_RUN`` tiles), so the reader is called once per run, not per tile.

    Parameters
    ----------
    path, backend : str
        The slide and the reader that opened it.
    level : int
        The pyramid level to read.
    level_downsample : float
        That level's level-0 pixels per pixel.
    xs, ys : ndarray of int
        The tiles' level-0 top-left pixels, in row-major order of the grid.
    cols : ndarray of int
        Their columns in the grid (adjacent tiles are read together).
    read_size : (int, int)
        A tile's width and height in the level's pixels.
    tile_px : int
        The side the model takes; tiles read at another size are resized to it.
    batch_size : int
    """

    def __init__(
        self,
        path: str,
        backend: str,
        *,
        level: int,
        level_downsample: float,
        xs: np.ndarray,
        ys: np.ndarray,
        cols: np.ndarray,
        read_size: tuple[int, int],
        tile_px: int,
        batch_size: int,
    ) -> None:
        self.path, self.backend = path, backend
        self.level, self.level_downsample = level, level_downsample
        self.xs, self.ys, self.cols = xs, ys, cols
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
            self._reader = SlideReader(self.path, self.backend)
            self._pid = os.getpid()
        start = b * self.batch_size
        stop = min(len(self.xs), start + self.batch_size)
        width, height = self.read_size
        out = np.empty((stop - start, self.tile_px, self.tile_px, 3), np.uint8)
        for i, j in self._runs(start, stop):
            # Each tile's left edge in the level's pixels, from the run's first.
            lefts = (self.xs[i:j] - self.xs[i]) / self.level_downsample
            lefts = np.rint(lefts).astype(int)
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


def auto_workers(device: str) -> int:
    """No worker where the model runs on the CPU, else up to 4 (a core kept)."""
    if device.startswith("cpu"):
        return 0
    return min(4, max(1, (os.cpu_count() or 1) - 1))


def predict_tiles(
    predict_proba, column: int, batches: TileBatches, num_workers: int, progress: bool
) -> np.ndarray:
    """``predict_proba``'s ``column`` over the tiles, read while it predicts."""
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
                out[done : done + len(batch)] = predict_proba(batch)[:, column]
                done += len(batch)
                bar.update(len(batch))
    finally:
        batches.close()  # the slide this process opened (num_workers=0)
    return out

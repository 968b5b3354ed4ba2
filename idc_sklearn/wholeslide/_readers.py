"""Slide readers: OpenSlide or tiffslide behind one small interface.

:func:`open_slide` picks the reader ("auto": OpenSlide, then tiffslide with a
warning that says why); :class:`SlideReader` gives the slide's size, pyramid and
resolution, the level to read a downsample at, and RGB regions over white.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

EXTRA = 'pip install "idc_sklearn[slides]"'


def _float_or_none(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None


class SlideReader:
    """One open slide, OpenSlide's or tiffslide's, behind the calls used here.

    Attributes
    ----------
    path : str
    backend : {"openslide", "tiffslide"}
    mpp : (float or None, float or None)
        Level-0 microns per pixel along x and y, as the slide records them.
    dimensions : (int, int)
        Level-0 width and height.
    level_downsamples : tuple of float
    level_dimensions : tuple of (int, int)
    """

    def __init__(self, path: str, backend: str) -> None:
        self.path, self.backend = path, backend
        if backend == "openslide":
            import openslide

            self._slide = openslide.OpenSlide(path)
        else:
            import tiffslide

            self._slide = tiffslide.TiffSlide(path)
        props = self._slide.properties
        self.mpp = tuple(_float_or_none(props.get(f"{backend}.mpp-{a}")) for a in "xy")
        self.dimensions = tuple(int(v) for v in self._slide.dimensions)
        self.level_downsamples = tuple(float(d) for d in self._slide.level_downsamples)
        self.level_dimensions = tuple(
            tuple(int(v) for v in d) for d in self._slide.level_dimensions
        )

    def resolution(self, mpp: float | None = None) -> tuple[float, float]:
        """Level-0 microns per pixel: ``mpp`` where given, else the slide's own."""
        if mpp is not None:
            return (mpp, mpp)
        if None in self.mpp:
            raise ValueError(
                f"slide={self.path!r} records no resolution (microns per pixel); pass "
                "mpp=, the slide's level-0 microns per pixel."
            )
        return self.mpp

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


def open_slide(path: str, backend: str, *, stacklevel: int = 1) -> SlideReader:
    """Open ``path`` with ``backend``; "auto" tries OpenSlide, then tiffslide.

    ``stacklevel`` places the fallback's warning: 1 at the caller of this
    function, 2 at its caller, and so on.
    """
    if backend != "auto":
        try:
            return SlideReader(path, backend)
        except ImportError as exc:
            raise ImportError(
                f"backend={backend!r} needs the {backend} package: {EXTRA}"
            ) from exc
        except Exception as exc:  # noqa: BLE001 - each reader has its own errors
            raise ValueError(
                f"slide={path!r} is not a whole-slide image that {backend} reads: {exc}"
            ) from exc
    reasons = []
    for name in ("openslide", "tiffslide"):
        try:
            reader = SlideReader(path, name)
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
                stacklevel=stacklevel + 1,
            )
        return reader
    if all(r.endswith("not installed") for r in reasons):
        raise ImportError(
            f"Reading whole-slide images needs OpenSlide or tiffslide: {EXTRA}"
        )
    raise ValueError(
        f"slide={path!r} is not a whole-slide image that OpenSlide or tiffslide "
        f"reads ({'; '.join(reasons)})."
    )

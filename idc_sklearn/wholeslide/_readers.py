"""Slide readers: OpenSlide or tiffslide behind one small interface.

:func:`open_slide` picks the reader ("auto": OpenSlide, then tiffslide with a
warning that says why); :class:`SlideReader` gives the slide's size, pyramid and
resolution, the level to read a downsample at, and RGB regions over white.
"""

from __future__ import annotations

import logging
import math
import os
import struct
import warnings

import numpy as np

EXTRA = 'pip install "idc_sklearn[slides]"'
# What a slide file is expected to be, for the errors.
EXPECTED = (
    "expected a whole-slide image (Aperio .svs, a tiled pyramidal TIFF, or any "
    "other format OpenSlide reads)"
)


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
                "mpp=, the slide's level-0 microns per pixel (--mpp on the command "
                "line)."
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

    A TIFF cut short (an interrupted copy) is refused before tiffslide opens it:
    tiffslide would read the levels that are left and no error would say so.
    ``stacklevel`` places the fallback's warning: 1 at the caller of this
    function, 2 at its caller, and so on.
    """
    if backend != "auto":
        if backend == "tiffslide":
            refuse_truncated(path)
        try:
            return SlideReader(path, backend)
        except ImportError as exc:
            raise ImportError(
                f"backend={backend!r} needs the {backend} package: {EXTRA}"
            ) from exc
        except Exception as exc:  # noqa: BLE001 - each reader has its own errors
            refuse_truncated(path)
            raise ValueError(
                f"slide={path!r} is not a whole-slide image that {backend} reads: "
                f"{describe_file(path)}; {EXPECTED} ({backend}: {exc})."
            ) from exc
    reasons = []
    for name in ("openslide", "tiffslide"):
        if name == "tiffslide":
            refuse_truncated(path)
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
        f"reads: {describe_file(path)}; {EXPECTED} ({'; '.join(reasons)})."
    )


def describe_file(path: str) -> str:
    """What a file that no slide reader opens is, in words, for the error."""
    size = os.path.getsize(path)
    if size == 0:
        return "the file is empty (0 bytes)"
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            kind, (width, height) = image.format, image.size
    except (UnidentifiedImageError, OSError):
        with open(path, "rb") as file:
            head = file.read(8)
        return f"the file ({size:,} bytes) is no image format, it begins {head!r}"
    described = f"the file is a {kind} image of {width} x {height} pixels"
    suffix = os.path.splitext(path)[1].lower()
    if Image.registered_extensions().get(suffix) != kind:
        described += f", not the {suffix or 'slide'} its name says"
    return f"{described} ({size:,} bytes)"


def refuse_truncated(path: str) -> None:
    """Raise where a TIFF-based slide (.svs, .tif, .ndpi, ...) is cut short: its
    image directories or tiles point past the end of the file."""
    try:
        import tifffile
    except ImportError:  # tiffslide needs it: without it, nothing to check
        return
    size = os.path.getsize(path)
    # tifffile logs each directory past the end as an error of its own; the
    # error below says it once, in words.
    log = logging.getLogger("tifffile")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        with tifffile.TiffFile(path) as tif:
            ends = [
                int(offset) + int(count)
                for page in tif.pages
                for offset, count in zip(
                    page.dataoffsets, page.databytecounts, strict=True
                )
            ]
            # The offset of the directory after the last one tifffile could read:
            # 0 where the chain ends, past the end where the file was cut.
            tif.filehandle.seek(tif.pages.next_page_offset)
            (next_ifd,) = struct.unpack(
                tif.tiff.offsetformat, tif.filehandle.read(tif.tiff.offsetsize)
            )
    except Exception:  # noqa: BLE001 - not a TIFF, or too broken to measure:
        return  # the readers' own errors say what it is
    finally:
        log.setLevel(level)
    end = max([next_ifd, *ends])
    if end > size:
        raise ValueError(
            f"slide={path!r} is cut short: the file holds {size:,} bytes but its "
            f"TIFF structure points to byte {end:,} (an interrupted copy or "
            "download?); expected the whole file: copy it again."
        )

"""Decoding the archive's PNG patches into uint8 arrays (no torch here).

:func:`read_patch` reads one file; :func:`decode_all` reads a list of them into one
preallocated array, in worker processes where asked. A file that is not a patch of
the expected size is no error here: the reason it was not read comes back instead,
in the words of ``load_idc``'s ``skipped``.
"""

from __future__ import annotations

import os
import struct

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

PATCH_SIZE = 50
PAD_MODES = ("zero", "reflect", "drop")

# A chunk is the unit of work of one parallel task: large enough that the task's
# overhead is small next to ~0.2 ms of decoding per file, small enough for a smooth
# progress bar and a small result to send back from a worker process.
_CHUNK = 1024
_READ_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    Image.DecompressionBombError,
)


def describe_error(exc: Exception) -> str:
    """An error as ``"<type>: <what>"``; an OS error without the path (it is listed)."""
    return f"{type(exc).__name__}: {getattr(exc, 'strerror', None) or exc}"


def decode_into(path: str, out: np.ndarray, pad: str) -> tuple[int, int, str | None]:
    """Decode one PNG into ``out``; return (height, width, why skipped).

    ``out`` is ``(rows, cols, 3)``, (50, 50, 3) for the archive; a smaller PNG is
    padded to it, a larger one skipped. ``why skipped`` is None for a loaded patch
    and a reason otherwise.
    """
    rows, cols = out.shape[:2]
    try:
        with Image.open(path, formats=("PNG",)) as im:
            width, height = im.size
            if width > cols or height > rows:
                return (
                    height,
                    width,
                    f"is {width}x{height} (width x height), larger than {cols}x{rows}",
                )
            if (height, width) != (rows, cols) and pad == "drop":
                return (
                    height,
                    width,
                    (
                        f"is an edge patch of {width}x{height} (width x height), "
                        "left out (pad='drop')"
                    ),
                )
            im.load()
            if im.mode.startswith("I"):
                # 16-bit grayscale: Pillow's convert("RGB") would clip, not scale.
                gray = np.asarray(im, dtype=np.float64) / 257
                gray = np.clip(np.rint(gray), 0, 255).astype(np.uint8)
                patch = np.repeat(gray[:, :, None], 3, axis=2)
            else:
                # Alpha is dropped, not blended, as MATLAB's and OpenCV's readers do.
                patch = np.asarray(im if im.mode == "RGB" else im.convert("RGB"))
    except UnidentifiedImageError as exc:
        try:
            empty = os.path.getsize(path) == 0
        except OSError:
            empty = False
        if empty:
            return 0, 0, "cannot be read: the file is empty"
        return 0, 0, f"cannot be read as a PNG image: {exc}"
    except _READ_ERRORS as exc:
        return 0, 0, f"cannot be read: {describe_error(exc)}"
    if pad == "reflect" and (height, width) != (rows, cols):
        out[:] = np.pad(
            patch, ((0, rows - height), (0, cols - width), (0, 0)), mode="reflect"
        )
    else:
        if (height, width) != (rows, cols):
            out[:] = 0
        out[:height, :width] = patch
    return height, width, None


def check_pad(pad) -> None:
    """Raise unless ``pad`` is one of :data:`PAD_MODES`."""
    if not isinstance(pad, str) or pad not in PAD_MODES:
        raise ValueError(
            f"pad must be one of {', '.join(repr(m) for m in PAD_MODES)}; got {pad!r}."
        )


def read_patch(
    path: str | os.PathLike,
    *,
    pad: str = "zero",
    patch_size: int | tuple[int, int] = PATCH_SIZE,
) -> np.ndarray:
    """Read one patch PNG the way :func:`load_idc` reads each of the archive's.

    The patch comes back RGB: a palette or 8-bit grayscale PNG is converted, a
    16-bit grayscale one scaled to 0-255 (not clipped), an alpha channel dropped (not
    blended, as MATLAB's and OpenCV's readers do). A patch smaller than
    ``patch_size``, as the archive's edge patches are, is filled to it as ``pad``
    says; a larger one is refused.

    Parameters
    ----------
    path : str or path-like
        The PNG file; a leading ``~`` is expanded, as by :func:`load_idc`.
    pad : {"zero", "reflect", "drop"}, default="zero"
        For a patch smaller than ``patch_size``: ``"zero"`` pastes it top-left
        into zeros (the authors' choice), ``"reflect"`` fills the rest by
        reflection, ``"drop"`` refuses it (``load_idc`` leaves such patches out).
    patch_size : int or (int, int), default=50
        Height and width of the patch returned; the archive's patches are 50x50.

    Returns
    -------
    patch : ndarray of shape (height, width, 3), uint8
        The patch, channels last, on the 0-255 scale.

    Raises
    ------
    TypeError
        If ``path`` is not a str or path-like.
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If ``pad`` or ``patch_size`` is not one of the values above, or if the
        file is not a patch of ``patch_size``: empty, not a PNG, truncated or
        unreadable, larger than ``patch_size``, or smaller with ``pad="drop"``.
        The message names the file and says which, in the words of ``load_idc``'s
        ``skipped``.

    See Also
    --------
    load_idc : Every patch of the archive, read this way in parallel.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from PIL import Image
    >>> from idc_sklearn.datasets import read_patch
    >>> file = Path(tempfile.mkdtemp()) / "edge.png"
    >>> Image.fromarray(np.full((40, 30, 3), 200, np.uint8)).save(file)
    >>> patch = read_patch(file)
    >>> patch.shape, patch.dtype, patch[39, 29].tolist(), patch[40, 30].tolist()
    ((50, 50, 3), dtype('uint8'), [200, 200, 200], [0, 0, 0])
    >>> read_patch(file, patch_size=(32, 32))
    Traceback (most recent call last):
    ...
    ValueError: path='.../edge.png' is 30x40 (width x height), larger than 32x32.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"path must be a str or path-like; got {type(path).__name__} {path!r}."
        )
    check_pad(pad)
    size = (
        (patch_size,) * 2 if isinstance(patch_size, (int, np.integer)) else patch_size
    )
    if not (
        isinstance(size, (tuple, list))
        and len(size) == 2
        and all(
            isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n > 0
            for n in size
        )
    ):
        raise ValueError(
            "patch_size must be a positive int or a (height, width) pair of them; "
            f"got {patch_size!r}."
        )
    file = os.path.expanduser(os.fspath(path))
    if not os.path.exists(file):
        raise FileNotFoundError(f"path={file!r} does not exist.")
    patch = np.empty((*map(int, size), 3), dtype=np.uint8)
    *_, reason = decode_into(file, patch, pad)
    if reason is not None:
        raise ValueError(f"path={file!r} {reason}.")
    return patch


def _decode_chunk(paths: list[str], pad: str):
    """Decode a chunk of files (the task a worker runs); return its block of rows."""
    block = np.empty((len(paths), PATCH_SIZE, PATCH_SIZE, 3), dtype=np.uint8)
    heights = np.zeros(len(paths), dtype=np.int64)
    widths = np.zeros(len(paths), dtype=np.int64)
    reasons = [None] * len(paths)
    for i, path in enumerate(paths):
        heights[i], widths[i], reasons[i] = decode_into(path, block[i], pad)
    return block, heights, widths, reasons


def decode_all(paths: list[str], pad: str, n_jobs, progress: bool):
    """Decode every file into one preallocated array; return it with sizes, reasons.

    The final array is allocated once. Workers decode chunks and each chunk is written
    into it as it arrives, so a list of per-file arrays never exists.
    """
    n = len(paths)
    data = np.empty((n, PATCH_SIZE, PATCH_SIZE, 3), dtype=np.uint8)
    heights = np.zeros(n, dtype=np.int64)
    widths = np.zeros(n, dtype=np.int64)
    reasons: list[str | None] = [None] * n
    starts = range(0, n, _CHUNK)
    with tqdm(
        total=n, desc="load_idc", unit="file", disable=not progress, leave=False
    ) as bar:
        if effective_n_jobs(n_jobs) == 1:
            for start in starts:
                stop = min(start + _CHUNK, n)
                for i in range(start, stop):
                    heights[i], widths[i], reasons[i] = decode_into(
                        paths[i], data[i], pad
                    )
                bar.update(stop - start)
        else:
            # Decoding a 50x50 PNG is mostly Python-level work in Pillow, which holds
            # the GIL, so worker processes scale where threads do not; the backend
            # can still be chosen with joblib.parallel_config.
            parallel = Parallel(
                n_jobs=n_jobs, prefer="processes", return_as="generator_unordered"
            )
            tasks = (
                delayed(_decode_chunk_at)(start, paths[start : start + _CHUNK], pad)
                for start in starts
            )
            for start, (block, h, w, r) in parallel(tasks):
                stop = start + len(block)
                data[start:stop] = block
                heights[start:stop] = h
                widths[start:stop] = w
                reasons[start:stop] = r
                bar.update(stop - start)
    return data, heights, widths, reasons


def _decode_chunk_at(start: int, paths: list[str], pad: str):
    """:func:`_decode_chunk` with its start, as chunks come back in any order."""
    return start, _decode_chunk(paths, pad)


def compact(data: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Move the kept rows to the front in place and shrink the array to them.

    Every kept row moves to an index at or below its own, so copying block by block
    in order never overwrites a row that is still to be read.
    """
    kept = np.flatnonzero(keep)
    for start in range(0, len(kept), _CHUNK):
        rows = kept[start : start + _CHUNK]
        data[start : start + len(rows)] = data[rows]
    data.resize((len(kept), *data.shape[1:]), refcheck=False)
    return data

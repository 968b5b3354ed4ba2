"""Loading the IDC archive of PNG patches into uint8 arrays (no torch here).

The archive is ``<root>/<patient>/<0|1>/<patient>_idx5_x<X>_y<Y>_class<C>.png``;
``load_idc`` reads it at full scale (277,524 patches) into one preallocated
``(n, 50, 50, 3)`` uint8 array, in parallel, and can cache the decoded result on disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed, effective_n_jobs
from PIL import Image, UnidentifiedImageError
from sklearn.utils import Bunch
from tqdm.auto import tqdm

from idc_sklearn._files import ChecksumWriter, atomic_write, file_checksum

from ._frame import FRAME_COLUMNS, make_frame

PATCH_SIZE = 50
NESTED_ARCHIVE_DIR = "IDC_regular_ps50_idx5"
PAD_MODES = ("zero", "reflect", "drop")
EXPECTED_LAYOUT = (
    "<root>/<patient>/<0|1>/<patient>_idx5_x<X>_y<Y>_class<0|1>.png, where root is "
    "the folder holding the patient folders or the archive's top folder"
)
SPLIT_NAMES = ("train", "val", "test")

_NAME_RE = re.compile(
    r"^(?P<patient>.+?)_idx5_x(?P<x>\d+)_y(?P<y>\d+)_class(?P<label>\d+)\.png$",
    re.IGNORECASE,
)
# A chunk is the unit of work of one parallel task: large enough that the task's
# overhead is small next to ~0.2 ms of decoding per file, small enough for a smooth
# progress bar and a small result to send back from a worker process.
_CHUNK = 1024
# Bumped whenever what the cache holds changes, so that old caches are rebuilt.
_CACHE_FORMAT = 2
_READ_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    Image.DecompressionBombError,
)


def _layout_error(root: Path, problem: str) -> ValueError:
    try:
        entries = sorted(p.name for p in root.iterdir())
    except OSError:
        entries = []
    if entries:
        shown = ", ".join(repr(e) for e in entries[:5])
        more = f" and {len(entries) - 5} more" if len(entries) > 5 else ""
        found = f" It holds {shown}{more}."
    else:
        found = " It is empty."
    return ValueError(
        f"root={str(root)!r} {problem}; expected {EXPECTED_LAYOUT}.{found}"
    )


def _folder(entry) -> Path:
    """The path ``entry`` as an absolute path, or an error unless it is a folder."""
    path = Path(os.path.abspath(os.path.expanduser(entry)))
    if not path.exists():
        raise FileNotFoundError(
            f"root={str(path)!r} does not exist; expected {EXPECTED_LAYOUT}."
        )
    if not path.is_dir():
        raise NotADirectoryError(
            f"root={str(path)!r} is a file, not a folder; expected {EXPECTED_LAYOUT}."
        )
    return path


def _archive_patients(root: Path) -> dict[str, list[Path]]:
    """:func:`_patient_dirs` of ``root``, or an error saying what it holds instead."""
    found = _patient_dirs(root)
    if not found:
        raise _layout_error(
            root, "holds no patient folders with 0/ or 1/ class folders"
        )
    return found


def check_archive_layout(root: str | os.PathLike) -> list[str]:
    """Check that a folder is laid out as the IDC archive; return its patients.

    The check :func:`load_idc` makes of each of its folders before it reads a file:
    ``root`` holds patient folders, each with a ``0`` or ``1`` class folder, at its
    top level or in the archive's nested copy ``IDC_regular_ps50_idx5/``. Only the
    folders are looked at, not the files in them, so it takes milliseconds on the
    whole archive.

    Parameters
    ----------
    root : str or path-like
        The folder that holds the patient folders, or the archive's top folder.

    Returns
    -------
    patients : list of str
        The patient ids (the names of the patient folders), sorted.

    Raises
    ------
    TypeError
        If ``root`` is not a str or path-like.
    FileNotFoundError
        If ``root`` does not exist.
    NotADirectoryError
        If ``root`` is a file.
    ValueError
        If ``root`` holds no patient folders; the message lists what it holds.

    See Also
    --------
    load_idc : Read the patches of such a folder.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from idc_sklearn.datasets import check_archive_layout
    >>> root = Path(tempfile.mkdtemp())
    >>> for folder in ("8863/0", "8863/1", "8864/1"):
    ...     (root / folder).mkdir(parents=True)
    >>> check_archive_layout(root)
    ['8863', '8864']
    >>> check_archive_layout(root / "8863")
    Traceback (most recent call last):
    ...
    ValueError: root='.../8863' holds no patient folders with 0/ or 1/ class folders; expected ... It holds '0', '1'.
    """  # noqa: E501
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(
            "root must be the path of an IDC archive folder, a str or path-like; "
            f"got {type(root).__name__} {root!r}."
        )
    return sorted(_archive_patients(_folder(root)))


def _patient_dirs(root: Path) -> dict[str, list[Path]]:
    """Map each patient id to its folders: the top level first, the nested copy next.

    A patient folder is one that holds a ``0`` or ``1`` class folder. Some copies of
    the archive carry the whole archive again in ``IDC_regular_ps50_idx5/``; both
    levels are searched, and :func:`_scan_patient` takes each file from the first.
    """
    bases = [root]
    nested = root / NESTED_ARCHIVE_DIR
    if nested.is_dir():
        bases.append(nested)
    found: dict[str, list[Path]] = {}
    for base in bases:
        with os.scandir(base) as it:
            entries = sorted(
                (e for e in it if e.is_dir() and not e.name.startswith(".")),
                key=lambda e: e.name,
            )
        for entry in entries:
            path = Path(entry.path)
            if (path / "0").is_dir() or (path / "1").is_dir():
                found.setdefault(entry.name, []).append(path)
    return found


def _scan_patient(patient: str, folders: list[Path], root: Path):
    """List one patient's files and those skipped.

    Returns ``files`` as ``(patient, label, name, rel_path, x, y, size, mtime_ns)``
    and ``skipped`` as ``(rel_path, reason)``. A file is keyed by its class folder
    and name, so the copy of the archive nested in it adds nothing that the top
    level already holds. Hidden files (``.DS_Store``, macOS ``._*`` forks) are not
    patches and are passed over.
    """
    files = []
    skipped = []
    seen = set()
    for folder in folders:
        for label in ("0", "1"):
            class_dir = folder / label
            if not class_dir.is_dir():
                continue
            # Paths are joined as strings: os.path.relpath per file would dominate
            # the time of a cached reload of the full archive.
            folder_path = os.path.relpath(class_dir, root)
            prefix = folder_path + os.sep
            try:
                with os.scandir(class_dir) as it:
                    entries = [e for e in it if not e.name.startswith(".")]
            except OSError as exc:
                skipped.append((folder_path, f"folder cannot be listed: {_why(exc)}"))
                continue
            for entry in entries:
                name = entry.name
                if (label, name) in seen:
                    continue
                seen.add((label, name))
                reason = _not_a_file(entry)
                if reason is None:
                    match, reason = _parse_name(name, patient, label)
                if reason is None:
                    try:
                        stat = entry.stat()
                    except OSError as exc:
                        reason = f"cannot be read: {_why(exc)}"
                if reason is not None:
                    skipped.append((prefix + name, reason))
                    continue
                files.append(
                    (
                        patient,
                        int(label),
                        name,
                        prefix + name,
                        int(match["x"]),
                        int(match["y"]),
                        stat.st_size,
                        stat.st_mtime_ns,
                    )
                )
    return files, skipped


def _why(exc: Exception) -> str:
    """An error as ``"<type>: <what>"``; an OS error without the path (it is listed)."""
    return f"{type(exc).__name__}: {getattr(exc, 'strerror', None) or exc}"


def _not_a_file(entry: os.DirEntry) -> str | None:
    """Why a class folder's entry is not a file to decode, or None for a file."""
    try:
        if entry.is_file():
            return None
        if entry.is_dir():
            return "is a folder, not a PNG file"
        if entry.is_symlink():
            return "is a broken link: its target does not exist"
    except OSError as exc:
        return f"cannot be read: {_why(exc)}"
    return "is not a regular file (a pipe, socket or device)"


def _parse_name(name: str, patient: str, label: str):
    """Match a file name; return the match and why the file is skipped (or None)."""
    match = _NAME_RE.match(name)
    if match is None:
        return None, "file name is not <patient>_idx5_x<X>_y<Y>_class<C>.png"
    if match["patient"] != patient:
        return match, (
            f"file name says patient {match['patient']!r} but the file is in "
            f"patient folder {patient!r}"
        )
    if match["label"] != label:
        return match, (
            f"folder label {label} disagrees with the file name's class{match['label']}"
        )
    return match, None


def _check_patients(patients, available: Iterable[str]) -> list[str] | None:
    if patients is None:
        return None
    if isinstance(patients, (str, int, np.integer)):
        patients = [patients]
    try:
        requested = list(patients)
    except TypeError:
        raise TypeError(
            "patients must be None or a list of patient ids (str or int); "
            f"got {type(patients).__name__}."
        ) from None
    ids = []
    for p in requested:
        if isinstance(p, bool) or not isinstance(p, (str, int, np.integer)):
            raise TypeError(
                "patients must hold patient ids as str or int; "
                f"got {p!r} of type {type(p).__name__}."
            )
        ids.append(str(p))
    if not ids:
        raise ValueError("patients is empty; pass None to load every patient.")
    available = set(available)
    unknown = sorted(set(ids) - available)
    if unknown:
        raise ValueError(
            f"patients {unknown} are not in the archive ({len(available)} patients "
            f"found, e.g. {sorted(available)[:5]})."
        )
    return sorted(set(ids))


def _fingerprint(files, pad: str, patients: list[str] | None) -> str:
    """Hash of the options and every file's relative path, size and mtime."""
    digest = hashlib.sha256()
    digest.update(f"{_CACHE_FORMAT}\t{pad}\t{patients}\n".encode())
    digest.update("".join(f"{f[3]}\t{f[6]}\t{f[7]}\n" for f in sorted(files)).encode())
    return digest.hexdigest()


def _read_patch(path: str, out: np.ndarray, pad: str) -> tuple[int, int, str | None]:
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
        return 0, 0, f"cannot be read: {_why(exc)}"
    if pad == "reflect" and (height, width) != (rows, cols):
        out[:] = np.pad(
            patch, ((0, rows - height), (0, cols - width), (0, 0)), mode="reflect"
        )
    else:
        if (height, width) != (rows, cols):
            out[:] = 0
        out[:height, :width] = patch
    return height, width, None


def _check_pad(pad) -> None:
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
    _check_pad(pad)
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
    *_, reason = _read_patch(file, patch, pad)
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
        heights[i], widths[i], reasons[i] = _read_patch(path, block[i], pad)
    return block, heights, widths, reasons


def _decode_all(paths: list[str], pad: str, n_jobs, progress: bool):
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
                    heights[i], widths[i], reasons[i] = _read_patch(
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
    return start, _decode_chunk(paths, pad)


def _compact(data: np.ndarray, keep: np.ndarray) -> np.ndarray:
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


def _describe(frame: pd.DataFrame, root: str, pad: str, skipped, n_dropped: int):
    n = len(frame)
    n_idc = int(frame["target"].sum())
    n_edge = int(
        ((frame["height"] != PATCH_SIZE) | (frame["width"] != PATCH_SIZE)).sum()
    )
    pad_text = {
        "zero": "pasted top-left into zeros (pad='zero')",
        "reflect": "reflected to 50x50 (pad='reflect')",
    }
    if pad == "drop":
        edge = f"{n_dropped} edge patches smaller than 50x50 were left out (pad='drop')"
    else:
        edge = f"{n_edge} edge patches smaller than 50x50 were {pad_text[pad]}"
    return (
        "Invasive ductal carcinoma (IDC) breast histopathology patches\n"
        "---------------------------------------------------------------\n\n"
        "50x50 RGB patches of H&E-stained whole-mount breast cancer slides scanned at "
        "40x, labelled 1 (IDC) or 0 (non-IDC), from the IDC_regular_ps50_idx5 archive "
        "(162 slides, 277,524 patches in full).\n\n"
        f"Loaded from {root}: {n} patches of {frame['patient'].nunique()} patients, "
        f"{n_idc} IDC and {n - n_idc} non-IDC; {edge}; {len(skipped) - n_dropped} "
        "unreadable or mislabelled files skipped (see 'skipped').\n\n"
        "Sources:\n"
        "- Janowczyk A, Madabhushi A. Deep learning for digital pathology image "
        "analysis: a comprehensive tutorial with selected use cases. J Pathol Inform "
        "2016;7:29. doi:10.4103/2153-3539.186902\n"
        "- Cruz-Roa A, et al. Automatic detection of invasive ductal carcinoma in "
        "whole slide images with convolutional neural networks. Proc. SPIE Medical "
        "Imaging 2014, 9041:904103. doi:10.1117/12.2043872\n"
    )


def _warn_skipped(root: str, skipped, n_files: int) -> None:
    problems = [(p, r) for p, r in skipped if "(pad='drop')" not in r]
    n_dropped = len(skipped) - len(problems)
    if problems:
        path, reason = problems[0]
        warnings.warn(
            f"load_idc skipped {len(problems)} of {n_files} files under {root} that "
            f"could not be loaded, e.g. {path}: {reason}. They are listed, with "
            "their reasons, in the result's 'skipped'.",
            UserWarning,
            stacklevel=3,
        )
    if n_dropped:
        warnings.warn(
            f"load_idc left out {n_dropped} edge patches smaller than "
            f"{PATCH_SIZE}x{PATCH_SIZE} (pad='drop'); they are listed in 'skipped'.",
            UserWarning,
            stacklevel=3,
        )


def _write_cache(cache: Path, manifest, data, frame, skipped) -> None:
    """Write the cache; the manifest, with each file's size and CRC-32, goes last.

    Every file is written atomically (:func:`~idc_sklearn._files.atomic_write`) and
    the old manifest is removed first, so an interrupted write leaves a cache that
    is rebuilt, never one that loads torn data.
    """
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "manifest.json").unlink(missing_ok=True)
    checksums = {}
    with atomic_write(cache / "data.npy") as f:
        writer = ChecksumWriter(f)
        np.save(writer, data)
    checksums["data.npy"] = writer.checksum()
    with atomic_write(cache / "frame.csv") as f:
        writer = ChecksumWriter(f)
        writer.write(frame.to_csv(index=False).encode("utf-8"))
    checksums["frame.csv"] = writer.checksum()
    with atomic_write(cache / "manifest.json", "w") as f:
        json.dump({**manifest, "files": checksums, "skipped": skipped}, f, indent=1)


def _damaged_cache(cache: Path, problem: str) -> None:
    warnings.warn(
        f"load_idc's cache {str(cache)!r} is damaged ({problem}); it is rebuilt "
        "from the PNG files.",
        UserWarning,
        stacklevel=4,
    )


def _read_cache(cache: Path, manifest, *, verify: bool = True):
    """Return (data, frame, skipped) from a cache matching ``manifest``, else None.

    A cache of other files or options is passed over in silence; a damaged one
    (a manifest that is not JSON, a file missing, truncated or whose CRC-32 does
    not match, ``verify=False`` checking sizes only) with a warning.
    """
    try:
        with open(cache / "manifest.json", encoding="utf-8") as f:
            stored = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        _damaged_cache(cache, f"manifest.json cannot be read: {exc}")
        return None
    if not isinstance(stored, dict):
        _damaged_cache(cache, "manifest.json is not a JSON object")
        return None
    skipped = stored.pop("skipped", None)
    checksums = stored.pop("files", None)
    if stored != manifest:
        return None
    if not isinstance(skipped, list) or not isinstance(checksums, dict):
        _damaged_cache(cache, "manifest.json lacks its file list")
        return None
    for name in ("data.npy", "frame.csv"):
        try:
            found = (
                file_checksum(cache / name)
                if verify
                else {"size": (cache / name).stat().st_size}
            )
        except OSError as exc:
            _damaged_cache(cache, f"{name} cannot be read: {exc}")
            return None
        expected = checksums.get(name)
        if not isinstance(expected, dict) or any(
            expected.get(key) != value for key, value in found.items()
        ):
            _damaged_cache(
                cache,
                f"{name} is {found['size']} bytes"
                + (f" with CRC-32 {found['crc32']}" if verify else "")
                + f"; the manifest says {expected}",
            )
            return None
    try:
        data = np.load(cache / "data.npy", mmap_mode="r")
        frame = pd.read_csv(
            cache / "frame.csv",
            dtype={
                "patient": str,
                "path": str,
                **{c: np.int64 for c in ("x", "y", "target", "height", "width")},
            },
            keep_default_na=False,
        )
    except (OSError, ValueError) as exc:
        _damaged_cache(cache, f"{type(exc).__name__}: {exc}")
        return None
    if list(frame.columns) != list(FRAME_COLUMNS) or len(frame) != len(data):
        _damaged_cache(cache, "frame.csv does not match data.npy")
        return None
    return data, frame, [tuple(s) for s in skipped]


def _check_args(pad, n_jobs, progress, return_X_y, cache) -> None:
    _check_pad(pad)
    if n_jobs is not None and (
        isinstance(n_jobs, bool)
        or not isinstance(n_jobs, (int, np.integer))
        or n_jobs == 0
    ):
        raise ValueError(
            "n_jobs must be None (1 worker), -1 (all cores) or a non-zero int; "
            f"got {n_jobs!r}."
        )
    for name, value in (("progress", progress), ("return_X_y", return_X_y)):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{name} must be True or False; got {value!r}.")
    if cache is not None and not isinstance(cache, (str, os.PathLike)):
        raise TypeError(
            "cache must be None or the path of a cache folder; "
            f"got {type(cache).__name__}."
        )


def load_idc(
    root: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    patients: Iterable[str | int] | None = None,
    pad: str = "zero",
    cache: str | os.PathLike | None = None,
    n_jobs: int | None = None,
    progress: bool = True,
    return_X_y: bool = False,
) -> Bunch | tuple[np.ndarray, np.ndarray]:
    """Load the IDC breast histopathology patches (Janowczyk & Madabhushi 2016).

    Reads ``<root>/<patient>/<0|1>/<patient>_idx5_x<X>_y<Y>_class<C>.png`` into one
    ``(n, 50, 50, 3)`` uint8 array. The whole archive (277,524 patches) takes 2.1 GB.

    Parameters
    ----------
    root : str, path-like, or list of them
        The folder that holds the patient folders, or the archive's top folder. A
        nested duplicate ``IDC_regular_ps50_idx5/`` inside it is not counted twice:
        each (patient, file name) is loaded once. A list of such folders loads them
        as one dataset: a patient whose patches are spread over several folders is
        one patient (one value of ``groups``), and a file found in several of them
        is loaded once, from the first. Every folder must hold patient folders.
    patients : list of str or int, default=None
        Patient ids to load; None loads every patient. Ids found in none of the
        folders raise an error.
    pad : {"zero", "reflect", "drop"}, default="zero"
        What to do with the edge patches smaller than 50x50: ``"zero"`` pastes them
        top-left into zeros (the authors' choice), ``"reflect"`` fills the rest by
        reflection, ``"drop"`` leaves them out (with a warning saying how many; they
        are listed in ``skipped``).
    cache : str or path-like, default=None
        A folder to store the decoded arrays and frame in. A later call with the same
        files (paths, sizes, modification times), ``pad`` and ``patients`` reloads
        them memory-mapped (read-only): seconds for the full archive, most of it
        spent listing the files; anything else rebuilds the cache. Its files are
        written atomically and checked against their sizes and CRC-32 on reload
        (about 2 s for the full archive): a damaged cache is rebuilt, with a
        warning.
    n_jobs : int, default=None
        Number of worker processes decoding in parallel. None means 1 unless in a
        :func:`joblib.parallel_config` context; -1 means all cores.
    progress : bool, default=True
        Show a tqdm progress bar while decoding.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of the Bunch.

    Returns
    -------
    dataset : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with:

        data : ndarray of shape (n, 50, 50, 3), uint8
            The patches, RGB, channels last. Read-only memory map when ``cache`` is
            set.
        target : ndarray of shape (n,), int64
            1 for IDC, 0 for non-IDC.
        groups : ndarray of shape (n,), object
            The patient id of each patch, as a string; for grouped cross-validation.
        frame : pandas.DataFrame of shape (n, 7)
            Columns ``patient``, ``x``, ``y`` (the patch's top-left pixel in the
            slide), ``target``, ``path`` and the original ``height``, ``width``.
        skipped : list of (str, str)
            ``(path, reason)`` of every file that was not loaded, and of every
            entry of a class folder that is not a file (a folder, a broken link)
            or a class folder that cannot be listed.
        DESCR : str
            Description of the data, its source and counts.

    (data, target) : tuple
        When ``return_X_y`` is True.

    Raises
    ------
    ValueError
        If ``root`` holds no patches or is not in the archive's layout (the message
        names the path and the expected layout), or an argument is invalid.
    FileNotFoundError
        If ``root`` does not exist.

    Warns
    -----
    UserWarning
        Once, with the count, if files could not be read (permission denied,
        truncated, empty, not an image, not a file) or their folder label disagrees
        with their name; and once with the count of edge patches left out by
        ``pad="drop"``. The rest is loaded.

    See Also
    --------
    read_patient_split : The train/validation/test patient lists of Cruz-Roa et al.
    make_idc_patches : A synthetic IDC-like dataset with the same Bunch.

    Notes
    -----
    Rows are sorted by patient id (as a string), then by path. Grayscale, palette and
    RGBA files are converted to RGB (alpha is dropped). The file listing is
    fingerprinted for the cache, so adding, removing or rewriting a file rebuilds it.

    Examples
    --------
    >>> from idc_sklearn import load_idc
    >>> idc = load_idc("IDC_regular_ps50_idx5", n_jobs=-1,
    ...                cache="idc_cache")  # doctest: +SKIP
    >>> idc.data.shape, idc.data.dtype  # doctest: +SKIP
    ((277524, 50, 50, 3), dtype('uint8'))
    >>> idc.target.mean().round(3)  # doctest: +SKIP
    np.float64(0.284)

    Several folders at once, as one dataset:

    >>> idc = load_idc(["shared/data/idc_sample", "shared/data/idc_more",
    ...                 "shared/data/idc_trainval"])  # doctest: +SKIP
    >>> idc.frame["patient"].nunique()  # doctest: +SKIP
    116
    """
    _check_args(pad, n_jobs, progress, return_X_y, cache)
    roots = _check_roots(root)
    # Paths are stored relative to the folders' common parent, so the cache and the
    # frame work alike for one folder and for several.
    root_path = roots[0] if len(roots) == 1 else Path(os.path.commonpath(roots))
    if cache is not None:
        cache = os.path.expanduser(cache)
    files, skipped, selected = _list_files(roots, root_path, patients)
    manifest = {
        "format": _CACHE_FORMAT,
        "fingerprint": _fingerprint(files, pad, selected),
        "pad": pad,
        "patients": selected,
        "n_files": len(files),
    }
    cached = None if cache is None else _read_cache(Path(cache), manifest)
    if cached is None:
        data, frame, unread = _decode_files(root_path, files, pad, n_jobs, progress)
        skipped = sorted(skipped + unread)
        if cache is not None:
            _write_cache(Path(cache), manifest, data, frame, skipped)
            del data
            # Just written and synced: the sizes are checked, not the CRC again.
            cached = _read_cache(Path(cache), manifest, verify=False)
            if cached is None:
                raise OSError(f"cache={str(cache)!r} could not be read back.")
    if cached is not None:
        data, frame, skipped = cached
    prefix = str(root_path) + os.sep
    frame["path"] = pd.Series([prefix + p for p in frame["path"]], dtype=str)
    skipped = [(prefix + p, r) for p, r in skipped]
    _warn_skipped(str(root_path), skipped, len(frame) + len(skipped))
    target = frame["target"].to_numpy(dtype=np.int64, copy=True)
    if return_X_y:
        return data, target
    n_dropped = sum("(pad='drop')" in r for _, r in skipped)
    return Bunch(
        data=data,
        target=target,
        groups=frame["patient"].to_numpy(dtype=object, copy=True),
        frame=frame,
        skipped=skipped,
        DESCR=_describe(frame, ", ".join(map(str, roots)), pad, skipped, n_dropped),
    )


def _check_roots(root) -> list[Path]:
    """``root`` as a list of absolute folder paths: one, or several in their order."""
    if isinstance(root, (str, os.PathLike)):
        given = [root]
    elif isinstance(root, (list, tuple)) and root:
        given = list(root)
    else:
        raise TypeError(
            "root must be the path of an IDC archive folder or a non-empty list "
            f"of them; got {type(root).__name__} {root!r}."
        )
    roots = []
    for entry in given:
        if not isinstance(entry, (str, os.PathLike)):
            raise TypeError(
                "root must hold paths of IDC archive folders; got "
                f"{entry!r} of type {type(entry).__name__}."
            )
        path = _folder(entry)
        if path not in roots:
            roots.append(path)
    return roots


def _list_files(roots: list[Path], common: Path, patients):
    """List the patch files to load, sorted by patient then path, and those skipped.

    Returns ``files`` as ``(patient, label, name, rel_path, x, y, size, mtime_ns)``,
    ``skipped`` as ``(rel_path, reason)``, paths relative to ``common``, and the
    selected patient ids (or None).
    """
    folders: dict[str, list[Path]] = {}
    for root in roots:
        for patient, paths in _archive_patients(root).items():
            folders.setdefault(patient, []).extend(paths)
    root = common
    selected = _check_patients(patients, folders)
    files = []
    skipped = []
    for patient in sorted(folders) if selected is None else selected:
        patient_files, patient_skipped = _scan_patient(patient, folders[patient], root)
        files.extend(patient_files)
        skipped.extend(patient_skipped)
    if not files:
        raise _layout_error(
            root,
            "holds no patch files named <patient>_idx5_x<X>_y<Y>_class<C>.png "
            f"({len(skipped)} other files)",
        )
    # By patient, then by the path inside the patient's folder (class, file name),
    # so that the order does not depend on which copy of the archive a file is in.
    files.sort()
    return files, skipped, selected


def _decode_files(root: Path, files, pad: str, n_jobs, progress: bool):
    """Decode ``files``; return the data, the frame and the files not loaded."""
    prefix = str(root) + os.sep
    paths = [prefix + f[3] for f in files]
    data, heights, widths, reasons = _decode_all(paths, pad, n_jobs, progress)
    keep = np.array([r is None for r in reasons], dtype=bool)
    unread = [(f[3], r) for f, r in zip(files, reasons, strict=True) if r is not None]
    if not keep.all():
        data = _compact(data, keep)
    kept = [f for f, k in zip(files, keep, strict=True) if k]
    frame = make_frame(
        patient=[f[0] for f in kept],
        target=[f[1] for f in kept],
        x=[f[4] for f in kept],
        y=[f[5] for f in kept],
        path=[f[3] for f in kept],
        height=heights[keep],
        width=widths[keep],
    )
    return data, frame, unread


def read_patient_split(folder: str | os.PathLike) -> dict[str, list[str]]:
    """Read the patient split of Cruz-Roa et al. 2014 (84 / 29 / 49 patients).

    Parameters
    ----------
    folder : str or path-like
        The folder holding ``cases_train.txt``, ``cases_val.txt`` and
        ``cases_test.txt``, one patient id a line.

    Returns
    -------
    split : dict of str to list of str
        ``{"train": [...], "val": [...], "test": [...]}``, patient ids as strings in
        the files' order, ready for ``load_idc(root, patients=split["train"])``.

    Raises
    ------
    FileNotFoundError
        If the folder or one of the three files is missing.
    ValueError
        If a list is empty or a patient is in more than one list.

    Examples
    --------
    >>> from idc_sklearn import read_patient_split
    >>> split = read_patient_split("shared/data/cruz_roa_split")  # doctest: +SKIP
    >>> {name: len(ids) for name, ids in split.items()}  # doctest: +SKIP
    {'train': 84, 'val': 29, 'test': 49}
    """
    if not isinstance(folder, (str, os.PathLike)):
        raise TypeError(
            "folder must be the path of the folder holding cases_train.txt, "
            f"cases_val.txt and cases_test.txt; got {type(folder).__name__}."
        )
    folder = Path(os.path.expanduser(folder))
    if not folder.is_dir():
        raise FileNotFoundError(
            f"folder={str(folder)!r} is not a folder; expected one holding "
            "cases_train.txt, cases_val.txt and cases_test.txt."
        )
    split = {}
    for name in SPLIT_NAMES:
        path = folder / f"cases_{name}.txt"
        if not path.is_file():
            raise FileNotFoundError(
                f"{str(path)!r} is missing; read_patient_split expects "
                "cases_train.txt, cases_val.txt and cases_test.txt in "
                f"{str(folder)!r}."
            )
        ids = [
            line.strip()
            for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
        if not ids:
            raise ValueError(f"{str(path)!r} lists no patient ids.")
        split[name] = ids
    seen: dict[str, str] = {}
    for name, ids in split.items():
        for patient in ids:
            if seen.setdefault(patient, name) != name:
                raise ValueError(
                    f"patient {patient!r} is in both cases_{seen[patient]}.txt and "
                    f"cases_{name}.txt in {str(folder)!r}; the lists must not overlap."
                )
    return split

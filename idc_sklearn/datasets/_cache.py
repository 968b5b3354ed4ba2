"""The disk cache of ``load_idc``: the decoded patches, their frame, the files skipped.

A cache folder holds ``data.npy`` (the patches), ``frame.csv`` and ``manifest.json``.
The manifest says what was loaded (:func:`cache_manifest`: the options and a
fingerprint of every file listed) and, for each of the other two files, its size and
CRC-32. A later load with the same manifest reads the patches back memory-mapped; a
cache of other files or options is rebuilt, and a damaged one rebuilt with a warning.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from idc_sklearn._files import ChecksumWriter, atomic_write, file_checksum

from ._frame import FRAME_COLUMNS
from ._scanner import PatchFile

# Bumped whenever what the cache holds changes, so that old caches are rebuilt.
CACHE_FORMAT = 2


def cache_manifest(
    files: Sequence[PatchFile], pad: str, patients: list[str] | None
) -> dict:
    """What a cache of ``files`` loaded with ``pad`` and ``patients`` must match."""
    return {
        "format": CACHE_FORMAT,
        "fingerprint": _fingerprint(files, pad, patients),
        "pad": pad,
        "patients": patients,
        "n_files": len(files),
    }


def _fingerprint(files: Sequence[PatchFile], pad: str, patients) -> str:
    """Hash of the options and every file's relative path, size and mtime."""
    digest = hashlib.sha256()
    digest.update(f"{CACHE_FORMAT}\t{pad}\t{patients}\n".encode())
    listing = "".join(f"{f.rel_path}\t{f.size}\t{f.mtime_ns}\n" for f in sorted(files))
    digest.update(listing.encode())
    return digest.hexdigest()


def write_cache(cache: Path, manifest, data, frame, skipped) -> None:
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
    # Called by read_cache, called by load_idc: the warning points at its caller.
    warnings.warn(
        f"load_idc's cache {str(cache)!r} is damaged ({problem}); it is rebuilt "
        "from the PNG files.",
        UserWarning,
        stacklevel=4,
    )


def read_cache(cache: Path, manifest, *, verify: bool = True):
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
    problem = _check_files(cache, checksums, verify)
    if problem is None:
        try:
            data, frame = _read_arrays(cache)
        except (OSError, ValueError) as exc:
            problem = f"{type(exc).__name__}: {exc}"
        else:
            if list(frame.columns) != list(FRAME_COLUMNS) or len(frame) != len(data):
                problem = "frame.csv does not match data.npy"
    if problem is not None:
        _damaged_cache(cache, problem)
        return None
    return data, frame, [tuple(s) for s in skipped]


def _check_files(cache: Path, checksums: dict, verify: bool) -> str | None:
    """What is wrong with the cache's files against the manifest's ``checksums``."""
    for name in ("data.npy", "frame.csv"):
        try:
            found = (
                file_checksum(cache / name)
                if verify
                else {"size": (cache / name).stat().st_size}
            )
        except OSError as exc:
            return f"{name} cannot be read: {exc}"
        expected = checksums.get(name)
        if not isinstance(expected, dict) or any(
            expected.get(key) != value for key, value in found.items()
        ):
            return (
                f"{name} is {found['size']} bytes"
                + (f" with CRC-32 {found['crc32']}" if verify else "")
                + f"; the manifest says {expected}"
            )
    return None


def _read_arrays(cache: Path) -> tuple[np.ndarray, pd.DataFrame]:
    """The patches, memory-mapped read-only, and the frame of a checked cache."""
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
    return data, frame

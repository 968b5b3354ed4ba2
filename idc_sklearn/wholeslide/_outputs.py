"""One slide of a cohort: predicted, its outputs written, and their manifest.

:func:`run_slide` is what a cohort does with each slide, in this process or in a
Dask worker: :func:`predict_slide`, :meth:`SlideResult.save` into the slide's
folder, then ``manifest.json``, written last and atomically, which records each
output's size and CRC-32, the slide file's size and time of change, the settings
and the slide's row of the cohort's table. :func:`verified_row` reads it back: the
row where every output is there and unchanged, for the same slide and settings, so
that a rerun skips that slide; None otherwise (never run, interrupted, failed,
changed since, or run with other settings), and the slide is redone.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from idc_sklearn._files import atomic_write, file_checksum
from idc_sklearn.wholeslide._pipeline import predict_slide
from idc_sklearn.wholeslide._result import OUTPUT_FILES

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "idc_sklearn.slide_outputs"
MANIFEST_VERSION = 1


def run_slide(
    estimator,
    slide: str,
    folder: Path,
    *,
    threshold: float,
    options: dict,
    settings: dict,
    progress: bool = False,
    worker: str = "local",
) -> dict:
    """Predict ``slide``, write its outputs and manifest into ``folder``; its row.

    A fault is caught and reported in the row (``status`` "failed", ``error``), so
    that the cohort goes on; the folder then holds no manifest.
    """
    start = time.perf_counter()
    try:
        # Removed first: until the new one is written, the folder claims nothing.
        (folder / MANIFEST).unlink(missing_ok=True)
        identity = slide_identity(slide)
        result = predict_slide(estimator, slide, progress=progress, **options)
        files = result.save(folder, threshold=threshold)
        row = {
            **new_row(slide, folder, "done"),
            **{k: v for k, v in result.summary(threshold).items() if k != "slide"},
            "grid_tiles": int(result.probability_map.size),
            "seconds": time.perf_counter() - start,
            "worker": worker,
        }
        manifest = {
            "format": MANIFEST_FORMAT,
            "version": MANIFEST_VERSION,
            "slide": identity,
            "settings": settings,
            "files": {path.name: file_checksum(path) for path in files},
            "row": row,
        }
        with atomic_write(folder / MANIFEST, "w") as f:
            json.dump(manifest, f, indent=2)
        return row
    except Exception as exc:  # noqa: BLE001 - reported in its row; the others go on
        return failed_row(slide, folder, exc, time.perf_counter() - start, worker)


def new_row(slide: str, folder: Path, status: str) -> dict:
    """The first columns of a slide's row of ``slides.csv``."""
    return {
        "slide": slide,
        "name": folder.name,
        "status": status,
        "skipped": False,
        "error": "",
    }


def failed_row(slide: str, folder: Path, exc: BaseException, seconds, worker) -> dict:
    """The row of a slide that failed: its error, as ``Type: message``."""
    return {
        **new_row(slide, folder, "failed"),
        "error": f"{type(exc).__name__}: {exc}",
        "seconds": seconds,
        "worker": worker,
    }


def slide_identity(slide: str) -> dict | None:
    """The slide file's size and time of change: a changed slide is redone."""
    try:
        stat = os.stat(slide)
    except OSError:
        return None
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def verified_row(slide: str, folder: Path, settings: dict) -> dict | None:
    """The row of the manifest where ``folder`` holds this slide's complete outputs.

    None where the manifest is absent or unreadable, is of another slide file or
    other settings, or where an output is missing or differs in size or CRC-32
    from what it records.
    """
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not (
        isinstance(manifest, dict)
        and manifest.get("format") == MANIFEST_FORMAT
        and manifest.get("version") == MANIFEST_VERSION
        and manifest.get("settings") == settings
        and manifest.get("slide") == slide_identity(slide)
        and isinstance(manifest.get("files"), dict)
        and set(manifest["files"]) == set(OUTPUT_FILES)
        and isinstance(manifest.get("row"), dict)
    ):
        return None
    for name, recorded in manifest["files"].items():
        try:
            if file_checksum(folder / name) != recorded:
                return None
        except OSError:
            return None
    return {**manifest["row"], "slide": slide, "skipped": True}

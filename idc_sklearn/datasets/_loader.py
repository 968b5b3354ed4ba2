"""``load_idc``: the IDC archive of PNG patches as uint8 arrays (no torch here).

The archive is ``<root>/<patient>/<0|1>/<patient>_idx5_x<X>_y<Y>_class<C>.png``;
``load_idc`` reads it at full scale (277,524 patches) into one preallocated
``(n, 50, 50, 3)`` uint8 array, in parallel, and can cache the decoded result on disk.
It lists the files with the scanner (``_scanner.py``), decodes them with the decoder
(``_decode.py``) and keeps them in the cache (``_cache.py``).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from ._cache import cache_manifest, read_cache, write_cache
from ._decode import PATCH_SIZE, check_pad, compact, decode_all
from ._frame import make_frame
from ._scanner import PatchFile, check_roots, list_files


def _check_args(pad, n_jobs, progress, return_X_y, cache) -> None:
    check_pad(pad)
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
    roots = check_roots(root)
    # Paths are stored relative to the folders' common parent, so the cache and the
    # frame work alike for one folder and for several.
    root_path = roots[0] if len(roots) == 1 else Path(os.path.commonpath(roots))
    if cache is not None:
        cache = os.path.expanduser(cache)
    files, skipped, selected = list_files(roots, root_path, patients)
    manifest = cache_manifest(files, pad, selected)
    cached = None if cache is None else read_cache(Path(cache), manifest)
    if cached is None:
        data, frame, unread = _decode_files(root_path, files, pad, n_jobs, progress)
        skipped = sorted(skipped + unread)
        if cache is not None:
            write_cache(Path(cache), manifest, data, frame, skipped)
            del data
            # Just written and synced: the sizes are checked, not the CRC again.
            cached = read_cache(Path(cache), manifest, verify=False)
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


def _decode_files(root: Path, files: list[PatchFile], pad: str, n_jobs, progress: bool):
    """Decode ``files``; return the data, the frame and the files not loaded."""
    prefix = str(root) + os.sep
    paths = [prefix + f.rel_path for f in files]
    data, heights, widths, reasons = decode_all(paths, pad, n_jobs, progress)
    keep = np.array([r is None for r in reasons], dtype=bool)
    unread = [
        (f.rel_path, r) for f, r in zip(files, reasons, strict=True) if r is not None
    ]
    if not keep.all():
        data = compact(data, keep)
    kept = [f for f, k in zip(files, keep, strict=True) if k]
    frame = make_frame(
        patient=[f.patient for f in kept],
        target=[f.label for f in kept],
        x=[f.x for f in kept],
        y=[f.y for f in kept],
        path=[f.rel_path for f in kept],
        height=heights[keep],
        width=widths[keep],
    )
    return data, frame, unread


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

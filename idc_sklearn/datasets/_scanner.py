"""Scanning the IDC archive: its layout checked and its patch files listed, unread.

The archive is ``<root>/<patient>/<0|1>/<patient>_idx5_x<X>_y<Y>_class<C>.png``,
with, in some copies, the whole archive again in ``IDC_regular_ps50_idx5/``.
:func:`check_archive_layout` looks at the folders only; :func:`list_files` lists each
patch file as a :class:`PatchFile` and each entry that is not one with its reason.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ._decode import describe_error

NESTED_ARCHIVE_DIR = "IDC_regular_ps50_idx5"
EXPECTED_LAYOUT = (
    "<root>/<patient>/<0|1>/<patient>_idx5_x<X>_y<Y>_class<0|1>.png, where root is "
    "the folder holding the patient folders or the archive's top folder"
)

_NAME_RE = re.compile(
    r"^(?P<patient>.+?)_idx5_x(?P<x>\d+)_y(?P<y>\d+)_class(?P<label>\d+)\.png$",
    re.IGNORECASE,
)


class PatchFile(NamedTuple):
    """One patch file of the archive, as :func:`list_files` finds it.

    Records compare as tuples, field by field, so sorting them orders them by
    patient, then class folder and file name (unique within a patient): the order of
    ``load_idc``'s rows.

    Attributes
    ----------
    patient : str
        The patient id, the name of the patient folder (the file name agrees).
    label : int
        The class folder: 1 for IDC, 0 for non-IDC (the file name agrees).
    name : str
        The file name.
    rel_path : str
        The file's path relative to the folder the listing is made under.
    x : int
        The column of the patch's top-left pixel in the slide, from the file name.
    y : int
        The row of the patch's top-left pixel in the slide, from the file name.
    size : int
        The file's size in bytes, for the cache's fingerprint.
    mtime_ns : int
        The file's modification time in nanoseconds, for the cache's fingerprint.
    """

    patient: str
    label: int
    name: str
    rel_path: str
    x: int
    y: int
    size: int
    mtime_ns: int


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


def check_roots(root) -> list[Path]:
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


def list_files(
    roots: list[Path], common: Path, patients
) -> tuple[list[PatchFile], list[tuple[str, str]], list[str] | None]:
    """List the patch files to load, sorted by patient then path, and those skipped.

    Returns the files, ``skipped`` as ``(rel_path, reason)``, paths relative to
    ``common``, and the selected patient ids (or None).
    """
    folders: dict[str, list[Path]] = {}
    for root in roots:
        for patient, paths in _archive_patients(root).items():
            folders.setdefault(patient, []).extend(paths)
    selected = _check_patients(patients, folders)
    files = []
    skipped = []
    for patient in sorted(folders) if selected is None else selected:
        patient_files, patient_skipped = _scan_patient(
            patient, folders[patient], common
        )
        files.extend(patient_files)
        skipped.extend(patient_skipped)
    if not files:
        raise _layout_error(
            common,
            "holds no patch files named <patient>_idx5_x<X>_y<Y>_class<C>.png "
            f"({len(skipped)} other files)",
        )
    # By patient, then by the path inside the patient's folder (class, file name),
    # so that the order does not depend on which copy of the archive a file is in.
    files.sort()
    return files, skipped, selected


def _scan_patient(
    patient: str, folders: list[Path], root: Path
) -> tuple[list[PatchFile], list[tuple[str, str]]]:
    """List one patient's files and those skipped, as ``(rel_path, reason)``.

    A file is keyed by its class folder and name, so the copy of the archive nested
    in it adds nothing that the top level already holds. Hidden files (``.DS_Store``,
    macOS ``._*`` forks) are not patches and are passed over.
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
                reason = f"folder cannot be listed: {describe_error(exc)}"
                skipped.append((folder_path, reason))
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
                        reason = f"cannot be read: {describe_error(exc)}"
                if reason is not None:
                    skipped.append((prefix + name, reason))
                    continue
                files.append(
                    PatchFile(
                        patient=patient,
                        label=int(label),
                        name=name,
                        rel_path=prefix + name,
                        x=int(match["x"]),
                        y=int(match["y"]),
                        size=stat.st_size,
                        mtime_ns=stat.st_mtime_ns,
                    )
                )
    return files, skipped


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
        return f"cannot be read: {describe_error(exc)}"
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

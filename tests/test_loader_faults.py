"""load_idc on damaged archives: each faulty entry skipped and reported, the rest read.

Each fault is built in a small archive in the dataset's layout
(``<root>/<patient>/<0|1>/<patient>_idx5_x<X>_y<Y>_class<C>.png``) beside good
patches. ``FAULTS`` also feeds the loader table of ``docs/bad_inputs.md`` (checked by
``tests/test_bad_inputs.py``).
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from idc_sklearn import load_idc

PATIENT = "7"
NOBODY = 65534
POSIX = hasattr(os, "geteuid")


def _png(seed: int, size=(50, 50)) -> tuple[bytes, np.ndarray]:
    pixels = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue(), pixels


def _name(x: int, label: int) -> str:
    return f"{PATIENT}_idx5_x{x}_y1_class{label}.png"


def _jpeg(path: Path) -> None:
    Image.new("RGB", (50, 50), "pink").save(path, format="JPEG")


def _deny(path: Path) -> None:
    path.write_bytes(_png(99)[0])
    path.chmod(0)


@dataclass(frozen=True)
class Fault:
    """One damaged entry of a class folder and the stable part of its reason."""

    id: str
    what: str
    make: Callable[[Path], None]
    reason: str
    needs_denial: bool = False


FAULTS = [
    Fault("zero-byte", "a zero-byte file", lambda p: p.write_bytes(b""), "empty"),
    Fault(
        "truncated",
        "a PNG cut in half",
        lambda p: p.write_bytes(_png(99)[0][:300]),
        "cannot be read",
    ),
    Fault(
        "not-an-image",
        "a text file named like a patch",
        lambda p: p.write_bytes(b"this is not a PNG"),
        "cannot be read as a PNG image",
    ),
    Fault(
        "jpeg",
        "a JPEG named like a patch",
        _jpeg,
        "cannot be read as a PNG image",
    ),
    Fault(
        "permission-denied",
        "a file without read permission (mode 000)",
        _deny,
        "cannot be read: PermissionError",
        needs_denial=True,
    ),
    Fault(
        "folder",
        "a folder named like a patch",
        lambda p: p.mkdir(),
        "is a folder, not a PNG file",
    ),
    Fault(
        "broken-link",
        "a symbolic link to a file that does not exist",
        lambda p: p.symlink_to(p.with_name("nowhere.png")),
        "is a broken link",
    ),
    Fault(
        "fifo",
        "a named pipe named like a patch (reading it would block)",
        lambda p: os.mkfifo(p),
        "is not a regular file",
    ),
]


@contextmanager
def _reads_denied():
    """Run the body as a user that ``chmod 0`` denies: ``nobody`` when root.

    Root reads any file whatever its mode, so the body runs with the effective
    user id of ``nobody`` (the real id stays root, which switches back).
    """
    if os.geteuid() != 0:
        yield
        return
    os.seteuid(NOBODY)
    try:
        yield
    finally:
        os.seteuid(0)


@pytest.fixture
def root(tmp_path):
    """An empty archive folder that ``nobody`` can reach when the tests run as root."""
    if not POSIX:
        pytest.skip("the faults are built with POSIX modes, links and pipes")
    if os.geteuid() != 0:
        yield tmp_path / "archive"
        return
    # pytest's tmp_path lies in a folder only root may enter.
    folder = Path(tempfile.mkdtemp(prefix="idc-faults-"))
    folder.chmod(0o755)
    try:
        yield folder / "archive"
    finally:
        shutil.rmtree(folder)


def _good_archive(root: Path, per_class: int = 2) -> dict[str, np.ndarray]:
    """Write good patches of both classes; return their pixels by file name."""
    pixels = {}
    for label in (0, 1):
        folder = root / PATIENT / str(label)
        folder.mkdir(parents=True)
        for i in range(per_class):
            name = _name(1 + 50 * i, label)
            data, pixels[name] = _png(10 * label + i)
            (folder / name).write_bytes(data)
    return pixels


def _load(root: Path, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = load_idc(root, progress=False, **kwargs)
    return loaded, [str(w.message) for w in caught]


def _assert_rest_loaded(loaded, pixels: dict[str, np.ndarray]) -> None:
    names = [Path(p).name for p in loaded.frame["path"]]
    assert sorted(names) == sorted(pixels)
    for row, name in enumerate(names):
        np.testing.assert_array_equal(loaded.data[row], pixels[name])


def _check_denial(path: Path) -> None:
    with _reads_denied():
        try:
            path.open("rb").close()
        except PermissionError:
            return
    pytest.skip("this file system or user reads files of mode 000 anyway")


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.id)
def test_each_fault_is_skipped_and_reported(root, fault):
    pixels = _good_archive(root)
    path = root / PATIENT / "1" / _name(501, 1)
    fault.make(path)
    if fault.needs_denial:
        _check_denial(path)
    with _reads_denied():
        loaded, messages = _load(root)
    assert loaded.skipped == [(str(path), loaded.skipped[0][1])]
    assert fault.reason in loaded.skipped[0][1]
    assert len(messages) == 1
    assert f"skipped 1 of {len(pixels) + 1} files" in messages[0]
    _assert_rest_loaded(loaded, pixels)


def test_all_faults_together_are_counted_in_one_warning(root):
    pixels = _good_archive(root, per_class=3)
    paths = {}
    for i, fault in enumerate(FAULTS):
        paths[fault.id] = root / PATIENT / str(i % 2) / _name(1001 + 50 * i, i % 2)
        fault.make(paths[fault.id])
    _check_denial(paths["permission-denied"])
    with _reads_denied():
        loaded, messages = _load(root)
    reasons = dict(loaded.skipped)
    assert set(reasons) == {str(p) for p in paths.values()}
    for fault in FAULTS:
        assert fault.reason in reasons[str(paths[fault.id])], fault.id
    assert len(messages) == 1
    assert f"skipped {len(FAULTS)} of {len(FAULTS) + len(pixels)} files" in messages[0]
    _assert_rest_loaded(loaded, pixels)


def test_an_unlistable_class_folder_is_reported_and_the_other_loaded(root):
    pixels = _good_archive(root)
    denied = root / PATIENT / "1"
    denied.chmod(0)
    try:
        with _reads_denied():
            try:
                os.listdir(denied)
            except PermissionError:
                loaded, messages = _load(root)
            else:
                pytest.skip("this file system or user lists folders of mode 000")
    finally:
        denied.chmod(0o755)
    assert loaded.skipped == [(str(denied), loaded.skipped[0][1])]
    assert "folder cannot be listed: PermissionError" in loaded.skipped[0][1]
    assert len(messages) == 1 and "skipped 1 of" in messages[0]
    _assert_rest_loaded(loaded, {k: v for k, v in pixels.items() if "class0" in k})


def test_a_png_cut_anywhere_is_skipped_or_loaded_whole(root):
    """Every prefix of a PNG: skipped with a reason, or loaded with its pixels."""
    pixels = _good_archive(root, per_class=1)
    data, full = _png(7)
    folder = root / PATIENT / "0"
    cuts = sorted({*range(0, 120, 7), *range(120, len(data), 97), len(data) - 1})
    for cut in cuts:
        (folder / _name(10_001 + cut, 0)).write_bytes(data[:cut])
    loaded, messages = _load(root)
    reasons = {Path(p).name: r for p, r in loaded.skipped}
    names = [Path(p).name for p in loaded.frame["path"]]
    for cut in cuts:
        name = _name(10_001 + cut, 0)
        if name in reasons:
            assert reasons[name].startswith("cannot be read"), reasons[name]
        else:
            np.testing.assert_array_equal(loaded.data[names.index(name)], full)
    assert len(reasons) >= len(cuts) - 2  # at most the end marker may be missing
    assert len(messages) == 1 and f"skipped {len(reasons)} of" in messages[0]
    for name, patch in pixels.items():
        np.testing.assert_array_equal(loaded.data[names.index(name)], patch)

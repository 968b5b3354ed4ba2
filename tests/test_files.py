"""Atomic writes, checksummed tensor files and the damaged-cache rebuild of load_idc."""

from __future__ import annotations

import os
import pickle
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from idc_sklearn import load_idc
from idc_sklearn._files import (
    FileFormatError,
    atomic_write,
    load_tensors,
    save_tensors,
)

# --- atomic_write -------------------------------------------------------------


def test_atomic_write_replaces_the_file_whole(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text("old")
    with atomic_write(path, "w") as f:
        f.write("new")
        assert path.read_text() == "old"  # not visible until the block ends
    assert path.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_write(path) as f:
            f.write(b"half of the new")
            raise RuntimeError("disk full")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.bin"]


def test_a_crash_before_the_rename_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "model.bin"
    path.write_bytes(b"old")

    def crash(*args):
        raise OSError("killed")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="killed"):
        with atomic_write(path) as f:
            f.write(b"new")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.bin"]


def test_atomic_write_gives_the_permissions_open_would(tmp_path):
    with open(tmp_path / "plain", "wb"):
        pass
    with atomic_write(tmp_path / "atomic"):
        pass
    plain = (tmp_path / "plain").stat().st_mode
    assert (tmp_path / "atomic").stat().st_mode == plain


def test_atomic_write_names_a_missing_folder_and_a_bad_mode(tmp_path):
    with pytest.raises(FileNotFoundError, match="the folder .*nowhere.* does not"):
        with atomic_write(tmp_path / "nowhere" / "file"):
            pass
    with pytest.raises(ValueError, match='mode must be "wb" or "w"; got \'a\''):
        with atomic_write(tmp_path / "file", "a"):
            pass
    with pytest.raises(TypeError, match="path must be a str or path-like; got int"):
        with atomic_write(3):
            pass


# --- save_tensors / load_tensors ----------------------------------------------


def test_tensors_and_metadata_round_trip(tmp_path):
    base = np.arange(12, dtype=np.float64).reshape(3, 4)
    tensors = {
        "float32": np.linspace(0, 1, 5, dtype=np.float32),
        "float64 view": base[:, ::2],  # not contiguous
        "big-endian": np.arange(3, dtype=">i4"),
        "uint8": np.arange(6, dtype=np.uint8).reshape(2, 3),
        "bool": np.array([True, False]),
        "scalar": np.array(2.5),
        "empty": np.zeros((0, 3), dtype=np.float32),
        "bfloat16": torch.tensor([1.5, -2.0], dtype=torch.bfloat16),
    }
    metadata = {"epoch": 3, "classes": ["IDC", "non-IDC"], "nested": {"lr": 1e-3}}
    path = tmp_path / "t.safetensors"
    save_tensors(path, tensors, metadata)
    loaded, loaded_metadata = load_tensors(path)
    assert loaded_metadata == metadata
    assert sorted(loaded) == sorted(tensors)
    for name, value in tensors.items():
        if isinstance(value, np.ndarray):
            value = torch.tensor(value.astype(value.dtype.newbyteorder("=")))
        assert loaded[name].dtype == value.dtype, name
        assert loaded[name].shape == value.shape, name
        assert torch.equal(loaded[name], value), name


@pytest.mark.parametrize(
    ("tensors", "metadata", "match"),
    [
        ({"s": np.array(["a"])}, {}, "tensor 's' has dtype <U1"),
        ({"x": [1, 2]}, {}, "tensor 'x' must be a numpy array or torch tensor"),
        ({1: np.zeros(1)}, {}, "tensor names must be str"),
        ([np.zeros(1)], {}, "tensors must be a dict"),
        ({}, {"loss": float("nan")}, "metadata must be JSON-serialisable"),
        ({}, {"when": object()}, "metadata must be JSON-serialisable"),
    ],
)
def test_save_tensors_refuses_what_it_cannot_store(tensors, metadata, match, tmp_path):
    with pytest.raises(TypeError, match=match):
        save_tensors(tmp_path / "t.safetensors", tensors, metadata)
    assert not list(tmp_path.iterdir())


@pytest.fixture
def tensor_file(tmp_path):
    path = tmp_path / "t.safetensors"
    save_tensors(path, {"w": np.arange(64, dtype=np.float32)}, {"epoch": 1})
    return path


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda data: data[:-10], "not a valid safetensors file"),
        (lambda data: data[:5], "header too small"),
        (lambda data: b"", r"\(0 bytes; header too small\)"),
        (lambda data: data[:-4] + bytes([data[-4] ^ 1]) + data[-3:], "checksum"),
        (lambda data: data.replace(b'\\"epoch\\": 1', b'\\"epoch\\": 2'), "checksum"),
        (lambda data: pickle.dumps({"w": 1}), "looks like a Python pickle"),
    ],
    ids=["truncated", "header cut", "empty", "flipped bit", "edited", "pickle"],
)
def test_load_tensors_refuses_damaged_files(damage, match, tensor_file):
    tensor_file.write_bytes(damage(tensor_file.read_bytes()))
    with pytest.raises(FileFormatError, match=match) as error:
        load_tensors(tensor_file)
    assert str(tensor_file) in str(error.value)
    assert isinstance(error.value, ValueError)


def test_load_tensors_names_a_missing_file_and_a_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.safetensors"):
        load_tensors(tmp_path / "absent.safetensors")
    with pytest.raises(IsADirectoryError, match="is a folder"):
        load_tensors(tmp_path)


# --- the cache of load_idc ----------------------------------------------------


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """Two patients, both classes, three 50x50 PNG patches each."""
    root = tmp_path_factory.mktemp("archive")
    rng = np.random.default_rng(0)
    for patient in ("10", "11"):
        for label in ("0", "1"):
            folder = root / patient / label
            folder.mkdir(parents=True)
            for i in range(3):
                pixels = rng.integers(0, 256, (50, 50, 3), dtype=np.uint8)
                name = f"{patient}_idx5_x{50 * i}_y0_class{label}.png"
                Image.fromarray(pixels).save(folder / name)
    return root


def _load(root, cache):
    return load_idc(root, cache=cache, progress=False)


def _flip_last_byte(path):
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


DAMAGE = {
    "data truncated": lambda c: os.truncate(c / "data.npy", 1000),
    "data zero-length": lambda c: (c / "data.npy").write_bytes(b""),
    "data flipped byte": lambda c: _flip_last_byte(c / "data.npy"),
    "data missing": lambda c: (c / "data.npy").unlink(),
    "frame flipped byte": lambda c: _flip_last_byte(c / "frame.csv"),
    "manifest not JSON": lambda c: (c / "manifest.json").write_text("{not json"),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_cache_is_rebuilt_with_a_warning(damage, archive, tmp_path):
    cache = tmp_path / "cache"
    # A copy: truncating a file under a live memory map would crash the reader.
    expected = np.array(_load(archive, cache).data)
    DAMAGE[damage](cache)
    with pytest.warns(UserWarning, match="cache .* is damaged .*; it is rebuilt"):
        rebuilt = _load(archive, cache)
    np.testing.assert_array_equal(rebuilt.data, expected)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = _load(archive, cache)
    assert isinstance(again.data, np.memmap)
    np.testing.assert_array_equal(again.data, expected)


def test_the_cache_files_are_written_whole(archive, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    real_save = np.save

    def crash_midway(file, array):
        real_save(file, array[:1])
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "save", crash_midway)
    with pytest.raises(KeyboardInterrupt):
        _load(archive, cache)
    assert sorted(p.name for p in cache.iterdir()) == []
    monkeypatch.undo()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(_load(archive, cache).target) == 12

"""The decoder: PNG patches read, converted to RGB and padded, alone and in parallel.

Through ``read_patch`` and ``load_idc``, which decode every file as ``read_patch``
reads one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from idc_archive import CORNER, copy_subset, load, rgb_pixels
from PIL import Image

from idc_sklearn import read_patch
from idc_sklearn.datasets import _decode


@pytest.fixture(scope="module")
def sample(idc_sample_root):
    return load(idc_sample_root)


@pytest.fixture(scope="module")
def sample_reflect(idc_sample_root):
    return load(idc_sample_root, pad="reflect")


@pytest.fixture
def subset(idc_sample_root, tmp_path):
    return copy_subset(idc_sample_root, tmp_path)


# --- load_idc's decoding -------------------------------------------------------


def test_pixels_are_the_files_pixels(sample):
    for i in (0, 1000, 2694):
        np.testing.assert_array_equal(
            sample.data[i], rgb_pixels(sample.frame["path"][i])
        )


def _corner_row(bunch) -> int:
    return int(np.flatnonzero(bunch.frame["path"].str.endswith(CORNER))[0])


def test_pad_zero_pastes_edge_patches_top_left_into_zeros(sample):
    i = _corner_row(sample)
    assert (sample.frame["width"][i], sample.frame["height"][i]) == (32, 42)
    original = rgb_pixels(sample.frame["path"][i])
    np.testing.assert_array_equal(sample.data[i, :42, :32], original)
    assert not sample.data[i, 42:].any() and not sample.data[i, :, 32:].any()


def test_pad_reflect_reflects_edge_patches(sample, sample_reflect):
    i = _corner_row(sample_reflect)
    original = rgb_pixels(sample_reflect.frame["path"][i])
    expected = np.pad(original, ((0, 8), (0, 18), (0, 0)), mode="reflect")
    np.testing.assert_array_equal(sample_reflect.data[i], expected)
    full = (sample.frame["height"] == 50) & (sample.frame["width"] == 50)
    np.testing.assert_array_equal(sample.data[full], sample_reflect.data[full])


def test_two_workers_give_the_same_result(subset, monkeypatch):
    serial = load(subset)
    # Small chunks, so that both workers get several and they finish out of order.
    monkeypatch.setattr(_decode, "_CHUNK", 4)
    parallel = load(subset, n_jobs=2)
    np.testing.assert_array_equal(parallel.data, serial.data)
    pd.testing.assert_frame_equal(parallel.frame, serial.frame)


def test_sixteen_bit_grayscale_is_scaled_to_eight_bits(tmp_path):
    folder = tmp_path / "7" / "0"
    folder.mkdir(parents=True)
    values = np.arange(2500, dtype=np.uint16).reshape(50, 50) * 26
    Image.fromarray(values).save(folder / "7_idx5_x1_y1_class0.png")
    patch = load(tmp_path).data[0]
    expected = np.rint(values / 257).astype(np.uint8)
    np.testing.assert_array_equal(patch[:, :, 0], expected)
    np.testing.assert_array_equal(patch[:, :, 2], expected)


def test_a_patch_larger_than_50x50_is_skipped(tmp_path):
    folder = tmp_path / "7" / "1"
    folder.mkdir(parents=True)
    Image.new("RGB", (50, 50), "pink").save(folder / "7_idx5_x1_y1_class1.png")
    Image.new("RGB", (64, 50), "pink").save(folder / "7_idx5_x51_y1_class1.png")
    with pytest.warns(UserWarning, match="skipped 1 of 2"):
        loaded = load(tmp_path)
    assert loaded.data.shape == (1, 50, 50, 3)
    assert "larger than 50x50" in loaded.skipped[0][1]


# --- read_patch ----------------------------------------------------------------


def test_read_patch_reads_each_patch_as_load_idc(
    idc_sample_root, sample, sample_reflect
):
    # The frame's paths are absolute: the corner patch is found by its ending.
    rows = [0, 500, _corner_row(sample)]
    for row in rows:
        path = idc_sample_root / sample.frame["path"][row]
        np.testing.assert_array_equal(read_patch(path), sample.data[row])
        reflected = read_patch(str(path), pad="reflect")
        np.testing.assert_array_equal(reflected, sample_reflect.data[row])


def test_read_patch_converts_to_rgb_as_load_idc(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (50, 50, 3), dtype=np.uint8)
    Image.fromarray(rgb).convert("RGBA").save(tmp_path / "rgba.png")
    np.testing.assert_array_equal(read_patch(tmp_path / "rgba.png"), rgb)
    values = np.arange(2500, dtype=np.uint16).reshape(50, 50) * 26
    Image.fromarray(values).save(tmp_path / "gray16.png")
    patch = read_patch(tmp_path / "gray16.png")
    assert patch.dtype == np.uint8 and patch.shape == (50, 50, 3)
    np.testing.assert_array_equal(patch[:, :, 1], np.rint(values / 257))


def test_read_patch_fills_a_smaller_patch_to_patch_size(tmp_path):
    Image.new("RGB", (12, 10), (9, 8, 7)).save(tmp_path / "edge.png")
    patch = read_patch(tmp_path / "edge.png", patch_size=(16, 20))
    assert patch.shape == (16, 20, 3)
    assert (patch[:10, :12] == (9, 8, 7)).all() and not patch[10:].any()
    assert not patch[:, 12:].any()
    square = read_patch(tmp_path / "edge.png", patch_size=np.int64(12))
    assert square.shape == (12, 12, 3)


def test_read_patch_expands_the_home_folder(tmp_path, monkeypatch):
    Image.new("RGB", (50, 50), "pink").save(tmp_path / "patch.png")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert (read_patch("~/patch.png") == (255, 192, 203)).all()


def test_read_patch_refuses_files_that_are_not_patches(tmp_path):
    Image.new("RGB", (64, 50)).save(tmp_path / "big.png")
    with pytest.raises(ValueError, match=r"path='.*big\.png' is 64x50 .*than 50x50"):
        read_patch(tmp_path / "big.png")
    Image.new("RGB", (30, 40)).save(tmp_path / "edge.png")
    with pytest.raises(ValueError, match=r"edge\.png' is an edge patch .*'drop'"):
        read_patch(tmp_path / "edge.png", pad="drop")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(
        ValueError, match="empty.png' cannot be read: the file is empty"
    ):
        read_patch(tmp_path / "empty.png")
    (tmp_path / "text.png").write_text("not a PNG")
    with pytest.raises(ValueError, match="cannot be read as a PNG image"):
        read_patch(tmp_path / "text.png")
    with pytest.raises(FileNotFoundError, match="path='.*nowhere.png' does not exist"):
        read_patch(tmp_path / "nowhere.png")


@pytest.mark.parametrize(
    ("argument", "error", "match"),
    [
        ({"path": 7}, TypeError, "path must be a str or path-like; got int 7"),
        ({"pad": "edge"}, ValueError, "pad must be one of .*; got 'edge'"),
        ({"patch_size": 0}, ValueError, r"patch_size must be .*; got 0\."),
        ({"patch_size": (50,)}, ValueError, r"patch_size must be .*; got \(50,\)"),
        ({"patch_size": True}, ValueError, "patch_size must be .*; got True"),
        ({"patch_size": 50.0}, ValueError, r"patch_size must be .*; got 50\.0"),
    ],
)
def test_read_patch_bad_arguments_are_named(tmp_path, argument, error, match):
    Image.new("RGB", (50, 50)).save(tmp_path / "patch.png")
    kwargs = {"path": tmp_path / "patch.png", **argument}
    with pytest.raises(error, match=match):
        read_patch(kwargs.pop("path"), **kwargs)

"""wholeslide/_writer.py: write_slide, an RGB image as a pyramidal tiled TIFF."""

from __future__ import annotations

import numpy as np
import pytest

from idc_sklearn import write_slide

tifffile = pytest.importorskip("tifffile", reason="tifffile is absent (slides extra)")


def test_each_level_halves_the_last_and_records_its_resolution(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (700, 1000, 3), dtype=np.uint8)
    path = tmp_path / "slide.tif"
    write_slide(image, path, mpp=0.5, tile=256)
    with tifffile.TiffFile(path) as tif:
        shapes = [page.shape for page in tif.pages]
        assert shapes == [(700, 1000, 3), (350, 500, 3), (175, 250, 3)]
        np.testing.assert_array_equal(tif.pages[0].asarray(), image)
        assert tif.pages[0].tilewidth == 256
        # 20,000 pixels per centimetre at 0.5 um, half as many a level down.
        x_resolution = [page.tags["XResolution"].value for page in tif.pages]
        assert [n / d for n, d in x_resolution] == pytest.approx([2e4, 1e4, 5e3])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"image": np.zeros((4, 4), np.uint8)}, ValueError, "image must be an RGB"),
        ({"image": np.zeros((4, 4, 3))}, ValueError, "dtype float64"),
        ({"mpp": 0}, ValueError, "mpp must be a positive number; got 0"),
        ({"tile": 100}, ValueError, "tile must be a positive multiple of 16"),
        ({"path": "slide.png"}, ValueError, r"path=.*ending in \.tif or \.tiff"),
    ],
)
def test_bad_arguments_are_named(tmp_path, kwargs, error, match):
    arguments = {
        "image": np.zeros((32, 32, 3), np.uint8),
        "path": tmp_path / "slide.tif",
        "mpp": 4.0,
        **kwargs,
    }
    with pytest.raises(error, match=match):
        write_slide(**arguments)

"""wholeslide/_readers.py: OpenSlide or tiffslide, the level read, the resolution."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from slide_fixtures import Recorder, lay_out, tile_index

from idc_sklearn import predict_slide, write_slide
from idc_sklearn.wholeslide._readers import open_slide

# The fixtures: patient, slide, model, cheap.
pytest_plugins = ["slide_fixtures"]

openslide = pytest.importorskip(
    "openslide", reason="OpenSlide is absent: pip install 'idc_sklearn[slides]'"
)
pytest.importorskip("tifffile", reason="tifffile is absent (slides extra)")


def test_reader_gives_levels_resolution_and_white_outside(tmp_path):
    path = tmp_path / "grey.tif"
    write_slide(np.full((600, 1000, 3), 120, np.uint8), path, mpp=2.0, tile=256)
    reader = open_slide(str(path), "auto")
    try:
        assert reader.backend == "openslide"
        assert reader.dimensions == (1000, 600)
        assert reader.level_downsamples[:3] == (1.0, 2.0, 4.0)
        assert reader.resolution() == (2.0, 2.0) == reader.mpp
        assert reader.resolution(0.5) == (0.5, 0.5)
        # The most detailed level that is not coarser than asked.
        assert [reader.best_level(d) for d in (0.5, 1.9, 2.0, 3.9, 100)] == [
            0,
            0,
            1,
            1,
            len(reader.level_downsamples) - 1,
        ]
        # Half inside the slide, half beyond its right edge: grey, then white.
        region = reader.read(900, 0, 0, (200, 10))
        assert region.shape == (10, 200, 3) and region.dtype == np.uint8
        assert (region[:, :100] == 120).all() and (region[:, 100:] == 255).all()
    finally:
        reader.close()


def test_a_finer_slide_is_read_at_the_pyramid_level_of_the_archive(patient, tmp_path):
    patches, _, x, y = patient
    # The same tissue scanned at 2 um per pixel: level 1 of the pyramid is 4 um.
    path = tmp_path / "fine.tif"
    write_slide(lay_out(patches, x, y, scale=2), path, mpp=2.0)
    recorder = Recorder().fit(patches, None)
    result = predict_slide(recorder, path, origin=(2, 2), progress=False)
    assert result.stride == (100.0, 100.0)
    index = tile_index(result, 2 * x, 2 * y)
    found = index >= 0
    assert found.mean() > 0.8
    np.testing.assert_array_equal(
        np.concatenate(recorder.seen_)[index[found]], patches[found]
    )


def test_a_slide_without_resolution_needs_mpp(patient, cheap, tmp_path):
    import tifffile

    path = tmp_path / "nores.tif"
    tifffile.imwrite(
        path, lay_out(*patient[::2][:1], patient[2], patient[3]), tile=(256, 256)
    )
    with pytest.raises(ValueError, match="records no resolution.*pass mpp="):
        predict_slide(cheap, path)
    result = predict_slide(cheap, path, mpp=4.0, origin=(1, 1), progress=False)
    assert len(result.tiles) > 100


def test_tiffslide_serves_where_openslide_cannot(slide, cheap, monkeypatch):
    pytest.importorskip("tiffslide", reason="tiffslide is absent (slides extra)")

    def refuse(path):
        raise openslide.OpenSlideUnsupportedFormatError("unsupported for the test")

    monkeypatch.setattr(openslide, "OpenSlide", refuse)
    with pytest.warns(UserWarning, match="OpenSlide cannot read .*unsupported for"):
        result = predict_slide(cheap, slide, num_workers=0, progress=False)
    assert result.backend == "tiffslide" and len(result.tiles) > 100


def test_a_named_backend_that_cannot_read_says_so(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a slide")
    with pytest.raises(ValueError, match="not a whole-slide image that openslide"):
        open_slide(str(text), "openslide")
    with pytest.raises(ValueError, match="OpenSlide or tiffslide reads"):
        open_slide(str(text), "auto")


def test_without_readers_the_error_names_the_extra(slide, model, monkeypatch):
    monkeypatch.setitem(sys.modules, "openslide", None)
    monkeypatch.setitem(sys.modules, "tiffslide", None)
    with pytest.raises(ImportError, match=r"idc_sklearn\[slides\]"):
        predict_slide(model, slide)
    with pytest.raises(ImportError, match=r"backend='tiffslide' needs the tiffslide"):
        open_slide(str(slide), "tiffslide")

"""predict_slide and ``idc-sklearn slide`` on two real scanner slides.

``../shared/data/slides`` holds two Aperio SVS files that no one here made (its
PROVENANCE.md): ``CMU-1-Small-Region.svs`` (JPEG tiles, one level, 0.499 um per
pixel, with label and macro images) and ``TCGA-CR-7395-01A-01-TS1.svs`` (JPEG 2000
tiles, two levels, no resolution recorded). The tissue areas pinned here were
checked by eye on the thumbnails with the mask drawn over them: the CMU slide's
skin covers about 40% of its 1.64 mm2, the TCGA section about 64% of its frame,
its tinted glass left out.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from conftest import SHARED_DATA, make_patches, tiny_unsplit
from PIL import Image

from idc_sklearn import predict_slide, save_model
from idc_sklearn.cli import main
from idc_sklearn.wholeslide._readers import SlideReader, open_slide

pytest.importorskip(
    "openslide", reason="OpenSlide is absent: pip install 'idc_sklearn[slides]'"
)
pytest.importorskip("shapely", reason="shapely is absent (slides extra)")

SLIDES = SHARED_DATA / "slides"
CMU = SLIDES / "CMU-1-Small-Region.svs"
TCGA = SLIDES / "TCGA-CR-7395-01A-01-TS1.svs"
# The TCGA slide records no resolution: the tests give it 1 um per pixel, so
# that its tiles of 200 um are 200 level-0 pixels and are read from level 1.
TCGA_MPP = 1.0

pytestmark = pytest.mark.skipif(
    not (CMU.is_file() and TCGA.is_file()),
    reason=f"the real scanner slides are absent: {SLIDES} lacks them",
)


@pytest.fixture(scope="module")
def model():
    """A tiny MLBN network on 50x50 patches: the archive's tile, 200 um."""
    X, y, _ = make_patches(n=48, size=50)
    return tiny_unsplit(patch_shape=(50, 50, 3), max_epochs=1).fit(X, y)


@pytest.fixture
def levels_read(monkeypatch):
    """The pyramid levels and region sizes every SlideReader.read is asked for."""
    calls = []
    read = SlideReader.read

    def record(self, x, y, level, size):
        calls.append((level, tuple(size)))
        return read(self, x, y, level, size)

    monkeypatch.setattr(SlideReader, "read", record)
    return calls


def test_the_cmu_slide_gives_its_resolution_and_one_level(model, levels_read):
    reader = open_slide(str(CMU), "auto")
    try:
        assert reader.backend == "openslide"
        assert reader.dimensions == (2220, 2967)
        # The label, macro and thumbnail images are not levels of the pyramid.
        assert reader.level_downsamples == (1.0,)
        assert reader.resolution() == (0.499, 0.499)
    finally:
        reader.close()
    result = predict_slide(model, CMU, progress=False)
    assert result.mpp == (0.499, 0.499)
    assert result.stride == pytest.approx((400.8, 400.8), abs=0.01)
    assert result.probability_map.shape == (7, 5)
    # Its only level, in regions of whole tiles: 401 level-0 pixels a side.
    assert {level for level, _ in levels_read} == {0}
    assert any(size[1] == 401 for _, size in levels_read)


def test_the_tcga_slide_asks_for_mpp_and_reads_the_level_it_needs(model, levels_read):
    with pytest.raises(ValueError, match=r"records no resolution.*pass mpp="):
        predict_slide(model, TCGA, progress=False)
    result = predict_slide(model, TCGA, mpp=TCGA_MPP, progress=False)
    assert result.mpp == (1.0, 1.0) and result.stride == (200.0, 200.0)
    assert result.probability_map.shape == (17, 22)
    # 200 level-0 pixels a tile, 50 for the model: 4 to 1. Level 1 (2.0005 to 1)
    # is the coarsest not coarser; each tile is 100 of its pixels, averaged down.
    assert {level for level, _ in levels_read} == {1}
    assert {size[1] for _, size in levels_read if size[1] <= 100} == {100}
    levels_read.clear()
    # At 2 um per pixel the tile is 100 level-0 pixels, 2 to 1: level 1 would be
    # coarser by 0.03%, so the tiles come from level 0.
    predict_slide(model, TCGA, mpp=2.0, progress=False)
    assert 0 in {level for level, _ in levels_read}


@pytest.mark.parametrize(
    ("slide", "mpp", "tiles", "tissue_mm2"),
    [
        # The skin of CMU-1: 0.66 mm2 of mask, 0.56 inside the 18 tiles that hold
        # a quarter of tissue (Otsu's threshold, the default before, kept 17
        # tiles and 0.47 mm2: it dropped the pale dermis).
        pytest.param(CMU, None, 18, 0.5575, id="cmu"),
        # The TCGA section at 1 um per pixel: 10.1 mm2 of mask, 9.85 inside 264
        # tiles (Otsu's: 257 tiles, 9.38 mm2, holes in the pale stroma).
        pytest.param(TCGA, TCGA_MPP, 264, 9.853, id="tcga"),
    ],
)
def test_tissue_areas_match_the_hand_checked_figures(
    model, slide, mpp, tiles, tissue_mm2
):
    result = predict_slide(model, slide, mpp=mpp, progress=False)
    summary = result.summary()
    assert summary["tiles"] == pytest.approx(tiles, abs=2)
    assert summary["tissue_mm2"] == pytest.approx(tissue_mm2, rel=0.03)
    # The glass is left out: a tile of glass would add a whole tile's area.
    assert summary["tissue_mm2"] <= tiles * result.tile_area_mm2


def _check_qupath_geojson(collection, dimensions, stride):
    """What QuPath's File > Import objects needs, and what the regions should be."""
    import shapely

    json.dumps(collection)  # plain JSON: no tuples, no numpy scalars
    assert collection["type"] == "FeatureCollection"
    assert collection["features"], "no region above the threshold"
    width, height = dimensions
    for feature in collection["features"]:
        assert feature["type"] == "Feature"
        assert feature["geometry"]["type"] in ("Polygon", "MultiPolygon")
        polygon = shapely.geometry.shape(feature["geometry"])
        assert polygon.is_valid, shapely.is_valid_reason(polygon)
        assert polygon.area >= stride[0] * stride[1] * 0.999
        # Level-0 pixels, inside the slide.
        x0, y0, x1, y1 = polygon.bounds
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
        properties = feature["properties"]
        assert properties["objectType"] == "annotation"
        assert properties["classification"]["name"] == "IDC"
    return shapely.union_all(
        [shapely.geometry.shape(f["geometry"]) for f in collection["features"]]
    )


@pytest.mark.parametrize(("slide", "mpp"), [(CMU, None), (TCGA, TCGA_MPP)])
def test_geojson_is_what_qupath_imports(model, slide, mpp, tmp_path):
    result = predict_slide(model, slide, mpp=mpp, progress=False)
    # The median probability: about half the tiles are regions, whatever the model.
    threshold = float(result.tiles["probability"].median())
    path = tmp_path / "regions.geojson"
    collection = result.to_geojson(path, threshold=threshold)
    assert json.loads(path.read_text()) == collection
    regions = _check_qupath_geojson(collection, result.dimensions, result.stride)
    # The regions are the tiles above the threshold, where the tile table has them.
    above = result.tiles[result.tiles["probability"] > threshold]
    sx, sy = result.stride
    assert regions.area == pytest.approx(len(above) * sx * sy, rel=1e-6)
    centres = np.column_stack([above["x"] + sx / 2, above["y"] + sy / 2])
    import shapely
    from scipy import ndimage

    assert shapely.contains_xy(regions, centres[:, 0], centres[:, 1]).all()
    # One region per group of tiles side by side: no slit of a fraction of a pixel
    # between two of them (the stride is 400.8 pixels on the CMU slide).
    _, groups = ndimage.label(result.probability_map > threshold)
    assert len(collection["features"]) == groups


def test_the_command_line_writes_both_slides(model, tmp_path, capsys):
    model_path = tmp_path / "tiny.safetensors"
    save_model(model, model_path)
    out = tmp_path / "maps"
    options = ["-o", str(out), "--quiet", "--device", "cpu", "--workers", "0"]
    # Without --mpp the TCGA slide fails with the error that asks for it, and the
    # CMU slide is still done.
    assert main(["slide", str(model_path), str(CMU), str(TCGA), *options]) == 1
    error = capsys.readouterr().err
    assert f"{TCGA}: ValueError: slide=" in error and "--mpp" in error
    table = pd.read_csv(out / "slides.csv")
    assert table["error"].isna().tolist() == [True, False]
    assert "records no resolution" in table.loc[1, "error"]
    cmu = json.loads((out / CMU.name / "summary.json").read_text())
    assert cmu["mpp"] == 0.499 and cmu["tissue_mm2"] == pytest.approx(0.5575, rel=0.03)
    # Otsu's threshold, asked for, leaves out the pale dermis: 17 tiles, 0.47 mm2.
    otsu = ["--tissue-threshold", "otsu", "-o", str(tmp_path / "otsu")]
    assert main(["slide", str(model_path), str(CMU), *otsu, *options[2:]]) == 0
    summary = json.loads((tmp_path / "otsu" / CMU.name / "summary.json").read_text())
    assert summary["tiles"] < cmu["tiles"]
    assert summary["tissue_mm2"] == pytest.approx(0.4675, rel=0.03)
    # With --mpp, the TCGA slide too; its numbers are predict_slide's.
    assert main(["slide", str(model_path), str(TCGA), "--mpp", "1", *options]) == 0
    written = out / TCGA.name
    summary = json.loads((written / "summary.json").read_text())
    expected = predict_slide(model, TCGA, mpp=TCGA_MPP, progress=False).summary()
    assert summary["tiles"] == expected["tiles"]
    assert summary["tissue_mm2"] == pytest.approx(expected["tissue_mm2"])
    tiles = pd.read_csv(written / "tiles.csv")
    assert len(tiles) == summary["tiles"]
    assert (tiles["x"] >= 0).all() and (tiles["x"] + 200 <= 4443).all()
    regions = json.loads((written / "regions.geojson").read_text())
    if regions["features"]:  # tiles above the command's 0.5, if any
        _check_qupath_geojson(regions, (4443, 3567), (200.0, 200.0))
    assert Image.open(written / "heatmap.png").size[0] > 0


@pytest.fixture
def bad_slides(tmp_path):
    """A missing slide, truncated copies of both slides, and two non-slides
    renamed .svs: a PNG and a text file."""
    png = tmp_path / "photo.svs"
    Image.fromarray(np.full((64, 80, 3), 200, np.uint8)).save(png, format="PNG")
    text = tmp_path / "notes.svs"
    text.write_text("not a slide\n")
    cut = {}
    for slide in (CMU, TCGA):
        data = slide.read_bytes()
        # 90% kept: the levels are there, the last images are not (tiffslide would
        # read it without a word).
        cut[slide] = tmp_path / f"cut-{slide.name}"
        cut[slide].write_bytes(data[: len(data) * 9 // 10])
    return {
        "missing": (tmp_path / "missing.svs", FileNotFoundError, "does not exist"),
        "cut-cmu": (cut[CMU], ValueError, r"is cut short: the file holds 1,745,059"),
        "cut-tcga": (cut[TCGA], ValueError, r"is cut short: the file holds 3,511,632"),
        "png": (png, ValueError, r"PNG image of 80 x 64 pixels, not the \.svs its"),
        "text": (text, ValueError, r"no image format, it begins b'not a sl'"),
    }


@pytest.mark.parametrize("case", ["missing", "cut-cmu", "cut-tcga", "png", "text"])
@pytest.mark.parametrize("backend", ["auto", "tiffslide"])
def test_a_bad_slide_is_refused_with_what_it_is(model, bad_slides, case, backend):
    if backend == "tiffslide":
        pytest.importorskip("tiffslide", reason="tiffslide is absent (slides extra)")
    path, error, match = bad_slides[case]
    with pytest.raises(error, match=match) as info:
        predict_slide(model, path, mpp=TCGA_MPP, backend=backend, progress=False)
    message = str(info.value)
    assert message.startswith(f"slide={str(path)!r}")
    assert "expected" in message


def test_the_command_line_reports_each_bad_slide_in_one_line(
    model, bad_slides, tmp_path, capsys
):
    model_path = tmp_path / "tiny.safetensors"
    save_model(model, model_path)
    paths = [str(bad_slides[case][0]) for case in bad_slides]
    status = main(
        ["slide", str(model_path), *paths, str(CMU), "-o", str(tmp_path / "out")]
        + ["--quiet", "--device", "cpu", "--workers", "0"]
    )
    assert status == 1
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == len(paths)
    for line, path, (_, _, match) in zip(
        errors, paths, bad_slides.values(), strict=True
    ):
        # Each line: the slide, then the exception's type and message.
        head = rf"idc-sklearn slide: error: {re.escape(path)}: \w+: slide="
        assert re.match(head, line), line
        assert re.search(match, line), line
    table = pd.read_csv(tmp_path / "out" / "slides.csv")
    assert table["error"].isna().tolist() == [False] * len(paths) + [True]

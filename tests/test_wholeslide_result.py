"""wholeslide/_result.py: SlideResult, its numbers and the writers of its outputs."""

from __future__ import annotations

import dataclasses
import json
import typing

import numpy as np
import pandas as pd
import pytest
from slide_fixtures import Oracle, tile_index

from idc_sklearn import SlideResult, predict_slide

# The fixtures: patient, slide, cheap.
pytest_plugins = ["slide_fixtures"]

FIELDS = {
    "slide": "str",
    "dimensions": "tuple[int, int]",
    "mpp": "tuple[float, float]",
    "target_mpp": "float",
    "tile_px": "int",
    "stride": "tuple[float, float]",
    "origin": "tuple[float, float]",
    "tiles": "pd.DataFrame",
    "probability_map": "np.ndarray",
    "tissue_map": "np.ndarray",
    "thumbnail": "np.ndarray",
    "thumbnail_downsample": "tuple[float, float]",
    "tissue_threshold": "float",
    "backend": "str",
}


@pytest.fixture
def small():
    """A 2 x 2 grid of 50-pixel tiles at 4 um, three of them tissue, one IDC."""
    tiles = pd.DataFrame(
        {
            "x": [0, 50, 0],
            "y": [0, 0, 50],
            "row": [0, 0, 1],
            "col": [0, 1, 0],
            "tissue": np.array([1.0, 0.5, 0.5], np.float32),
            "probability": np.array([0.9, 0.2, 0.4], np.float32),
        }
    )
    return SlideResult(
        slide="/slides/small.tif",
        dimensions=(100, 100),
        mpp=(4.0, 4.0),
        target_mpp=4.0,
        tile_px=50,
        stride=(50.0, 50.0),
        origin=(0.0, 0.0),
        tiles=tiles,
        probability_map=np.array([[0.9, 0.2], [0.4, np.nan]], np.float32),
        tissue_map=np.array([[1.0, 0.5], [0.5, 0.0]], np.float32),
        thumbnail=np.full((16, 16, 3), 230, np.uint8),
        thumbnail_downsample=(6.25, 6.25),
        tissue_threshold=0.1,
        backend="openslide",
    )


def test_slide_result_is_a_frozen_dataclass_of_declared_fields(small):
    assert dataclasses.is_dataclass(SlideResult)
    fields = {f.name: f.type for f in dataclasses.fields(SlideResult)}
    assert fields == FIELDS
    assert set(typing.get_type_hints(SlideResult)) == set(FIELDS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        small.tiles = None
    assert repr(small) == (
        "SlideResult('small.tif', 3 tissue tiles of a 2 x 2 grid, mean IDC "
        "probability 0.500)"
    )


def test_summary_counts_tissue_and_idc_areas(small):
    # One tile is 200 x 200 um = 0.04 mm²; the tissue inside the tiles, 2 of them.
    summary = small.summary()
    assert summary["tiles"] == 3 and summary["idc_tiles"] == 1
    assert summary["tissue_mm2"] == pytest.approx(0.08)
    assert summary["idc_mm2"] == pytest.approx(0.04)
    assert summary["idc_fraction"] == pytest.approx(0.5)
    assert small.summary(0.3)["idc_tiles"] == 2
    with pytest.raises(ValueError, match=r"threshold must be a number in \[0, 1\]"):
        small.summary(2)


def test_plot_passes_the_arrays_to_the_slide_figure(small, tmp_path):
    figure, (ax,), artists = small.plot(path=tmp_path / "small.png")
    assert (tmp_path / "small.png").is_file()
    assert ax.get_title() == "small.tif: IDC 0.04 of 0.08 mm² of tissue"
    assert artists["proba"].get_array().shape == (2, 2)
    assert artists["regions"] == []


def test_writers_check_their_paths(small, tmp_path):
    small.save_tiles(tmp_path / "tiles.csv")
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "tiles.csv"), small.tiles, check_dtype=False
    )
    small.save_probability_map(tmp_path / "map.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "map.npy"), small.probability_map)
    with pytest.raises(ValueError, match="path=.*ending in .csv"):
        small.save_tiles(tmp_path / "tiles.txt")
    with pytest.raises(ValueError, match=r"path=.*ending in .npy or .tif or .tiff"):
        small.save_probability_map(tmp_path / "map.png")
    with pytest.raises(FileNotFoundError, match="its folder .* does not exist"):
        small.save_tiles(tmp_path / "missing" / "tiles.csv")
    with pytest.raises(TypeError, match="path must be a path; got int"):
        small.save_tiles(3)


def test_geojson_regions_cover_what_a_perfect_model_flags(patient, slide, tmp_path):
    shapely = pytest.importorskip("shapely", reason="shapely is absent (slides extra)")
    patches, labels, x, y = patient
    oracle = Oracle().fit(patches, labels)
    result = predict_slide(oracle, slide, origin=(1, 1), progress=False)
    collection = result.to_geojson(tmp_path / "regions.geojson")
    assert json.loads((tmp_path / "regions.geojson").read_text()) == collection
    assert collection["type"] == "FeatureCollection"
    polygons = []
    for feature in collection["features"]:
        assert feature["type"] == "Feature"
        assert feature["properties"]["objectType"] == "annotation"
        assert feature["properties"]["classification"]["name"] == "IDC"
        assert feature["properties"]["measurements"]["mean_probability"] == 1.0
        polygon = shapely.geometry.shape(feature["geometry"])
        assert polygon.is_valid and polygon.geom_type == "Polygon"
        polygons.append(polygon)
    regions = shapely.union_all(polygons)
    tiles = result.tiles
    truth = np.array(
        [oracle.labels_[p.tobytes()] for p in patches[tile_index(result, x, y) >= 0]]
    )
    assert truth.sum() > 50 and (truth == 0).sum() > 50
    # Every tile the oracle flags is covered; no other tile's centre is inside.
    order = tile_index(result, x, y)
    flagged = tiles.iloc[order[order >= 0][truth == 1]]
    clear = tiles.iloc[order[order >= 0][truth == 0]]
    boxes = shapely.box(flagged.x, flagged.y, flagged.x + 50, flagged.y + 50)
    assert shapely.covers(regions, boxes).all()
    assert not shapely.contains_xy(regions, clear.x + 25, clear.y + 25).any()
    assert sum(
        f["properties"]["measurements"]["tiles"] for f in collection["features"]
    ) == len(flagged)
    summary = result.summary()
    assert summary["idc_tiles"] == len(flagged)
    area = regions.area * 16 / 1e6
    assert summary["idc_mm2"] <= area + 1e-9
    assert 0 < summary["idc_fraction"] < 1


def test_outputs_are_written(slide, cheap, tmp_path):
    pytest.importorskip("shapely", reason="shapely is absent (slides extra)")
    result = predict_slide(cheap, slide, progress=False)
    result.save_tiles(tmp_path / "tiles.csv")
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "tiles.csv"), result.tiles, check_dtype=False
    )
    result.save_probability_map(tmp_path / "map.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "map.npy"), result.probability_map)
    import tifffile

    result.save_probability_map(tmp_path / "map.tif")
    np.testing.assert_array_equal(
        tifffile.imread(tmp_path / "map.tif"), result.probability_map
    )
    figure, axes, artists = result.plot(threshold=0.5, path=tmp_path / "map.png")
    assert (tmp_path / "map.png").stat().st_size > 10_000
    assert artists["proba"].get_array().shape == result.probability_map.shape
    assert artists["regions"]
    with pytest.raises(ValueError, match="path=.*ending in .csv"):
        result.save_tiles(tmp_path / "tiles.txt")

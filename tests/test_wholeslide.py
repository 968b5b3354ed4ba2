"""predict_slide on slides rebuilt from a real patient, read back through OpenSlide."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import IDC_SAMPLE, REPO_ROOT, SHARED_DATA
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import NotFittedError

from idc_sklearn import (
    MLBNInceptionClassifier,
    load_pretrained,
    make_baseline,
    predict_slide,
)
from idc_sklearn.wholeslide import write_slide

openslide = pytest.importorskip(
    "openslide", reason="OpenSlide is absent: pip install 'idc_sklearn[slides]'"
)
shapely = pytest.importorskip("shapely", reason="shapely is absent (slides extra)")

PATIENT = "8863"  # 619 patches of both classes in idc_sample and idc_more
FOLDERS = [IDC_SAMPLE, SHARED_DATA / "idc_more"]


@pytest.fixture(scope="module")
def patient():
    """The patient's whole 50x50 patches, with their archive coordinates."""
    if not all(folder.is_dir() for folder in FOLDERS):
        pytest.skip(f"the real IDC patches are absent: {FOLDERS} do not all exist")
    from idc_sklearn import load_idc

    idc = load_idc(FOLDERS, patients=[PATIENT], progress=False)
    whole = ((idc.frame["height"] == 50) & (idc.frame["width"] == 50)).to_numpy()
    frame = idc.frame[whole].drop_duplicates(["x", "y"])
    keep = frame.index.to_numpy()
    return (
        idc.data[keep],
        idc.target[keep],
        frame["x"].to_numpy(),
        frame["y"].to_numpy(),
    )


def lay_out(patches, x, y, scale=1):
    """The patches at their archive coordinates (x, y) on white, ``scale`` x larger."""
    height, width = y.max() + 50 + 37, x.max() + 50 + 23
    image = np.full((height, width, 3), 255, np.uint8)
    for patch, left, top in zip(patches, x, y, strict=True):
        image[top : top + 50, left : left + 50] = patch
    return image.repeat(scale, 0).repeat(scale, 1) if scale > 1 else image


@pytest.fixture(scope="module")
def slide(patient, tmp_path_factory):
    path = tmp_path_factory.mktemp("slides") / f"{PATIENT}.tif"
    write_slide(lay_out(patient[0], patient[2], patient[3]), path, mpp=4.0)
    return path


@pytest.fixture(scope="module")
def model():
    return load_pretrained("mlbn-small", device="cpu")


@pytest.fixture(scope="module")
def cheap(patient):
    """A handcrafted baseline (a Pipeline) fitted on the patient: fast to predict."""
    return make_baseline("color-logreg").fit(patient[0], patient[1])


class Oracle(ClassifierMixin, BaseEstimator):
    """A perfect model: the label of each training patch, 0 for any other."""

    patch_shape = (50, 50, 3)

    def fit(self, X, y):
        self.labels_ = {p.tobytes(): int(t) for p, t in zip(X, y, strict=True)}
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X):
        idc = np.array([self.labels_.get(p.tobytes(), 0) for p in X], float)
        return np.column_stack([1 - idc, idc])


class Recorder(ClassifierMixin, BaseEstimator):
    """Keeps every batch of tiles it is asked to predict."""

    patch_shape = (50, 50, 3)

    def fit(self, X, y):
        self.classes_, self.seen_ = np.array([0, 1]), []
        return self

    def predict_proba(self, X):
        self.seen_.append(np.array(X))
        return np.full((len(X), 2), 0.5)


def _tile_index(result, x, y):
    """Each archive patch's row of the tile table (-1 where it is not a tile)."""
    rows = {
        (a, b): i
        for i, (a, b) in enumerate(zip(result.tiles.x, result.tiles.y, strict=True))
    }
    return np.array([rows.get((a, b), -1) for a, b in zip(x, y, strict=True)])


def test_probabilities_equal_predict_proba_on_the_same_patches(patient, slide, model):
    patches, _, x, y = patient
    result = predict_slide(model, slide, origin=(1, 1), progress=False)
    assert result.backend == "openslide"
    assert result.mpp == (4.0, 4.0) and result.stride == (50.0, 50.0)
    index = _tile_index(result, x, y)
    found = index >= 0
    # Most patches are tissue; whitish ones fall under min_tissue.
    assert found.mean() > 0.8
    expected = model.predict_proba(patches[found])[:, 1]
    np.testing.assert_allclose(
        result.tiles["probability"].to_numpy()[index[found]], expected, atol=1e-6
    )
    grid = result.probability_map[result.tiles["row"], result.tiles["col"]]
    np.testing.assert_array_equal(grid, result.tiles["probability"])


def test_background_tiles_are_never_predicted(patient, slide, cheap):
    _, _, x, y = patient
    result = predict_slide(cheap, slide, origin=(1, 1), progress=False)
    laid = set(zip(x.tolist(), y.tolist(), strict=True))
    assert (
        set(zip(result.tiles.x.tolist(), result.tiles.y.tolist(), strict=True)) <= laid
    )
    assert np.isnan(result.probability_map).sum() == (
        result.probability_map.size - len(result.tiles)
    )
    assert (result.tiles["tissue"] >= 0.25).all()


def test_a_finer_slide_is_read_at_the_pyramid_level_of_the_archive(patient, tmp_path):
    patches, _, x, y = patient
    # The same tissue scanned at 2 um per pixel: level 1 of the pyramid is 4 um.
    path = tmp_path / "fine.tif"
    write_slide(lay_out(patches, x, y, scale=2), path, mpp=2.0)
    recorder = Recorder().fit(patches, None)
    result = predict_slide(recorder, path, origin=(2, 2), progress=False)
    assert result.stride == (100.0, 100.0)
    index = _tile_index(result, 2 * x, 2 * y)
    found = index >= 0
    assert found.mean() > 0.8
    np.testing.assert_array_equal(
        np.concatenate(recorder.seen_)[index[found]], patches[found]
    )


def test_a_slide_between_levels_is_resized_to_the_target(patient, tmp_path):
    patches, _, x, y = patient
    # 3x finer: read at level 1 (2x) and resized 75 -> 50 pixels.
    path = tmp_path / "third.tif"
    write_slide(lay_out(patches[:120], x[:120], y[:120], scale=3), path, mpp=4 / 3)
    recorder = Recorder().fit(patches, None)
    result = predict_slide(recorder, path, origin=(3, 3), progress=False)
    assert result.stride == (150.0, 150.0)
    index = _tile_index(result, 3 * x[:120], 3 * y[:120])
    found = index >= 0
    assert found.sum() > 60
    seen = np.concatenate(recorder.seen_)[index[found]].astype(float)
    original = patches[:120][found].astype(float)
    # The same patches, smoothed by the pyramid's and the resize's averaging.
    assert seen.shape == original.shape
    assert np.abs(seen - original).mean() < 12
    assert np.corrcoef(seen.ravel(), original.ravel())[0, 1] > 0.9


def test_tiffslide_and_workers_give_the_same_map(slide, cheap):
    reference = predict_slide(cheap, slide, num_workers=0, progress=False)
    workers = predict_slide(cheap, slide, num_workers=2, batch_size=64, progress=False)
    pd.testing.assert_frame_equal(reference.tiles, workers.tiles)
    pytest.importorskip("tiffslide", reason="tiffslide is absent (slides extra)")
    tiff = predict_slide(cheap, slide, backend="tiffslide", progress=False)
    assert tiff.backend == "tiffslide"
    np.testing.assert_array_equal(reference.probability_map, tiff.probability_map)


def test_geojson_regions_cover_what_a_perfect_model_flags(patient, slide, tmp_path):
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
        [oracle.labels_[p.tobytes()] for p in patches[_tile_index(result, x, y) >= 0]]
    )
    assert truth.sum() > 50 and (truth == 0).sum() > 50
    # Every tile the oracle flags is covered; no other tile's centre is inside.
    order = _tile_index(result, x, y)
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


# --- bad inputs ----------------------------------------------------------------------


def _blank(path, mpp=4.0):
    write_slide(np.full((300, 400, 3), 255, np.uint8), path, mpp=mpp)
    return path


def test_bad_inputs_name_the_argument(slide, model, cheap, tmp_path):
    with pytest.raises(FileNotFoundError, match="slide=.*does not exist"):
        predict_slide(model, tmp_path / "missing.svs")
    text = tmp_path / "notes.txt"
    text.write_text("not a slide")
    with pytest.raises(ValueError, match="slide=.*not a whole-slide image"):
        predict_slide(model, text)
    with pytest.raises(ValueError, match="slide=.*no tissue found.*min_tissue"):
        predict_slide(cheap, _blank(tmp_path / "blank.tif"), progress=False)
    with pytest.raises(ValueError, match="tile_size=32: the estimator takes 50x50"):
        predict_slide(model, slide, tile_size=32)
    with pytest.raises(NotFittedError, match="estimator: .*not fitted"):
        predict_slide(MLBNInceptionClassifier(), slide)
    with pytest.raises(TypeError, match="estimator must be a fitted classifier"):
        predict_slide(object(), slide)
    for kwargs, match in (
        ({"mpp": -1}, "mpp must be None or a positive number"),
        ({"target_mpp": 0}, "target_mpp must be a positive number"),
        ({"min_tissue": 1.5}, r"min_tissue must be a number in \[0, 1\]"),
        ({"tissue_threshold": "li"}, "tissue_threshold must be 'otsu'"),
        ({"origin": (1,)}, "origin must be"),
        ({"batch_size": 0}, "batch_size must be an int >= 1"),
        ({"num_workers": -1}, "num_workers must be an int >= 0 or 'auto'"),
        ({"backend": "bioformats"}, "backend must be one of"),
    ):
        with pytest.raises(ValueError, match=match):
            predict_slide(cheap, slide, **kwargs)


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


def test_without_readers_the_error_names_the_extra(slide, model, monkeypatch):
    monkeypatch.setitem(sys.modules, "openslide", None)
    monkeypatch.setitem(sys.modules, "tiffslide", None)
    with pytest.raises(ImportError, match=r"idc_sklearn\[slides\]"):
        predict_slide(model, slide)


# --- memory ---------------------------------------------------------------------


def test_peak_memory_does_not_grow_with_the_slide(tmp_path):
    """A 100,000 x 100,000 slide (30 GB of RGB) costs what a small one does."""
    bench = REPO_ROOT / "benchmarks" / "bench_wholeslide.py"
    runs = {}
    for side in (4_096, 100_000):
        out = subprocess.run(
            [
                sys.executable,
                str(bench),
                "--memory-child",
                str(side),
                str(tmp_path / f"{side}.tif"),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        runs[side] = json.loads(out.stdout.splitlines()[-1])
        # The same 1,600 x 1,600 pixels of tissue at 0.25 um: 2 x 2 tiles at 4 um.
        assert runs[side]["tiles"] == 4
    assert runs[100_000]["grid_cells"] == 125 * 125
    growth = {side: run["growth_mb"] for side, run in runs.items()}
    assert growth[100_000] < growth[4_096] + 50, growth
    assert growth[100_000] < 150, growth


# --- the command line -----------------------------------------------------------


def test_slide_command_goes_on_past_a_bad_slide(slide, tmp_path, capsys):
    from idc_sklearn.cli import main

    missing, text = tmp_path / "missing.svs", tmp_path / "notes.txt"
    text.write_text("not a slide")
    out = tmp_path / "maps"
    status = main(
        ["slide", "mlbn-small", str(missing), str(slide), str(text), "-o", str(out)]
        + ["--quiet", "--device", "cpu", "--workers", "0"]
    )
    assert status == 1
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 2 and all(
        e.startswith("idc-sklearn slide: error:") for e in errors
    )
    assert "does not exist" in errors[0] and "not a whole-slide image" in errors[1]
    written = out / slide.name
    for name in ("heatmap.png", "probability.tif", "tiles.csv", "regions.geojson"):
        assert (written / name).stat().st_size > 0
    summary = json.loads((written / "summary.json").read_text())
    table = pd.read_csv(out / "slides.csv")
    assert list(table["slide"]) == [str(missing), str(slide), str(text)]
    assert table["error"].isna().tolist() == [False, True, False]
    assert (
        table.loc[1, "tiles"]
        == summary["tiles"]
        == len(pd.read_csv(written / "tiles.csv"))
    )
    assert 0 <= summary["idc_fraction"] <= 1


def test_slide_command_checks_its_options(tmp_path, capsys):
    from idc_sklearn.cli import main

    assert (
        main(["slide", "mlbn-small", "a.svs", "-o", str(tmp_path), "--threshold", "2"])
        == 2
    )
    assert "--threshold 2.0: expected a number in [0, 1]" in capsys.readouterr().err
    file = tmp_path / "file"
    file.write_text("")
    assert main(["slide", "mlbn-small", "a.svs", "-o", str(file)]) == 1
    assert "is a file; expected a folder" in capsys.readouterr().err

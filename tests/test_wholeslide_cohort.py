"""wholeslide/_cohort.py: predict_slides here and on a two-process Dask cluster.

Three small slides, synthetic patients laid out at their grid coordinates and
written as pyramidal TIFFs, and a tiny network. The cluster (a ``LocalCluster`` of
two worker processes, one thread each) starts once for the module, most of its
few seconds the workers importing torch, and is closed at the end. The local runs
compute with one torch thread, as each worker does, so that the probabilities may
be compared exactly.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import TINY, make_patches, torch_threads
from slide_fixtures import lay_out, needs_slides
from worker_probes import CountedClassifier, class_name, loads, plugin_names

from idc_sklearn import predict_slide, predict_slides
from idc_sklearn.cli import main

OUTPUTS = [
    "heatmap.png",
    "probability.tif",
    "tiles.csv",
    "regions.geojson",
    "summary.json",
]


@pytest.fixture(scope="module")
def client(dask_client):
    """conftest's cluster of two worker processes, one thread each."""
    return dask_client


@pytest.fixture(scope="module")
def model():
    X, y, groups = make_patches(n=64)
    return CountedClassifier(**{**TINY, "train_split": None}).fit(X, y)


@pytest.fixture(scope="module")
def slides(tmp_path_factory):
    """Three synthetic patients as slides at 4 um per pixel, and a broken slide."""
    needs_slides()
    from idc_sklearn import make_idc_patches, write_slide

    idc = make_idc_patches(n_patients=3, patches_per_patient=30, random_state=0)
    folder = tmp_path_factory.mktemp("cohort")
    paths = []
    for patient in np.unique(idc.groups):
        mine = idc.groups == patient
        frame = idc.frame[mine]
        path = folder / f"{patient}.tif"
        image = lay_out(idc.data[mine], frame["x"].to_numpy(), frame["y"].to_numpy())
        write_slide(image, path, mpp=4.0)
        paths.append(path)
    broken = folder / "broken.tif"
    broken.write_bytes(paths[0].read_bytes()[:2000])  # a copy cut short
    return paths, broken


def _run(model, slides, out, **kwargs):
    with torch_threads(1):
        return predict_slides(model, slides, out, progress=False, **kwargs)


@pytest.fixture(scope="module")
def local(model, slides, tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    return _run(model, slides[0], out), out


@pytest.fixture(scope="module")
def on_cluster(model, slides, client, tmp_path_factory):
    """The slides and the broken one on the cluster; the model's loads per worker."""
    out = tmp_path_factory.mktemp("cluster")
    before = client.run(loads)
    table = _run(model, [*slides[0], slides[1]], out, client=client)
    after = client.run(loads)
    return table, out, {w: after[w] - before[w] for w in after}


def _tiles(out, slide):
    """A slide's tiles.csv, its probabilities as the float32 they were written from."""
    tiles = pd.read_csv(out / slide.name / "tiles.csv")
    return tiles.astype({"probability": np.float32})


def test_the_cluster_gives_what_each_slide_gives_alone(
    model, slides, local, on_cluster, client
):
    table, out, _ = on_cluster
    for slide in slides[0]:
        with torch_threads(1):
            alone = predict_slide(model, slide, progress=False).tiles
        for folder in (out, local[1]):
            tiles = _tiles(folder, slide)
            np.testing.assert_array_equal(tiles[["x", "y"]], alone[["x", "y"]])
            np.testing.assert_array_equal(tiles["probability"], alone["probability"])
        # The comparison has teeth: the tiles' probabilities differ.
        assert alone["probability"].nunique() > len(alone) // 2
    # The tasks ran on the cluster's workers.
    done = table[table["status"] == "done"]
    assert set(done["worker"]) <= set(client.scheduler_info()["workers"])
    assert set(local[0]["worker"]) == {"local"}
    figures = ["name", "tiles", "grid_tiles", "idc_tiles", "tissue_mm2", "idc_fraction"]
    pd.testing.assert_frame_equal(
        done[figures].reset_index(drop=True), local[0][figures]
    )


def test_the_model_is_sent_once_to_each_worker(on_cluster, client, model):
    table, _, loaded = on_cluster
    assert len(table) > len(loaded) == 2  # more slides than workers
    assert loaded == dict.fromkeys(loaded, 1)
    # The worker plugin that held it is gone.
    assert not any(
        name.startswith("idc-sklearn-model")
        for names in client.run(plugin_names).values()
        for name in names
    )
    # The count has teeth: the model sent with each of two tasks to one worker is
    # unpickled there twice.
    worker = next(iter(loaded))
    before = client.run(loads)[worker]
    for _ in range(2):
        assert client.submit(class_name, model, workers=[worker], pure=False).result()
    assert client.run(loads)[worker] - before == 2


def test_a_broken_slide_is_reported_and_the_others_go_on(on_cluster, slides):
    table, out, _ = on_cluster
    assert list(table["slide"]) == [str(s) for s in [*slides[0], slides[1]]]
    assert list(table["status"]) == ["done"] * 3 + ["failed"]
    # Its error as the reader raised it (the truncated file's clear message is
    # predict_slide's concern), and no figures.
    failed = table.iloc[-1]
    assert failed["error"].split(": ")[0].endswith("Error")
    assert failed[["tiles", "idc_fraction", "tissue_mm2"]].isna().all()
    assert not (out / slides[1].name / "manifest.json").exists()
    for slide in slides[0]:
        assert all((out / slide.name / name).stat().st_size for name in OUTPUTS)


def test_slides_csv_sums_the_cohort(on_cluster, slides):
    table, out, _ = on_cluster
    written = pd.read_csv(out / "slides.csv")
    assert list(written.columns[:5]) == ["slide", "name", "status", "skipped", "error"]
    assert list(written.columns[-2:]) == ["seconds", "worker"]
    pd.testing.assert_frame_equal(
        written.drop(columns="error"), table.drop(columns="error"), check_dtype=False
    )
    assert written["error"].isna().tolist() == [True] * 3 + [False]
    assert not written["skipped"].any()
    for row, slide in zip(written.itertuples(), slides[0], strict=False):
        summary = json.loads((out / slide.name / "summary.json").read_text())
        assert row.name == slide.name
        for key in ("tiles", "idc_tiles", "tissue_mm2", "idc_mm2", "idc_fraction"):
            assert getattr(row, key) == pytest.approx(summary[key]), key
        assert row.tiles == len(_tiles(out, slide)) < row.grid_tiles
        assert row.seconds > 0


def _mtimes(out, slide):
    return {name: (out / slide.name / name).stat().st_mtime_ns for name in OUTPUTS}


def test_a_rerun_skips_what_is_done_and_redoes_the_rest(
    model, slides, client, tmp_path
):
    good = slides[0]
    first = _run(model, good, tmp_path, client=client)
    assert not first["skipped"].any()
    before = {slide: _mtimes(tmp_path, slide) for slide in good}

    loaded = client.run(loads)
    again = _run(model, good, tmp_path, client=client)
    assert again["skipped"].all() and (again["status"] == "done").all()
    assert client.run(loads) == loaded  # nothing to do: the model was not sent
    assert {slide: _mtimes(tmp_path, slide) for slide in good} == before
    pd.testing.assert_frame_equal(
        again.drop(columns="skipped"), first.drop(columns="skipped")
    )

    # An output changed since (one line dropped), and a slide interrupted before
    # its manifest was written: both are redone, the third is not.
    tiles = tmp_path / good[0].name / "tiles.csv"
    original = tiles.read_text()
    tiles.write_text("".join(original.splitlines(keepends=True)[:-1]))
    (tmp_path / good[1].name / "manifest.json").unlink()
    third = _run(model, good, tmp_path, client=client)
    assert third["skipped"].tolist() == [False, False, True]
    assert tiles.read_text() == original
    assert _mtimes(tmp_path, good[2]) == before[good[2]]

    # Other settings, or resume=False: every slide is redone.
    assert not _run(model, good, tmp_path, threshold=0.6)["skipped"].any()
    assert not _run(model, good, tmp_path, threshold=0.6, resume=False)["skipped"].any()
    assert _run(model, good, tmp_path, threshold=0.6)["skipped"].all()


def test_the_default_threshold_is_the_models_own(model, local, slides, tmp_path):
    """A model wrapped in a fixed threshold (as load_pretrained returns the models
    chosen by cross-validation) is summed at it; any other at 0.5."""
    from sklearn.frozen import FrozenEstimator
    from sklearn.model_selection import FixedThresholdClassifier

    plain, out = local
    assert (plain["threshold"] == 0.5).all()
    tiles = pd.read_csv(out / slides[0][0].name / "tiles.csv")
    threshold = float(np.quantile(tiles["probability"], 0.3))
    wrapped = FixedThresholdClassifier(FrozenEstimator(model), threshold=threshold)
    wrapped.fit(*make_patches(n=8)[:2])
    table = _run(wrapped, slides[0][:1], tmp_path)
    assert table.loc[0, "threshold"] == threshold
    assert table.loc[0, "idc_tiles"] == int((tiles["probability"] > threshold).sum())
    assert table.loc[0, "idc_tiles"] != plain.loc[0, "idc_tiles"]
    # An explicit threshold still wins.
    again = _run(wrapped, slides[0][:1], tmp_path / "again", threshold=0.5)
    assert again.loc[0, "idc_tiles"] == plain.loc[0, "idc_tiles"]


def test_a_per_patient_model_adapts_each_slide_to_its_own_share(
    model, local, slides, tmp_path
):
    """A PatientPriorClassifier takes each slide as one patient: its tiles'
    probabilities at the slide's own IDC share, summed at 0.5."""
    from sklearn.frozen import FrozenEstimator
    from sklearn.model_selection import FixedThresholdClassifier

    from idc_sklearn import PatientPriorClassifier, adapt_to_patients

    _, out = local
    inner = FixedThresholdClassifier(FrozenEstimator(model), threshold=0.7)
    adapted = PatientPriorClassifier(inner, strength=5).fit(*make_patches(n=8)[:2])
    table = _run(adapted, slides[0][:2], tmp_path)
    assert (table["threshold"] == 0.5).all()  # not the inner model's 0.7
    for slide in slides[0][:2]:
        plain = _tiles(out, slide)["probability"].to_numpy().astype(float)
        expected = adapt_to_patients(plain, np.zeros(len(plain)), strength=5)
        mine = _tiles(tmp_path, slide)["probability"]
        np.testing.assert_allclose(mine, expected, atol=1e-6)
        assert not np.allclose(mine, plain, atol=1e-3)
        row = table.set_index("slide").loc[str(slide)]
        assert row["idc_tiles"] == int((mine > 0.5).sum())


def test_a_neighbour_weight_mixes_each_tile_with_its_neighbours_on_the_grid(
    model, local, slides, tmp_path
):
    """With a neighbour_weight, each tile's probability is first mixed with its
    neighbours' on the slide's tile grid (adjacent tiles ``stride`` apart), then
    adapted to the slide's own share."""
    from sklearn.base import clone
    from sklearn.frozen import FrozenEstimator

    from idc_sklearn import PatientPriorClassifier, adapt_to_patients, smooth_neighbours

    _, out = local
    # A stride other than the archive's 50: the grid is laid in the model's units.
    context = PatientPriorClassifier(
        FrozenEstimator(model), strength=300, neighbour_weight=0.75, stride=7.0
    ).fit(*make_patches(n=8)[:2])
    slide = slides[0][0]
    _run(context, [slide], tmp_path)
    plain = _tiles(out, slide)
    proba = plain["probability"].to_numpy().astype(float)
    grid = plain[["col", "row"]].to_numpy()
    one_slide = np.zeros(len(proba))
    smoothed = smooth_neighbours(proba, grid, weight=0.75, stride=1)
    expected = adapt_to_patients(smoothed, one_slide, strength=300)
    mine = _tiles(tmp_path, slide)["probability"]
    np.testing.assert_allclose(mine, expected, atol=1e-6)
    alone = adapt_to_patients(proba, one_slide, strength=300)
    assert not np.allclose(mine, alone, atol=1e-3)  # the neighbours counted
    # A rerun into the same folder with the same model skips the slide; with
    # another weight (a PatientPriorClassifier too) it is redone, not reused.
    assert _run(context, [slide], tmp_path)["skipped"].all()
    # numpy numbers, as a search's best_params_ gives them, are the same
    # settings (and JSON takes them).
    same = clone(context).set_params(
        strength=np.int64(300), neighbour_weight=np.float32(0.75)
    )
    assert _run(same.fit(*make_patches(n=8)[:2]), [slide], tmp_path)["skipped"].all()
    other = clone(context).set_params(neighbour_weight=0.25)
    other.fit(*make_patches(n=8)[:2])
    assert not _run(other, [slide], tmp_path)["skipped"].any()
    smoothed = smooth_neighbours(proba, grid, weight=0.25, stride=1)
    np.testing.assert_allclose(
        _tiles(tmp_path, slide)["probability"],
        adapt_to_patients(smoothed, one_slide, strength=300),
        atol=1e-6,
    )


def test_the_command_line_runs_on_the_scheduler(slides, client, tmp_path, capsys):
    out = tmp_path / "maps"
    argv = ["slide", "mlbn-small", *map(str, slides[0]), str(slides[1])]
    argv += [
        "-o",
        str(out),
        "--device",
        "cpu",
        "--scheduler",
        client.cluster.scheduler_address,
    ]
    assert main([*argv, "--quiet"]) == 1  # the broken slide
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 1 and "broken.tif" in errors[0]
    table = pd.read_csv(out / "slides.csv")
    assert list(table["status"]) == ["done"] * 3 + ["failed"]
    assert set(table["worker"].dropna()) <= set(client.scheduler_info()["workers"])
    with torch_threads(1):
        from idc_sklearn import load_pretrained

        alone = predict_slide(
            load_pretrained("mlbn-small", device="cpu"), slides[0][0], progress=False
        ).tiles
    np.testing.assert_array_equal(
        _tiles(out, slides[0][0])["probability"], alone["probability"]
    )
    # Run again: the slides done are skipped, and said so.
    assert main(argv) == 1
    said = capsys.readouterr().err
    assert said.count("done before, its files checked") == 3


# -- bad arguments, each refused before any slide is read --


def test_bad_arguments_are_refused_before_anything_is_written(model, slides, tmp_path):
    # The messages of the others are in test_bad_inputs.py.
    out, good = tmp_path / "out", slides[0]
    with pytest.raises(TypeError, match=r"slides\[1\] must be the path of a slide"):
        predict_slides(model, [good[0], 3], out)
    with pytest.raises(ValueError, match="min_tissue must be a number in"):
        predict_slides(model, good, out, min_tissue=2)
    with pytest.raises(ValueError, match="threshold must be a number in"):
        predict_slides(model, good, out, threshold=-1)
    with pytest.raises(FileNotFoundError, match="output_dir="):
        predict_slides(model, good, tmp_path / "a" / "b")
    assert not out.exists()


def test_a_closed_client_is_refused(model, slides, tmp_path, client, distributed):
    with distributed.Client(client.cluster.scheduler_address) as closed:
        pass
    with pytest.raises(ValueError, match="client is closed"):
        predict_slides(model, slides[0], tmp_path, client=closed)

"""wholeslide/_tiling.py: the grid, tiles read and resized, batches streamed."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import REPO_ROOT
from slide_fixtures import Recorder, lay_out, needs_slides, tile_index

from idc_sklearn import predict_slide, write_slide
from idc_sklearn.wholeslide._tiling import TileGrid, auto_workers, level_size

# The fixtures: patient, slide, cheap.
pytest_plugins = ["slide_fixtures"]


def test_the_grid_holds_whole_tiles_from_its_origin():
    grid = TileGrid.over((1000, 620), (1, 1), (50.0, 50.0))
    assert grid.shape == (12, 19)
    xs, ys = grid.corners(np.array([0, 11]), np.array([0, 18]))
    np.testing.assert_array_equal(xs, [1, 901])
    np.testing.assert_array_equal(ys, [1, 551])
    assert TileGrid.over((40, 40), (0, 0), (50.0, 50.0)).shape == (0, 0)


def test_a_tile_spans_whole_pixels_of_its_level():
    assert level_size(100.0, 2.0) == 50  # exact
    assert level_size(150.0, 2.0) == 75
    assert level_size(100.0, 3.0) == 34  # rounded up: no tile pixel left unread
    assert level_size(1.0, 4.0) == 1


def test_auto_workers_none_on_the_cpu():
    assert auto_workers("cpu") == 0
    assert 1 <= auto_workers("cuda:0") <= 4


def test_a_slide_between_levels_is_resized_to_the_target(patient, tmp_path):
    needs_slides()
    patches, _, x, y = patient
    # 3x finer: read at level 1 (2x) and resized 75 -> 50 pixels.
    path = tmp_path / "third.tif"
    write_slide(lay_out(patches[:120], x[:120], y[:120], scale=3), path, mpp=4 / 3)
    recorder = Recorder().fit(patches, None)
    result = predict_slide(recorder, path, origin=(3, 3), progress=False)
    assert result.stride == (150.0, 150.0)
    index = tile_index(result, 3 * x[:120], 3 * y[:120])
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


def test_peak_memory_does_not_grow_with_the_slide(tmp_path):
    """A 100,000 x 100,000 slide (30 GB of RGB) costs what a small one does."""
    needs_slides()
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

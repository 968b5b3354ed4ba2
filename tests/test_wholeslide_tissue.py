"""wholeslide/_tissue.py: the saturation mask of a thumbnail, each tile's share."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from conftest import REPO_ROOT, SHARED_DATA
from slide_fixtures import needs_slides

from idc_sklearn import predict_slide
from idc_sklearn.wholeslide._tiling import TileGrid
from idc_sklearn.wholeslide._tissue import saturation, tile_fractions, tissue_mask

# The fixtures: patient, slide, cheap.
pytest_plugins = ["slide_fixtures"]

TRAINVAL = SHARED_DATA / "idc_trainval"
# Three patients of scripts/experiments/tissue_coverage.py's draw whose fat and
# pale stroma Otsu's threshold dropped most (docs/wholeslide.md has all 24).
COVERAGE_PATIENTS = ["10254", "10258", "12911"]


def test_saturation_is_zero_on_grey_white_and_black():
    thumb = np.array([[[255, 255, 255], [128, 128, 128], [0, 0, 0], [200, 100, 150]]])
    np.testing.assert_allclose(saturation(thumb), [[0, 0, 0, 0.5]])


def test_otsu_splits_stain_from_glass_and_never_falls_below_the_floor():
    pink = np.array([220, 120, 180], np.uint8)
    thumb = np.full((20, 20, 3), 245, np.uint8)
    thumb[5:15, 5:15] = pink
    mask, threshold = tissue_mask(thumb, "otsu")
    assert 0.05 <= threshold < saturation(pink[None, None])[0, 0]
    assert mask.sum() == 100 and mask[5:15, 5:15].all()
    # A blank slide: no contrast to split, no tissue.
    mask, threshold = tissue_mask(np.full((8, 8, 3), 250, np.uint8), "otsu")
    assert threshold == 1.0 and not mask.any()
    # Faint noise on glass: Otsu's split would call half of it tissue; the floor not.
    rng = np.random.default_rng(0)
    noise = (245 - rng.integers(0, 6, (30, 30, 3))).astype(np.uint8)
    mask, threshold = tissue_mask(noise, "otsu")
    assert threshold == 0.05 and not mask.any()
    # A threshold given is kept as given: the pink (saturation 0.45) is under 0.9.
    mask, threshold = tissue_mask(thumb, 0.9)
    assert threshold == 0.9 and not mask.any()


def test_the_default_threshold_keeps_pale_tissue_and_leaves_glass_out():
    # Glass of the real slides (saturation under 0.035), fat (pink membranes
    # between white cells, about 0.06 on a thumbnail), and stroma.
    glass, fat, stroma = (236, 238, 243), (240, 224, 232), (220, 150, 190)
    thumb = np.array([[glass, fat, stroma]], np.uint8)
    mask, threshold = tissue_mask(thumb)
    assert threshold == 0.05 and mask.tolist() == [[False, True, True]]
    # Otsu's split of the same slide falls between fat and stroma.
    assert tissue_mask(thumb, "otsu")[0].tolist() == [[False, False, True]]


def test_tile_fractions_count_the_mask_under_each_tile():
    rng = np.random.default_rng(0)
    mask = rng.random((40, 60)) < 0.3
    # Tiles of 40 level-0 pixels from (20, 10), the mask at 4 level-0 pixels each.
    grid = TileGrid.over((240, 160), (20, 10), (40.0, 40.0))
    assert grid.shape == (3, 5)
    fractions = tile_fractions(mask, (4.0, 4.0), grid)
    for row in range(3):
        for col in range(5):
            top, left = (10 + 40 * row) // 4, (20 + 40 * col) // 4
            expected = mask[top : top + 10, left : left + 10].mean()
            assert fractions[row, col] == pytest.approx(expected)


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


@pytest.fixture(scope="module")
def tissue_coverage():
    """scripts/experiments/tissue_coverage.py and the patches of its patients."""
    needs_slides()
    if not TRAINVAL.is_dir():
        pytest.skip(f"the real IDC patches are absent: {TRAINVAL} does not exist")
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(REPO_ROOT / "scripts" / "experiments"))
        module = importlib.import_module("tissue_coverage")
    data, frame = module.load_patients(TRAINVAL, cache=None, patients=COVERAGE_PATIENTS)
    return module, data, frame


def test_the_default_mask_keeps_the_archive_tissue(tissue_coverage):
    module, data, frame = tissue_coverage
    table = module.measure(data, frame, COVERAGE_PATIENTS).set_index("patient")
    assert table["patches"].tolist() == [175, 150, 215]
    assert table["idc_patches"].tolist() == [12, 58, 32]
    # Pinned: 155, 138 and 203 patches of their slides are tiles; give or take
    # a patch for the resampling of another Pillow.
    np.testing.assert_allclose(table["covered"], [155, 138, 203], atol=2)
    np.testing.assert_allclose(table["idc_covered"], [11, 58, 32], atol=1)
    assert (table["background_tiles"] == 0).all()
    total = module.totals(table)
    assert total["idc_share"] >= 0.98 and total["share"] >= 0.9
    # Otsu's threshold, the default before, left out 44% of these patches.
    before = module.totals(
        module.measure(data, frame, COVERAGE_PATIENTS, tissue_threshold="otsu")
    )
    assert before["share"] < 0.6 and before["idc_share"] < total["idc_share"]

"""wholeslide/_pipeline.py: predict_slide, from its arguments to its result."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from slide_fixtures import tile_index

from idc_sklearn import MLBNInceptionClassifier, predict_slide, write_slide

# The fixtures: patient, slide, model, cheap.
pytest_plugins = ["slide_fixtures"]

pytest.importorskip(
    "openslide", reason="OpenSlide is absent: pip install 'idc_sklearn[slides]'"
)
pytest.importorskip("tifffile", reason="tifffile is absent (slides extra)")


def test_probabilities_equal_predict_proba_on_the_same_patches(patient, slide, model):
    patches, _, x, y = patient
    result = predict_slide(model, slide, origin=(1, 1), progress=False)
    assert result.backend == "openslide"
    assert result.mpp == (4.0, 4.0) and result.stride == (50.0, 50.0)
    index = tile_index(result, x, y)
    found = index >= 0
    # Nearly every patch is tissue (98%: 957 of 975); Otsu's threshold, the
    # default before, kept 82%. The few left out are nearly white.
    assert found.mean() > 0.95
    expected = model.predict_proba(patches[found])[:, 1]
    np.testing.assert_allclose(
        result.tiles["probability"].to_numpy()[index[found]], expected, atol=1e-6
    )
    grid = result.probability_map[result.tiles["row"], result.tiles["col"]]
    np.testing.assert_array_equal(grid, result.tiles["probability"])


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
    with pytest.raises(ValueError, match="slide=.*smaller than one 50-pixel tile"):
        predict_slide(cheap, _blank(tmp_path / "fine.tif", mpp=0.1), progress=False)
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

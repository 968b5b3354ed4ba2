"""Tests of idc_sklearn.stain: the Reinhard and Macenko stain normalisers."""

import doctest

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GroupKFold, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.utils._param_validation import InvalidParameterError

from idc_sklearn import _checks, stain
from idc_sklearn.datasets import make_idc_patches
from idc_sklearn.handcrafted import make_baseline
from idc_sklearn.stain import MacenkoNormalizer, ReinhardNormalizer

SIZE = 24
SHAPE = (SIZE, SIZE, 3)
NORMALIZERS = [ReinhardNormalizer, MacenkoNormalizer]

# Unit optical-density vectors of haematoxylin and eosin (Ruifrok & Johnston's),
# and a shifted pair: a lab whose haematoxylin is bluer and eosin redder.
HE = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11]])
HE_SHIFTED = np.array([[0.45, 0.80, 0.40], [0.20, 0.95, 0.25]])


def _unit(rows):
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def stained(stains, intensity=1.0, n=6, seed=0, background=0.25):
    """H&E patches from fixed concentrations: round nuclei on stroma, some glass.

    The same seed gives the same tissue whatever the stains, so a patch stained
    one way can be compared pixel by pixel with the same patch stained another.
    """
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:SIZE, :SIZE]
    patches = np.empty((n, SIZE, SIZE, 3))
    for i in range(n):
        # A haze of haematoxylin counterstain everywhere, as on real slides: with
        # eosin alone stroma would be too pale in red for Macenko's tissue rule.
        h = rng.uniform(0.15, 0.3, (SIZE, SIZE))
        for r, c in rng.integers(2, SIZE - 2, (6, 2)):
            h[(rows - r) ** 2 + (cols - c) ** 2 <= rng.integers(4, 10)] = rng.uniform(
                0.6, 1.0
            )
        # Eosin stains the stroma, and the nuclei faintly.
        e = rng.uniform(0.3, 0.6) * (1 + 0.3 * rng.random((SIZE, SIZE)))
        e[h > 0.5] *= 0.1
        concentrations = np.stack([h, e], axis=-1) * intensity
        concentrations[rows < background * SIZE] = 0  # glass: no stain
        od = concentrations @ _unit(stains)
        patches[i] = 256 * np.exp(-od) - 1
    return np.clip(np.rint(patches), 0, 255).astype(np.uint8)


def tissue_error(a, b):
    """Mean absolute difference over the rows below the glass."""
    cut = SIZE // 4
    return np.abs(a[:, cut:].astype(float) - b[:, cut:].astype(float)).mean()


@pytest.fixture(scope="module")
def reference():
    return stained(HE)


@pytest.fixture(scope="module")
def fitted(reference):
    return {cls: cls(patch_shape=SHAPE).fit(reference) for cls in NORMALIZERS}


@pytest.mark.parametrize("cls", NORMALIZERS)
@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_shape_and_dtype_are_kept(cls, dtype, fitted, reference):
    X = stained(HE_SHIFTED, seed=1).astype(dtype)
    out = fitted[cls].transform(X)
    assert out.shape == X.shape and out.dtype == dtype
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 255
    if dtype != np.uint8:
        assert (out == np.rint(out)).mean() < 0.9  # floats are not rounded
    flat = fitted[cls].transform(X.reshape(len(X), -1))
    assert flat.shape == (len(X), SIZE * SIZE * 3)
    np.testing.assert_array_equal(flat.reshape(X.shape), out)


@pytest.mark.parametrize(
    "cls, tolerance", [(ReinhardNormalizer, 0.6), (MacenkoNormalizer, 3.0)]
)
def test_reference_itself_is_nearly_unchanged(cls, tolerance, reference):
    patch = reference[:1]
    out = cls(patch_shape=SHAPE).fit(patch).transform(patch)
    assert tissue_error(out, patch) < tolerance


@pytest.mark.parametrize("cls", NORMALIZERS)
def test_shifted_stain_is_brought_back_to_the_reference(cls, fitted, reference):
    # The reference's tissue, stained by another lab, darker.
    shifted = stained(HE_SHIFTED, intensity=1.4)
    before = tissue_error(shifted, reference)
    after = tissue_error(fitted[cls].transform(shifted), reference)
    assert before > 20
    assert after < before / 2


def test_macenko_finds_the_reference_stains(fitted):
    found = fitted[MacenkoNormalizer].stain_matrix_
    np.testing.assert_allclose(np.linalg.norm(found, axis=1), 1.0)
    angles = np.degrees(np.arccos(np.clip(found @ _unit(HE).T, -1, 1)))
    # Haematoxylin within 5 degrees. No pixel holds eosin alone (the haze), so its
    # extreme direction is a mixture: within 15 degrees, nearer eosin than H.
    assert angles[0, 0] < 5
    assert angles[1, 1] < 15 and angles[1, 1] < angles[1, 0]


@pytest.mark.parametrize("cls", NORMALIZERS)
def test_white_stays_white_and_padding_black(cls, fitted):
    X = stained(HE_SHIFTED, intensity=1.4, seed=2)
    cut = SIZE // 4
    X[:, :cut] = 255  # glass
    X[:, :, -2:] = 0  # zero padding of an edge patch
    out = fitted[cls].transform(X)
    np.testing.assert_array_equal(out[:, :cut, :-2], 255)
    np.testing.assert_array_equal(out[:, :, -2:], 0)
    assert tissue_error(out, X) > 5  # the tissue did change


@pytest.mark.parametrize("cls", NORMALIZERS)
def test_near_white_background_stays_near_white(cls, fitted):
    X = stained(HE_SHIFTED, seed=3)
    X[:, : SIZE // 2] = 245
    out = fitted[cls].transform(X)
    assert out[:, : SIZE // 2].min() >= 230


@pytest.mark.parametrize("cls", NORMALIZERS)
def test_patches_with_too_little_tissue_give_no_nan(cls, fitted):
    X = np.full((3, SIZE, SIZE, 3), 255.0)
    X[1, 0, 0] = (120, 60, 150)  # one stained pixel
    X[2, :2] = (150, 80, 160)  # a thin strip, under min_tissue_fraction
    out = fitted[cls].transform(X)
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out[0], 255)
    # The strip keeps roughly its colour: projected, not rescaled.
    assert np.abs(out[2, :2] - X[2, :2]).max() < 40


def test_macenko_little_tissue_falls_back_to_the_reference_stains(fitted):
    normalizer = fitted[MacenkoNormalizer]
    X = np.full((1, SIZE, SIZE, 3), 255, dtype=np.uint8)
    X[0, :1] = stained(HE_SHIFTED)[0, -1]  # one row of tissue: 4% of the pixels
    od = -np.log((X[0, :1].astype(float) + 1) / 256)
    concentrations = od.reshape(-1, 3) @ np.linalg.pinv(normalizer.stain_matrix_)
    expected = 256 * np.exp(-(concentrations @ normalizer.stain_matrix_)) - 1
    out = normalizer.transform(X)[0, :1].reshape(-1, 3)
    np.testing.assert_allclose(out, np.clip(np.rint(expected), 0, 255), atol=1)


@pytest.mark.parametrize("cls", NORMALIZERS)
def test_deterministic_and_chunk_independent(cls, fitted, reference, monkeypatch):
    X = stained(HE_SHIFTED, intensity=1.2, n=7, seed=4)
    out = fitted[cls].transform(X)
    np.testing.assert_array_equal(out, fitted[cls].transform(X))
    refit = clone(fitted[cls]).fit(reference)
    np.testing.assert_array_equal(out, refit.transform(X))
    monkeypatch.setattr(_checks, "FLOAT64_CHUNK_ROWS", 2)
    np.testing.assert_array_equal(out, fitted[cls].transform(X))
    np.testing.assert_array_equal(out, clone(fitted[cls]).fit(reference).transform(X))


def _tissue_lab_mean(patches):
    from skimage.color import rgb2lab

    lab = rgb2lab(patches / 255.0, channel_axis=-1)
    return lab[:, SIZE // 4 :].reshape(len(patches), -1, 3).mean(axis=1)


def test_reinhard_per_patch_matches_each_patch_to_the_reference(fitted):
    normalizer = fitted[ReinhardNormalizer]
    X = stained(HE_SHIFTED, intensity=1.4, seed=5)
    means = _tissue_lab_mean(normalizer.transform(X))
    np.testing.assert_allclose(
        means, np.tile(normalizer.reference_mean_, (len(X), 1)), atol=2.5
    )


def test_reinhard_per_batch_keeps_differences_between_patches(fitted, reference):
    X = stained(HE_SHIFTED, intensity=1.4, seed=5)
    X[0] = stained(HE_SHIFTED, intensity=0.6, seed=5)[0]  # one paler patch
    per_batch = ReinhardNormalizer(per_patch=False, patch_shape=SHAPE).fit(reference)
    lightness = _tissue_lab_mean(per_batch.transform(X))[:, 0]
    per_patch = _tissue_lab_mean(fitted[ReinhardNormalizer].transform(X))[:, 0]
    assert lightness[0] - lightness[1:].mean() > 5  # still paler
    assert abs(per_patch[0] - per_patch[1:].mean()) < 2.5  # evened out
    # The batch as a whole is matched to the reference's lightness.
    assert abs(lightness.mean() - per_batch.reference_mean_[0]) < 3


def test_fitted_attributes(fitted, reference):
    reinhard, macenko = fitted[ReinhardNormalizer], fitted[MacenkoNormalizer]
    assert reinhard.reference_mean_.shape == reinhard.reference_std_.shape == (3,)
    assert 0 < reinhard.reference_mean_[0] < 90 and (reinhard.reference_std_ > 0).all()
    assert macenko.stain_matrix_.shape == (2, 3)
    assert macenko.max_concentrations_.shape == (2,)
    assert (macenko.max_concentrations_ > 0).all()
    # Haematoxylin (row 0) absorbs more red than eosin does.
    assert macenko.stain_matrix_[0, 0] > macenko.stain_matrix_[1, 0]
    for normalizer in fitted.values():
        assert normalizer.n_features_in_ == SIZE * SIZE * 3
        assert not hasattr(normalizer, "feature_names_in_")
    with pytest.raises(NotFittedError):
        MacenkoNormalizer(patch_shape=SHAPE).transform(reference)


@pytest.mark.parametrize("cls", NORMALIZERS)
def test_pandas_output_and_feature_names(cls, reference):
    flat = reference.reshape(len(reference), -1)
    frame = pd.DataFrame(flat, columns=[f"v{i}" for i in range(flat.shape[1])])
    normalizer = cls(patch_shape=SHAPE).set_output(transform="pandas").fit(frame)
    out = normalizer.transform(frame)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == list(frame.columns)
    assert list(normalizer.get_feature_names_out()) == list(frame.columns)
    default = cls(patch_shape=SHAPE).fit(reference).get_feature_names_out()
    assert default[0] == "x0" and len(default) == flat.shape[1]


@pytest.mark.parametrize("cls", NORMALIZERS)
def test_in_a_pipeline_before_a_handcrafted_baseline(cls):
    idc = make_idc_patches(
        n_patients=4, patches_per_patient=12, patch_size=32, random_state=0
    )
    baseline = make_baseline("color-logreg", patch_shape=(32, 32, 3), random_state=0)
    model = Pipeline([("stain", cls(patch_shape=(32, 32, 3))), *baseline.steps])
    scores = cross_val_score(
        model, idc.data, idc.target, groups=idc.groups, cv=GroupKFold(2)
    )
    assert scores.shape == (2,) and np.isfinite(scores).all()
    model.set_params(stain__min_tissue_fraction=0.2).fit(idc.data, idc.target)
    assert model.named_steps["stain"].n_features_in_ == 32 * 32 * 3


@pytest.mark.parametrize("cls", NORMALIZERS)
def test_bad_input_is_named(cls, fitted, reference):
    normalizer = fitted[cls]
    with pytest.raises(ValueError, match=r"X must be 4-D .* For a single patch"):
        normalizer.transform(reference[0])
    with pytest.raises(ValueError, match=r"X has patches of shape \(16, 16, 3\)"):
        normalizer.transform(reference[:, :16, :16])
    with pytest.raises(ValueError, match=r"X holds values in \[0.0, 300.0\]"):
        normalizer.transform(np.linspace(0, 300, 2 * SIZE * SIZE * 3).reshape(2, -1))
    with pytest.raises(ValueError, match="X contains NaN"):
        normalizer.transform(np.full((1, *SHAPE), np.nan))
    with pytest.raises(ValueError, match=r"'patch_shape' .* \(height, width, 3\)"):
        cls(patch_shape=(SIZE, SIZE, 4)).fit(reference)
    with pytest.raises(InvalidParameterError, match="'min_tissue_fraction'"):
        cls(min_tissue_fraction=1.5, patch_shape=SHAPE).fit(reference)
    with pytest.raises(ValueError, match="tissue"):
        cls(patch_shape=SHAPE).fit(np.full((2, *SHAPE), 255, dtype=np.uint8))


@pytest.mark.parametrize(
    "params, name",
    [({"alpha": 50}, "alpha"), ({"beta": 0}, "beta"), ({"max_percentile": 0}, "max")],
)
def test_macenko_parameters_are_checked(params, name, reference):
    with pytest.raises(InvalidParameterError, match=f"'{name}"):
        MacenkoNormalizer(patch_shape=SHAPE, **params).fit(reference)


def test_masked_percentile_matches_numpy():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(5, 40))
    mask = rng.random((5, 40)) < 0.5
    mask[0] = False
    mask[1] = False
    mask[1, 3] = True
    got = stain._masked_percentile(values, mask, [1, 50, 99])
    expected = np.nanpercentile(np.where(mask, values, np.nan)[1:], [1, 50, 99], axis=1)
    assert np.isnan(got[0]).all()
    np.testing.assert_allclose(got[1:], expected.T)


def test_docstring_examples_run():
    failures, tests = doctest.testmod(stain)
    assert tests > 0 and failures == 0

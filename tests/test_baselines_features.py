"""Tests of the handcrafted feature transformers and the make_baseline pipelines."""

import re
import warnings

import numpy as np
import pytest
from joblib import parallel_config
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.ensemble._hist_gradient_boosting import binning as hgb_binning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.svm import SVC

from idc_sklearn import _checks
from idc_sklearn.baselines import (
    BASELINES,
    ColorHistogram,
    ColorMoments,
    GLCMFeatures,
    HOGFeatures,
    LBPFeatures,
    make_baseline,
)
from idc_sklearn.handcrafted import _pipelines

SHAPE = (32, 32, 3)


def _he_like_patches(n, rng):
    """Pink H&E-like noise; IDC patches (label 1) carry dark purple nuclei."""
    y = np.arange(n) % 2
    patches = np.empty((n, *SHAPE), dtype=np.float64)
    patches[:] = [230, 170, 200]
    patches += rng.normal(0, 12, patches.shape)
    rows, cols = np.mgrid[: SHAPE[0], : SHAPE[1]]
    for i, label in enumerate(y):
        for _ in range(2 + 6 * label):
            r, c = rng.integers(0, SHAPE[0], 2)
            blob = (rows - r) ** 2 + (cols - c) ** 2 < rng.integers(4, 16)
            patches[i][blob] = [90, 50, 140] + rng.normal(0, 10, 3)
    return np.clip(patches, 0, 255).astype(np.uint8), y


@pytest.fixture(scope="module")
def data():
    return _he_like_patches(60, np.random.default_rng(0))


TRANSFORMERS = [
    ColorHistogram(patch_shape=SHAPE),
    ColorHistogram(color_space="hsv", bins=8, patch_shape=SHAPE),
    ColorHistogram(color_space="hed", value_range=(0, 0.15), patch_shape=SHAPE),
    ColorMoments(patch_shape=SHAPE),
    ColorMoments(color_space="hsv", patch_shape=SHAPE),
    ColorMoments(color_space="hed", patch_shape=SHAPE),
    LBPFeatures(patch_shape=SHAPE),
    LBPFeatures(n_points=16, radius=2, patch_shape=SHAPE),
    GLCMFeatures(patch_shape=SHAPE),
    GLCMFeatures(
        distances=(1, 3), levels=8, properties=("entropy",), patch_shape=SHAPE
    ),
    HOGFeatures(patch_shape=SHAPE),
    HOGFeatures(pixels_per_cell=(16, 16), cells_per_block=(1, 1), patch_shape=SHAPE),
]


def _id(transformer):
    return re.sub(r",? ?patch_shape=\(32, 32, 3\)", "", repr(transformer))


@pytest.mark.parametrize("transformer", TRANSFORMERS, ids=_id)
def test_features_do_not_depend_on_layout_or_dtype(transformer, data):
    X, _ = data
    transformer = clone(transformer)
    assert transformer.fit(X) is transformer
    assert transformer.n_features_in_ == 32 * 32 * 3
    features = transformer.transform(X)
    assert features.dtype == np.float64 and np.isfinite(features).all()
    names = transformer.get_feature_names_out()
    assert features.shape == (60, len(names)) and len(set(names)) == len(names)
    flat = X.reshape(len(X), -1)
    for other in (flat, X.astype(np.float64), flat.astype(np.float32)):
        np.testing.assert_array_equal(transformer.transform(other), features)


@pytest.mark.parametrize("transformer", TRANSFORMERS, ids=_id)
def test_stateless_transform_and_pandas_output(transformer, data):
    X, _ = data
    transformer = clone(transformer).set_output(transform="pandas")
    frame = transformer.transform(X[:3])
    assert frame.columns.tolist() == transformer.get_feature_names_out().tolist()


def test_known_values_on_constant_patches():
    red = np.zeros((1, *SHAPE), dtype=np.uint8)
    red[..., 0] = 255
    rgb = ColorHistogram(bins=4, patch_shape=SHAPE).transform(red)
    np.testing.assert_array_equal(rgb, [[0, 0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0]])
    hsv = ColorHistogram("hsv", bins=4, patch_shape=SHAPE).transform(red)
    np.testing.assert_array_equal(hsv, [[1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1]])
    moments = ColorMoments(patch_shape=SHAPE).transform(red)
    np.testing.assert_array_equal(moments, [[1, 0, 0, 0, 0, 0, 0, 0, 0]])
    grey = np.full((1, *SHAPE), 128, dtype=np.uint8)
    # Inside the patch every neighbour equals the centre: all bits set, the uniform
    # code n_points. scikit-image reads outside the patch as 0, so the 1-pixel
    # border gets other codes.
    lbp = LBPFeatures(patch_shape=SHAPE).transform(grey)
    assert lbp.sum() == 1.0 and lbp[0, 8] == 30 * 30 / (32 * 32)
    glcm = GLCMFeatures(
        properties=("contrast", "homogeneity"), angles=(0.0,), patch_shape=SHAPE
    ).transform(grey)
    np.testing.assert_array_equal(glcm, [[0.0, 1.0]])


def test_histograms_are_pixel_fractions_and_clip_to_the_range(data):
    X, _ = data
    hist = ColorHistogram(bins=5, patch_shape=SHAPE).transform(X)
    np.testing.assert_allclose(hist.reshape(60, 3, 5).sum(axis=2), 1.0)
    white = np.full((1, *SHAPE), 255, dtype=np.uint8)
    narrow = ColorHistogram(bins=2, value_range=[(0, 0.5)] * 3, patch_shape=SHAPE)
    np.testing.assert_array_equal(narrow.transform(white), [[0, 1, 0, 1, 0, 1]])


def test_moments_match_numpy(data):
    X, _ = data
    values = X.reshape(60, -1, 3) / 255.0
    centred = values - values.mean(axis=1, keepdims=True)
    skew = (centred**3).mean(axis=1) / (centred**2).mean(axis=1) ** 1.5
    expected = np.stack([values.mean(axis=1), values.std(axis=1), skew], axis=2)
    moments = ColorMoments(patch_shape=SHAPE).transform(X)
    np.testing.assert_allclose(moments, expected.reshape(60, 9))


@pytest.mark.parametrize("color_space", ["rgb", "hsv", "hed"])
def test_colour_features_do_not_depend_on_the_chunk_size(
    color_space, data, monkeypatch
):
    X, _ = data
    transformers = [
        cls(color_space=color_space, patch_shape=SHAPE)
        for cls in (ColorHistogram, ColorMoments)
    ]
    whole = [t.transform(X) for t in transformers]
    monkeypatch.setattr(_checks, "FLOAT64_CHUNK_ROWS", 7)
    for transformer, expected in zip(transformers, whole, strict=True):
        np.testing.assert_array_equal(transformer.transform(X), expected)


def test_parallel_equals_serial(data):
    X, _ = data
    serial = HOGFeatures(patch_shape=SHAPE).transform(X)
    with parallel_config(backend="threading"):
        parallel = HOGFeatures(n_jobs=2, patch_shape=SHAPE).transform(X)
    np.testing.assert_array_equal(parallel, serial)


@pytest.mark.parametrize(
    ("transformer", "match"),
    [
        (ColorHistogram(bins=1), r"'bins' parameter of ColorHistogram.*Got 1"),
        (ColorHistogram(color_space="lab"), r"'color_space' .*'hed'.*Got 'lab'"),
        (ColorHistogram(value_range=(1, 0)), r"'value_range' .* low < high.*\(1, 0\)"),
        (ColorMoments(patch_shape=(32, 32)), r"patch_shape .* got \(32, 32\)"),
        (ColorMoments(patch_shape=(32, 32, 1)), r"'patch_shape' .* RGB"),
        (LBPFeatures(radius=0), r"'radius' parameter of LBPFeatures.*Got 0"),
        (GLCMFeatures(levels=300), r"'levels' .*Got 300"),
        (GLCMFeatures(distances=(0,)), r"'distances' .*positive ints.*\(0,\)"),
        (GLCMFeatures(properties=("sharpness",)), r"'properties' .*'sharpness'"),
        (HOGFeatures(pixels_per_cell=8), r"'pixels_per_cell' .*Got 8"),
        (HOGFeatures(cells_per_block=(2, 0)), r"'cells_per_block' .*\(2, 0\)"),
        (HOGFeatures(pixels_per_cell=(20, 20)), r"at least 60x60 pixels"),
    ],
    ids=repr,
)
def test_invalid_parameters_are_named(transformer, match, data):
    X, _ = data
    if transformer.get_params()["patch_shape"] == (50, 50, 3):
        transformer.set_params(patch_shape=SHAPE)
    for method in (transformer.fit, transformer.transform):
        with pytest.raises(ValueError, match=match):
            method(X)


@pytest.mark.parametrize(
    ("X", "match"),
    [
        (np.zeros((2, 50, 50, 3), np.uint8), r"X has patches of shape \(50, 50, 3\)"),
        (np.zeros((2, 100), np.uint8), "X is 2-D with 100 features"),
        (np.zeros((32, 32, 3), np.uint8), "X must be 4-D"),
        (np.full((2, 32, 32, 3), 300.0), r"X holds values in \[300.0, 300.0\]"),
        (np.full((2, 32, 32, 3), -1), "0-255 scale"),
        (np.full((2, 32, 32, 3), np.nan), "X contains NaN"),
    ],
    ids=["patch-shape", "flat-width", "3-D", "above-255", "negative", "nan"],
)
def test_invalid_input_is_named(X, match):
    transformer = LBPFeatures(patch_shape=SHAPE)
    for method in (transformer.fit, transformer.transform):
        with pytest.raises(ValueError, match=match):
            method(X)


@pytest.mark.parametrize("name", BASELINES)
def test_each_baseline_fits_and_predicts(name, data):
    X, y = data
    model = make_baseline(name, patch_shape=SHAPE, random_state=0)
    assert list(model.named_steps)[0] == "features"
    assert list(model.named_steps)[-1] == "clf"
    model.fit(X.reshape(len(X), -1), y)
    predictions = model.predict(X)
    assert predictions.shape == (60,)
    assert balanced_accuracy_score(y, predictions) > 0.8
    ranking = getattr(model, "decision_function", None) or model.predict_proba
    assert np.isfinite(ranking(X)).all()


def test_baselines_are_tunable_by_readable_names(data):
    X, y = data
    model = make_baseline("color-logreg", patch_shape=SHAPE)
    model.set_params(features__color__bins=4, clf__C=0.5)
    assert model.fit(X, y).named_steps["scale"].n_features_in_ == 3 * 4 + 9
    params = make_baseline("features-rf").get_params()
    for key in ("features__hog__pixels_per_cell", "features__glcm__levels"):
        assert key in params
    svm = make_baseline("texture-svm", patch_shape=SHAPE).fit(X, y)
    assert svm.decision_function(X).shape == (60,)
    assert not hasattr(svm, "predict_proba")


def test_baselines_reproducible_with_random_state(data):
    X, y = data
    first, second = (
        make_baseline("features-rf", patch_shape=SHAPE, random_state=3)
        .fit(X, y)
        .predict_proba(X)
        for _ in range(2)
    )
    np.testing.assert_array_equal(first, second)


# Each baseline as make_baseline's docstring describes it: its steps, its feature
# sets and its classifier.
PIPELINES = {
    "color-logreg": (
        ["features", "scale", "clf"],
        ["color", "moments"],
        LogisticRegression,
    ),
    "texture-svm": (["features", "scale", "clf"], ["lbp", "glcm", "hog"], SVC),
    "features-rf": (
        ["features", "clf"],
        ["color", "moments", "lbp", "glcm", "hog"],
        RandomForestClassifier,
    ),
    "features-hgb": (
        ["features", "bins", "clf"],
        ["color", "moments", "lbp", "glcm", "hog"],
        HistGradientBoostingClassifier,
    ),
}


def test_baselines_are_the_names_of_the_one_table():
    assert BASELINES == tuple(_pipelines._STEPS) == tuple(PIPELINES)


@pytest.mark.parametrize("name", BASELINES)
def test_each_baseline_is_built_as_documented(name):
    steps, features, classifier = PIPELINES[name]
    model = make_baseline(name, patch_shape=SHAPE, random_state=5, n_jobs=2)
    assert list(model.named_steps) == steps
    union = model.named_steps["features"]
    assert [part for part, _ in union.transformer_list] == features
    assert all(t.patch_shape == SHAPE for _, t in union.transformer_list)
    clf = model.named_steps["clf"]
    assert type(clf) is classifier
    assert clf.class_weight == "balanced" and clf.random_state == 5
    texture = [t for part, t in union.transformer_list if part in _pipelines._TEXTURE]
    assert all(t.n_jobs == 2 for t in texture)
    if name == "features-rf":
        assert clf.n_jobs == 2
    assert make_baseline(name) is not make_baseline(name)


def test_unknown_baseline_lists_the_valid_names():
    with pytest.raises(ValueError, match="'color-logreg', 'texture-svm'.*got 'cnn'"):
        make_baseline("cnn")


def test_features_hgb_bins_at_unweighted_quantiles_quietly(monkeypatch):
    X, y = _he_like_patches(400, np.random.default_rng(1))
    # unbalanced classes, so class_weight="balanced" really weights
    keep = (y == 0) | (np.arange(len(y)) % 4 == 1)
    X, y = X[keep], y[keep]

    def weighted_percentile(*args, **kwargs):
        raise AssertionError("features-hgb binned at weighted quantiles")

    monkeypatch.setattr(hgb_binning, "_weighted_percentile", weighted_percentile)
    model = make_baseline("features-hgb", patch_shape=SHAPE, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(X, y)
    features = model.named_steps["features"].transform(X)
    # Unbinned, HistGradientBoosting would have placed weighted quantile edges
    # (more distinct values than its 255 bins) ...
    assert max(len(np.unique(column)) for column in features.T) > 255
    # ... where it got at most 255 codes per feature; features with ties (empty
    # histogram bins) lost their repeated edges.
    bins = model.named_steps["bins"]
    codes = bins.transform(features)
    assert max(len(np.unique(column)) for column in codes.T) <= 255
    assert min(len(edges) for edges in bins.bin_edges_) < 256
    assert balanced_accuracy_score(y, model.predict(X)) > 0.8

"""PatchResampler: imbalanced-learn's random samplers on 4-D patch arrays."""

import numpy as np
import pytest
from imblearn.pipeline import Pipeline
from imblearn.utils.estimator_checks import parametrize_with_checks
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import FunctionTransformer

from idc_sklearn import PatchResampler

SHAPE = (8, 8, 3)
rng = np.random.default_rng(0)
X = rng.integers(0, 256, (30, *SHAPE), dtype=np.uint8)
y = np.array([0] * 24 + [1] * 6)


@pytest.mark.parametrize("kind, counts", [("under", [6, 6]), ("over", [24, 24])])
def test_balances_and_keeps_shape_and_dtype(kind, counts):
    sampler = PatchResampler(kind, random_state=0, patch_shape=SHAPE)
    Xr, yr = sampler.fit_resample(X, y)
    assert Xr.shape[1:] == SHAPE and Xr.dtype == np.uint8
    assert np.bincount(yr).tolist() == counts
    np.testing.assert_array_equal(Xr, X[sampler.sample_indices_])
    np.testing.assert_array_equal(yr, y[sampler.sample_indices_])


def test_flattened_input_stays_flat():
    sampler = PatchResampler("under", random_state=0, patch_shape=SHAPE)
    Xr, yr = sampler.fit_resample(X.reshape(30, -1), y)
    assert Xr.shape == (12, 8 * 8 * 3) and np.bincount(yr).tolist() == [6, 6]
    # whole rows, the same ones as of the 4-D patches
    np.testing.assert_array_equal(Xr, X.reshape(30, -1)[sampler.sample_indices_])
    four_d = clone(sampler)
    four_d.fit_resample(X, y)
    np.testing.assert_array_equal(sampler.sample_indices_, four_d.sample_indices_)


def test_sampling_strategy_and_seed():
    a = PatchResampler(
        "under", sampling_strategy=0.5, random_state=1, patch_shape=SHAPE
    )
    _, ya = a.fit_resample(X, y)
    assert np.bincount(ya).tolist() == [12, 6]
    b = clone(a)
    b.fit_resample(X, y)
    np.testing.assert_array_equal(a.sample_indices_, b.sample_indices_)


def test_in_an_imblearn_pipeline_only_while_fitting():
    seen = []

    def record(Z):
        seen.append(len(Z))
        return Z.reshape(len(Z), -1)

    pipe = Pipeline(
        [
            ("balance", PatchResampler("under", random_state=0, patch_shape=SHAPE)),
            ("flat", FunctionTransformer(record)),
            ("clf", LogisticRegression(max_iter=200)),
        ]
    )
    pipe.fit(X, y)
    pipe.predict(X)
    assert seen == [12, 30]


@pytest.mark.parametrize(
    "kwargs, X_, y_, match",
    [
        (
            {"kind": "smote"},
            X,
            y,
            "The .kind. parameter of PatchResampler must be a str among",
        ),
        ({}, X, y[:-1], "different lengths"),
        ({}, X[:, :4], y, "expected patch_shape"),
    ],
)
def test_bad_input(kwargs, X_, y_, match):
    with pytest.raises(ValueError, match=match):
        PatchResampler(patch_shape=SHAPE, **kwargs).fit_resample(X_, y_)


def test_fit_sets_sampling_strategy_like_imblearn():
    sampler = PatchResampler("over", patch_shape=SHAPE).fit(X, y)
    # imbalanced-learn's convention: patches to add per class when over-sampling.
    assert sampler.sampling_strategy_ == {1: 18}
    assert PatchResampler("under", patch_shape=SHAPE).fit(X, y).sampling_strategy_ == {
        0: 6
    }


def test_patch_shape_none_resamples_any_rows():
    rows = np.arange(60).reshape(30, 2)
    Xr, yr = PatchResampler("under", random_state=0, patch_shape=None).fit_resample(
        rows, y
    )
    assert Xr.shape == (12, 2) and np.bincount(yr).tolist() == [6, 6]


@parametrize_with_checks(
    [PatchResampler(random_state=0, patch_shape=None)],
    expected_failed_checks=lambda estimator: {
        "check_samplers_sparse": "sparse input is refused: patches are dense",
        "check_samplers_pandas_sparse": "sparse input is refused",
        "check_estimators_sparse_array": "sparse input is refused",
        "check_estimators_sparse_matrix": "sparse input is refused",
    },
)
def test_imblearn_sampler_checks(estimator, check):
    check(estimator)

"""What fit and partial_fit check before training (idc_sklearn._validation): the
parameters once per call, classes and class weights, patches at the boundary."""

import warnings

import numpy as np
import pytest
from conftest import TINY, make_patches, tiny_unsplit
from sklearn.utils.class_weight import compute_class_weight

from idc_sklearn import MLBNInceptionClassifier

tiny = tiny_unsplit


def test_floats_in_unit_range_warn_with_scale(patches48, fitted_unsplit):
    X, y, _ = patches48
    scaled = X.astype(np.float32) / 255
    with pytest.warns(UserWarning, match=r"floats in \[0, 1\].*normalize='scale'"):
        fitted_unsplit.predict_proba(scaled)
    with pytest.warns(UserWarning, match="normalize=None"):
        tiny(max_epochs=1).fit(scaled, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fitted_unsplit.predict_proba(X.astype(np.float32))
        tiny(max_epochs=1, normalize=None).fit(scaled, y)
        tiny(max_epochs=1, normalize="zscore").fit(scaled, y)


def _imbalanced(n=48):
    X, _, _ = make_patches(n=n, n_patients=4)
    return X, np.array([0] * (3 * n // 4) + [1] * (n // 4))


def test_partial_fit_balanced_weights_come_from_y_not_from_classes():
    X, y = _imbalanced()
    clf = MLBNInceptionClassifier(
        **{**TINY, "max_epochs": 1}, class_weight="balanced", train_split=None
    )
    clf.partial_fit(X, y, classes=[0, 1])
    expected = compute_class_weight("balanced", classes=np.array([0, 1]), y=y)
    np.testing.assert_allclose(clf.class_weight_, expected)
    assert clf.class_weight_[1] > 1.5 > 1 > clf.class_weight_[0]


def test_partial_fit_balanced_needs_every_class_in_y():
    X, y = _imbalanced()
    clf = MLBNInceptionClassifier(**TINY, class_weight="balanced", train_split=None)
    with pytest.raises(ValueError, match=r'"balanced" .*y holds no \[2\]'):
        clf.partial_fit(X, y, classes=[0, 1, 2])


def test_partial_fit_checks_the_parameters_of_an_initialised_net():
    X, y = _imbalanced()
    clf = MLBNInceptionClassifier(**TINY, train_split=None).partial_fit(X, y)
    clf.set_params(lr=-1.0)
    with pytest.raises(ValueError, match="'lr' parameter"):
        clf.partial_fit(X, y)


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_parameters_are_checked_once_per_call(method, monkeypatch):
    X, y = _imbalanced()
    clf = MLBNInceptionClassifier(**TINY, train_split=None)
    calls = []
    check = type(clf)._check_params

    def counted(self):
        calls.append(self)
        return check(self)

    monkeypatch.setattr(type(clf), "_check_params", counted)
    getattr(clf, method)(X, y)
    assert len(calls) == 1
    clf.initialize()  # a direct call checks them itself
    assert len(calls) == 2

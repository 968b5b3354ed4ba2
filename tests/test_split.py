"""PatientValidSplit: the internal validation split by patient."""

import numpy as np
import pytest
from conftest import TINY
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, GroupKFold

from idc_sklearn import MLBNInceptionClassifier, PatientValidSplit
from idc_sklearn.batching import PatchDataset

y = np.tile([0, 1], 50)
groups = np.repeat([f"p{i}" for i in range(10)], 10)


def test_grouped_split_keeps_patients_whole_and_sizes():
    train, valid = PatientValidSplit(0.2).split_indices(y, groups)
    assert not set(groups[train]) & set(groups[valid])
    assert len(set(groups[valid])) == 2
    assert sorted(np.concatenate([train, valid]).tolist()) == list(range(100))


def test_ungrouped_split_is_stratified_and_seeded():
    a = PatientValidSplit(0.3, random_state=1).split_indices(y)
    b = PatientValidSplit(0.3, random_state=1).split_indices(y)
    np.testing.assert_array_equal(a[1], b[1])
    assert len(a[1]) == 30 and y[a[1]].mean() == 0.5


def test_few_patients_fall_back_to_a_group_shuffle():
    g = np.repeat(["a", "b", "c"], [40, 40, 20])
    train, valid = PatientValidSplit(0.2).split_indices(y, g)
    assert not set(g[train]) & set(g[valid])


def test_fixed_validation_patients():
    train, valid = PatientValidSplit(valid_groups=[1, "3"]).split_indices(
        y, np.char.replace(groups, "p", "")
    )
    assert set(np.char.replace(groups, "p", "")[valid]) == {"1", "3"}
    assert len(train) == 80


def test_returns_subsets_of_the_dataset():
    X = np.zeros((100, 16, 16, 3), np.uint8)
    train, valid = PatientValidSplit()(PatchDataset(X, y), y, groups=groups)
    assert len(train) + len(valid) == 100


@pytest.mark.parametrize(
    "split, kwargs, match",
    [
        (PatientValidSplit(1.5), {}, "valid_size must be a float in"),
        (PatientValidSplit(), {"groups": np.repeat("a", 100)}, "at least 2 patients"),
        (PatientValidSplit(), {"groups": groups[:5]}, "one entry per sample"),
        (PatientValidSplit(valid_groups=["zz"]), {"groups": groups}, "absent"),
        (PatientValidSplit(valid_groups=["p1"]), {}, "pass groups to fit"),
        (
            PatientValidSplit(valid_groups=list(set(groups))),
            {"groups": groups},
            "every",
        ),
    ],
)
def test_bad_input(split, kwargs, match):
    with pytest.raises(ValueError, match=match):
        split.split_indices(y, **kwargs)


# --- parameters, as a scikit-learn estimator's --------------------------------------


def test_parameters_are_got_set_and_cloned():
    split = PatientValidSplit(0.2, random_state=3, valid_groups=["p1"])
    assert split.get_params() == {
        "valid_size": 0.2,
        "random_state": 3,
        "valid_groups": ["p1"],
    }
    copy = clone(split)
    assert copy is not split and repr(copy) == repr(split)
    assert copy.set_params(valid_size=0.5, valid_groups=None) is copy
    assert copy.get_params()["valid_size"] == 0.5 and split.valid_size == 0.2
    with pytest.raises(ValueError, match="Invalid parameter 'valid'"):
        split.set_params(valid=0.5)


def test_estimator_lists_the_split_parameters():
    params = MLBNInceptionClassifier(**TINY).get_params(deep=True)
    assert params["train_split__valid_size"] == 0.2
    assert params["train_split__random_state"] == 0
    assert params["train_split__valid_groups"] is None


def test_estimator_sets_the_split_parameters():
    clf = MLBNInceptionClassifier(**TINY).set_params(train_split__valid_size=0.3)
    assert clf.get_params(deep=True)["train_split__valid_size"] == 0.3
    # The default split is one instance shared by every estimator: never changed.
    assert MLBNInceptionClassifier().train_split.valid_size == 0.2
    search = GridSearchCV(
        clf, {"train_split__valid_size": [0.2, 0.5]}, cv=GroupKFold(2), refit=False
    )
    X = np.random.default_rng(0).integers(0, 256, (100, 16, 16, 3), dtype=np.uint8)
    search.fit(X, y, groups=groups)
    assert search.cv_results_["param_train_split__valid_size"].tolist() == [0.2, 0.5]

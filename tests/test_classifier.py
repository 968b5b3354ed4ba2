"""The estimator contract, on tiny networks.

Tests that take the ``make`` fixture run for MLBNInceptionClassifier and for both
CNN baselines, which share its machinery; the others are about the MLBN network.
"""

import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import sklearn
import torch
from conftest import TINY, make_patches, requires_cuda
from imblearn.over_sampling import SMOTE, RandomOverSampler
from imblearn.pipeline import Pipeline as ImbPipeline
from imblearn.under_sampling import RandomUnderSampler
from scipy.stats import uniform
from sklearn.base import clone
from sklearn.model_selection import (
    GridSearchCV,
    GroupKFold,
    RandomizedSearchCV,
    cross_val_predict,
    cross_validate,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.class_weight import compute_class_weight
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback
from skorch.exceptions import DeviceWarning, NotInitializedError
from torch import nn

import idc_sklearn
from idc_sklearn import (
    CruzRoaCNNClassifier,
    JanowczykCNNClassifier,
    MLBNInceptionClassifier,
    PatchNetClassifier,
    PatchResampler,
    PatientValidSplit,
)
from idc_sklearn._device import resolve_device


def tiny(**kwargs):
    return MLBNInceptionClassifier(**{**TINY, **kwargs})


_SHARED = {k: v for k, v in TINY.items() if k not in ("filters", "head_units")}
FACTORIES = {
    "mlbn": tiny,
    "janowczyk": lambda **kw: JanowczykCNNClassifier(
        **{**_SHARED, "crop_size": 16, **kw}
    ),
    "cruzroa": lambda **kw: CruzRoaCNNClassifier(**{**_SHARED, **kw}),
}


@pytest.fixture(params=sorted(FACTORIES))
def make(request):
    return FACTORIES[request.param]


@pytest.fixture(scope="module", params=sorted(FACTORIES))
def fitted(request, patches):
    X, y, groups = patches
    return FACTORIES[request.param]().fit(X, y, groups=groups)


# -- parameters and defaults --


def test_defaults_follow_the_paper():
    clf = MLBNInceptionClassifier()
    assert clf.filters == (64, 64, 128, 128, 256, 256, 512, 512)
    assert clf.head_units == (256, 256) and clf.dropout == 0.4
    assert clf.multilevel_bn is True
    assert clf.lr == 1e-3 and clf.batch_size == 32
    assert clf.optimizer is torch.optim.Adam
    assert clf.criterion is torch.nn.CrossEntropyLoss
    assert clf.iterator_train__shuffle is True
    assert clf.get_params()["device"] == "auto"

    callbacks = dict(clf._default_callbacks)
    stop = callbacks["early_stopping"]
    assert (stop.monitor, stop.patience, stop.threshold) == ("valid_bacc", 10, 0.005)
    assert stop.lower_is_better is False and stop.load_best is True
    plateau = callbacks["lr_scheduler"]
    assert plateau.monitor == "valid_bacc"
    assert plateau.kwargs == {
        "mode": "max",
        "factor": 0.5,
        "patience": 3,
        "threshold": 0.005,
        "threshold_mode": "abs",
    }


def test_init_stores_arguments_unchanged():
    filters = [4, 4]
    clf = MLBNInceptionClassifier(filters=filters, class_weight={0: 2.0})
    assert clf.filters is filters
    assert clf.get_params()["filters"] is filters
    assert clf.get_params()["class_weight"] == {0: 2.0}
    assert "device_" not in vars(clf)


def test_first_class_params_reach_the_network(patches):
    X, y, _ = patches
    clf = tiny(filters=(3, 6), head_units=(5,), dropout=0.1, multilevel_bn=False)
    clf.set_params(train_split=None, max_epochs=1).fit(X, y)
    net = clf.module_
    assert [
        b.filters_per_branch for b in net.features if hasattr(b, "filters_per_branch")
    ] == [3, 6]
    assert net.head[0].out_features == 5 and net.head[2].p == 0.1
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())


def test_module_param_conflict_is_refused(patches):
    X, y, _ = patches
    with pytest.raises(ValueError, match="module__filters conflicts"):
        tiny(module__filters=(3,), train_split=None).fit(X, y)


# -- input forms --


def test_fit_predict_on_4d_uint8(fitted, patches):
    X, y, _ = patches
    proba = fitted.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    assert set(fitted.predict(X)) <= {0, 1}
    assert fitted.n_features_in_ == 16 * 16 * 3


def test_2d_flattened_input_gives_the_same_model(make, patches):
    X, y, groups = patches
    # on CPU, where training is deterministic
    a = make(device="cpu").fit(X, y, groups=groups)
    b = make(device="cpu").fit(X.reshape(len(X), -1), y, groups=groups)
    np.testing.assert_allclose(
        a.predict_proba(X), b.predict_proba(X.reshape(len(X), -1))
    )
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X))


def test_float_input_on_the_0_255_scale_matches_uint8(fitted, patches):
    X, _, _ = patches
    np.testing.assert_allclose(
        fitted.predict_proba(X), fitted.predict_proba(X.astype(np.float64)), rtol=1e-5
    )


def test_read_only_memory_mapped_input(make, tmp_path, patches):
    X, y, _ = patches
    np.save(tmp_path / "X.npy", X)
    X_mm = np.load(tmp_path / "X.npy", mmap_mode="r")
    clf = make(train_split=None, max_epochs=1).fit(X_mm, y)
    assert clf.predict_proba(X_mm).shape == (len(X), 2)


# -- labels --


def test_string_labels_and_three_classes(make, patches):
    X, _, groups = patches
    names = np.array(["stroma", "IDC", "fat"])
    y = names[np.arange(len(X)) % 3]
    clf = make(train_split=None).fit(X, y)
    assert clf.classes_.tolist() == ["IDC", "fat", "stroma"]
    assert set(clf.predict(X)) <= set(names)
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 3)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(axis=1)])


def test_predict_proba_columns_follow_classes(patches):
    X, y, _ = patches
    labels = np.where(y == 1, "IDC", "non-IDC")
    clf = tiny(train_split=None, max_epochs=3).fit(X, labels)
    assert clf.classes_.tolist() == ["IDC", "non-IDC"]
    proba = clf.predict_proba(X)
    # the IDC column (0 here) is high where the dark square is
    assert proba[y == 1, 0].mean() > proba[y == 0, 0].mean()


def test_learns_a_visible_pattern(patches):
    X, y, groups = patches
    clf = tiny(max_epochs=8, lr=3e-3).fit(X, y, groups=groups)
    assert (clf.predict(X) == y).mean() > 0.85


# -- class weights --


def test_class_weight_balanced_and_dict(make, patches):
    X, y, _ = patches
    y = y.copy()
    y[:30] = 0
    clf = make(class_weight="balanced", train_split=None, max_epochs=1).fit(X, y)
    expected = compute_class_weight("balanced", classes=np.array([0, 1]), y=y)
    np.testing.assert_allclose(clf.criterion_.weight.cpu().numpy(), expected)
    labels = np.where(y == 1, "IDC", "non-IDC")
    clf = make(class_weight={"IDC": 3.0}, train_split=None, max_epochs=1).fit(X, labels)
    np.testing.assert_allclose(clf.criterion_.weight.cpu().numpy(), [3.0, 1.0])
    assert make(train_split=None, max_epochs=1).fit(X, y).criterion_.weight is None


def test_class_weight_conflicting_with_criterion_weight(patches):
    X, y, _ = patches
    clf = tiny(class_weight="balanced", criterion__weight=torch.ones(2))
    with pytest.raises(ValueError, match="class_weight and criterion__weight"):
        clf.fit(X, y)


# -- seeding --


def test_same_seed_same_model_and_global_rng_untouched(make, patches):
    X, y, groups = patches
    state = torch.random.get_rng_state()
    model = make(random_state=7, device="cpu").fit(X, y, groups=groups)
    assert torch.equal(torch.random.get_rng_state(), state)
    a = model.predict_proba(X)
    b = make(random_state=7, device="cpu").fit(X, y, groups=groups).predict_proba(X)
    c = make(random_state=8, device="cpu").fit(X, y, groups=groups).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


# -- the internal validation split --


class RecordSplit(Callback):
    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        self.train_, self.valid_ = dataset_train.indices, dataset_valid.indices


def test_groups_hold_out_whole_patients(make, patches):
    X, y, groups = patches
    rec = RecordSplit()
    make(callbacks=[("rec", rec)], max_epochs=1).fit(X, y, groups=groups)
    train_patients, valid_patients = set(groups[rec.train_]), set(groups[rec.valid_])
    assert valid_patients and train_patients
    assert not train_patients & valid_patients
    assert len(rec.train_) + len(rec.valid_) == len(X)


def test_without_groups_split_is_stratified(patches):
    X, y, _ = patches
    rec = RecordSplit()
    tiny(callbacks=[("rec", rec)], max_epochs=1).fit(X, y)
    assert len(rec.valid_) == pytest.approx(0.2 * len(X), abs=1)
    assert y[rec.valid_].mean() == pytest.approx(0.5, abs=0.07)


def test_train_split_none_trains_on_everything(make, patches):
    X, y, _ = patches
    clf = make(train_split=None, max_epochs=1).fit(X, y)
    assert "valid_bacc" not in clf.history[-1]
    assert "early_stopping" not in dict(clf.callbacks_)


def test_lr_halves_on_plateau_and_early_stopping_ends_training():
    X = np.zeros((32, 16, 16, 3), dtype=np.uint8)  # nothing to learn: flat score
    y = np.tile([0, 1], 16)
    clf = tiny(max_epochs=30).fit(X, y)
    assert len(clf.history) == 11  # best at epoch 1, patience 10
    assert clf.optimizer_.param_groups[0]["lr"] < 1e-3
    assert clf.history[-1, "event_lr"] < clf.history[0, "event_lr"]


def test_callbacks_are_tunable_and_removable_by_name(patches):
    X, y, groups = patches
    clf = tiny(max_epochs=1)
    clf.set_params(callbacks__early_stopping__patience=2, callbacks__lr_scheduler=None)
    clf.fit(X, y, groups=groups)
    callbacks = dict(clf.callbacks_)
    assert callbacks["early_stopping"].patience == 2
    assert "lr_scheduler" not in callbacks
    assert "event_lr" not in clf.history[-1]


# -- sklearn integration --


def test_clone_get_set_params(fitted):
    params = fitted.get_params()
    assert params["device"] == "auto" and fitted.device_ == resolve_device("auto")
    copy = clone(fitted)
    assert copy.get_params()["device"] == "auto" and "device_" not in vars(copy)
    copy.set_params(lr=0.05, class_weight="balanced")
    assert copy.lr == 0.05 and copy.class_weight == "balanced"
    assert fitted.lr != 0.05


def test_explicit_cpu_device(patches):
    X, y, _ = patches
    clf = tiny(device="cpu", train_split=None, max_epochs=1).fit(X, y)
    assert clf.device_ == "cpu" and clf.get_params()["device"] == "cpu"
    assert next(clf.module_.parameters()).device.type == "cpu"


def test_pickle_round_trip_keeps_probabilities(fitted, patches):
    X, _, _ = patches
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict_proba(X), fitted.predict_proba(X))
    assert restored.get_params()["device"] == "auto"


def test_model_pickled_on_gpu_unpickles_on_cpu(fitted, patches, monkeypatch):
    X, _, _ = patches
    state = fitted.__getstate__()
    state["device_"] = "cuda"  # as pickled on a GPU machine
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    restored = type(fitted).__new__(type(fitted))
    with pytest.warns(DeviceWarning):
        restored.__setstate__(state)
    assert restored.device_ == "cpu" and restored.get_params()["device"] == "auto"
    # fitted may live on a GPU: its float results differ in the last digits
    np.testing.assert_allclose(
        restored.predict_proba(X), fitted.predict_proba(X), atol=1e-4
    )


class _SeenByFit(Callback):
    """Records what each fit's network trains on; a class list, so clones share it."""

    fits: list = []

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        blocks = [m for m in net.module_.modules() if hasattr(m, "filters_per_branch")]
        self.fits.append(
            {
                "X": X.reshape(len(X), -1),
                "dtype": X.dtype,
                "counts": tuple(np.bincount(y, minlength=2)),
                "filters": tuple(b.filters_per_branch for b in blocks),
                "multilevel_bn": {b.multilevel_bn for b in blocks},
            }
        )


@pytest.fixture
def seen_by_fit():
    _SeenByFit.fits = []
    yield _SeenByFit.fits
    _SeenByFit.fits = []


class _SplitSpy(PatientValidSplit):
    """Records the patients each internal validation split puts on either side."""

    seen: list = []

    def split_indices(self, y, groups=None):
        train, valid = super().split_indices(y, groups)
        if groups is None:
            self.seen.append(None)
        else:
            groups = np.asarray(groups)
            self.seen.append((frozenset(groups[train]), frozenset(groups[valid])))
        return train, valid


def _training_patients(X, y, groups, cv):
    return [frozenset(groups[train]) for train, _ in cv.split(X, y, groups)]


def test_pipeline_gridsearch_groupkfold(patches, seen_by_fit):
    X, y, groups = patches
    flat = X.reshape(len(X), -1)
    _SplitSpy.seen = []
    clf = tiny(max_epochs=1, train_split=_SplitSpy(0.25), callbacks=[_SeenByFit()])
    pipe = Pipeline([("to_float", FunctionTransformer(np.float32)), ("clf", clf)])
    grid = {"clf__filters": [(3,), (3, 3)], "clf__multilevel_bn": [True, False]}
    search = GridSearchCV(
        pipe, grid, cv=GroupKFold(n_splits=2), scoring="balanced_accuracy"
    )
    with sklearn.config_context(enable_metadata_routing=True):
        search.fit(flat, y, groups=groups)

    candidates = {
        (f, bn) for f in grid["clf__filters"] for bn in grid["clf__multilevel_bn"]
    }
    assert {
        (p["clf__filters"], p["clf__multilevel_bn"])
        for p in search.cv_results_["params"]
    } == candidates
    # Every candidate's value reached the networks of both folds, then the refit's.
    built = [(fit["filters"], fit["multilevel_bn"]) for fit in seen_by_fit]
    expected = [(f, {bn}) for f, bn in candidates]
    assert sorted(built[:-1], key=repr) == sorted(expected * 2, key=repr)
    best = (
        search.best_params_["clf__filters"],
        search.best_params_["clf__multilevel_bn"],
    )
    assert best in candidates and built[-1] == (best[0], {best[1]})
    refitted = search.best_estimator_.named_steps["clf"]
    assert (refitted.filters, refitted.multilevel_bn) == best

    # Groups went by patient: each fold's fit held out validation patients from its
    # own training patients only (never a test patient), then the refit from all.
    folds = _training_patients(flat, y, groups, GroupKFold(n_splits=2))
    assert len(_SplitSpy.seen) == len(seen_by_fit) == 9
    assert None not in _SplitSpy.seen
    for (train, valid), patients in zip(
        _SplitSpy.seen, folds * 4 + [frozenset(groups)], strict=True
    ):
        assert not train & valid and train | valid == patients
    # the refitted pipeline predicts every row it is given
    assert search.predict(flat).shape == (len(X),)


def test_randomized_search_on_first_class_params(patches):
    X, y, groups = patches
    search = RandomizedSearchCV(
        tiny(max_epochs=1),
        {"dropout": uniform(0, 0.5), "head_units": [(4,), (8, 8)]},
        n_iter=2,
        cv=GroupKFold(n_splits=2),
        random_state=0,
    ).fit(X, y, groups=groups)
    drawn = [params["dropout"] for params in search.cv_results_["params"]]
    assert len(set(drawn)) == 2
    # The drawn value reaches the refitted network's dropout layers.
    dropouts = [
        m.p
        for m in search.best_estimator_.module_.modules()
        if isinstance(m, nn.Dropout)
    ]
    assert dropouts and set(dropouts) == {search.best_params_["dropout"]}


def test_gridsearch_with_metadata_routing_hands_groups_to_the_split(patches):
    X, y, groups = patches
    _SplitSpy.seen = []
    with sklearn.config_context(enable_metadata_routing=True):
        search = GridSearchCV(
            tiny(max_epochs=1, train_split=_SplitSpy(0.25)),
            {"dropout": [0.1]},
            cv=GroupKFold(n_splits=2),
        )
        search.fit(X, y, groups=groups)
    # Two folds of 4 patients, then the refit on all 8: patients, not patches.
    assert None not in _SplitSpy.seen
    assert [len(train | valid) for train, valid in _SplitSpy.seen] == [4, 4, 8]
    # and without routing, the split never sees them
    _SplitSpy.seen = []
    search.fit(X, y, groups=groups)
    assert _SplitSpy.seen == [None, None, None]


def test_cross_validate_and_cross_val_predict(make, patches):
    X, y, groups = patches
    cv = GroupKFold(n_splits=2)
    scores = cross_validate(
        make(max_epochs=1), X, y, groups=groups, cv=cv, scoring="roc_auc"
    )
    assert len(scores["test_score"]) == 2
    proba = cross_val_predict(
        make(max_epochs=1), X, y, groups=groups, cv=cv, method="predict_proba"
    )
    assert proba.shape == (len(X), 2)


def _fewer_idc(y):
    y = y.copy()
    y[:24] = 0  # 52 non-IDC, 28 IDC
    return y


@pytest.mark.parametrize(
    "sampler, counts",
    [
        (RandomUnderSampler(random_state=0), (28, 28)),
        (RandomOverSampler(random_state=0), (52, 52)),
        (SMOTE(random_state=0, k_neighbors=3), (52, 52)),
    ],
    ids=["under", "over", "smote"],
)
def test_imblearn_pipeline_on_flattened_patches(sampler, counts, patches, seen_by_fit):
    X, y, _ = patches
    flat, y = X.reshape(len(X), -1), _fewer_idc(y)
    clf = tiny(train_split=None, max_epochs=1, resample=None, callbacks=[_SeenByFit()])
    pipe = ImbPipeline([("balance", sampler), ("clf", clf)]).fit(flat, y)
    # The network trained on the sampler's output, and on nothing else.
    (seen,) = seen_by_fit
    Xr, yr = clone(sampler).fit_resample(flat, y)
    assert seen["counts"] == counts == tuple(np.bincount(yr))
    np.testing.assert_array_equal(seen["X"], Xr)
    # Predictions skip the sampler: one per original row, the network's own.
    predicted = pipe.predict(flat)
    assert predicted.shape == (len(X),)
    np.testing.assert_array_equal(predicted, pipe.named_steps["clf"].predict(flat))


@pytest.mark.parametrize("kind", ["under", "over"])
def test_imblearn_pipeline_with_patch_resampler_on_4d(kind, patches, seen_by_fit):
    X, y, groups = patches
    y = _fewer_idc(y)
    clf = tiny(train_split=None, max_epochs=1, resample=None, callbacks=[_SeenByFit()])
    pipe = ImbPipeline(
        [
            ("balance", PatchResampler(kind, random_state=0, patch_shape=(16, 16, 3))),
            ("clf", clf),
        ]
    ).fit(X, y)
    (seen,) = seen_by_fit
    assert seen["counts"] == {"under": (28, 28), "over": (52, 52)}[kind]
    # whole stored patches, picked by index: uint8 as given, none copied to float
    assert seen["dtype"] == np.uint8
    kept = pipe.named_steps["balance"].sample_indices_
    np.testing.assert_array_equal(seen["X"], X[kept].reshape(len(kept), -1))
    proba = pipe.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_array_equal(proba, pipe.named_steps["clf"].predict_proba(X))

    # In a grouped search, each fold's training part is balanced on its own.
    seen_by_fit.clear()
    cv = GroupKFold(2)
    search = GridSearchCV(pipe, {"clf__dropout": [0.1, 0.4]}, cv=cv)
    search.fit(X, y, groups=groups)
    balance = min if kind == "under" else max
    expected = [
        (int(balance(np.bincount(y[train]))),) * 2
        for train, _ in cv.split(X, y, groups)
    ]
    assert [fit["counts"] for fit in seen_by_fit] == [
        *expected * 2,
        seen["counts"],
    ]
    assert (
        search.best_estimator_.named_steps["clf"].dropout
        == (search.best_params_["clf__dropout"])
    )


class _StartingWeights(Callback):
    """Records the network's weights as each training run begins, across fits."""

    def __init__(self):
        self.seen = []

    def on_train_begin(self, net, **kwargs):
        self.seen.append(_weights(net))


def _weights(clf):
    return {k: v.detach().clone() for k, v in clf.module_.state_dict().items()}


def _same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _train_twice(patches, method, **params):
    """Fit or partial_fit twice: the weights each call began and ended with."""
    X, y, _ = patches
    starts = _StartingWeights()
    clf = tiny(train_split=None, callbacks=[starts], **params)
    ends = [_weights(getattr(clf, method)(X, y)) for _ in range(2)]
    return clf, starts.seen, ends


def test_warm_start_continues_from_the_first_fit(patches):
    clf, starts, ends = _train_twice(patches, "fit", max_epochs=1, warm_start=True)
    # The second fit began where the first ended, and trained on from there.
    assert _same_weights(starts[1], ends[0])
    assert not _same_weights(ends[1], ends[0])
    assert len(clf.history) == 2
    # Two warm fits are one fit of two epochs' worth of partial fits.
    X, y, _ = patches
    twice = tiny(train_split=None, max_epochs=1).partial_fit(X, y).partial_fit(X, y)
    assert _same_weights(_weights(twice), ends[1])


def test_without_warm_start_a_second_fit_starts_afresh(patches):
    clf, starts, ends = _train_twice(patches, "fit", max_epochs=1)
    # Re-initialised with the same seed: the same start, the same end.
    assert _same_weights(starts[1], starts[0])
    assert not _same_weights(starts[1], ends[0])
    assert _same_weights(ends[1], ends[0])
    assert len(clf.history) == 1


def test_partial_fit_keeps_the_weights(patches):
    clf, starts, ends = _train_twice(patches, "partial_fit", max_epochs=2)
    assert _same_weights(starts[1], ends[0])
    assert not _same_weights(ends[1], ends[0])
    assert len(clf.history) == 4


def test_partial_fit_learns_every_class_from_classes(patches):
    X, y, _ = patches
    idc = y == 1
    # A first batch of IDC patches only (nothing to over-sample): the other class
    # comes from classes.
    clf = tiny(train_split=None, max_epochs=1, resample=None).partial_fit(
        X[idc][:10], np.full(10, "IDC"), classes=["IDC", "non-IDC"]
    )
    assert clf.classes_.tolist() == ["IDC", "non-IDC"]
    assert clf.predict_proba(X).shape == (len(X), 2)


# -- bad input --


@pytest.mark.parametrize(
    "X, match",
    [
        (np.zeros((4, 16, 16), np.uint8), "3-D .* X\\[None\\]"),
        (np.zeros((4, 32, 32, 3), np.uint8), r"shape \(32, 32, 3\); expected"),
        (np.zeros((4, 3, 16, 16), np.uint8), "channels-first"),
        (np.zeros((4, 10)), "10 features per row"),
        (np.zeros((0, 16, 16, 3)), "0 samples"),
        (np.full((4, 16, 16, 3), np.nan), "NaN or infinity"),
        (np.zeros((4, 16, 16, 3), dtype=complex), "dtype complex"),
        (np.array([["a"] * 768] * 4), "real numbers"),
    ],
)
def test_bad_X_is_named(make, X, match):
    with pytest.raises(ValueError, match=match):
        make().fit(X, np.arange(len(X)) % 2)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"normalize": "minmax"}, r"'normalize' parameter .* among .*'minmax'"),
        ({"class_weight": "auto"}, r"'class_weight' parameter .*'auto'"),
        ({"precision": "fp8"}, r"'precision' parameter .*'bfloat16'.*'fp8'"),
        ({"tta": "yes"}, r"'tta' parameter .* 'bool'.*'yes'"),
        ({"lr": 0}, r"'lr' parameter .* float in the range \(0.0, inf\)"),
        ({"batch_size": 0}, r"'batch_size' parameter .* range \[1, inf\)"),
        ({"patch_shape": (16, 16)}, "patch_shape must be a tuple"),
        ({"device": "tpu"}, "device must be"),
    ],
)
def test_bad_params_are_named(params, match, patches):
    X, y, _ = patches
    with pytest.raises(ValueError, match=match):
        tiny(**params).fit(X, y)


def test_bad_y_and_groups(make, patches):
    X, y, groups = patches
    with pytest.raises(ValueError, match="different lengths"):
        make().fit(X, y[:-1])
    with pytest.raises(ValueError, match="at least 2 classes"):
        make().fit(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match="Unknown label type"):
        make().fit(X, np.linspace(0, 1, len(X)))
    with pytest.raises(ValueError, match="groups must hold one patient id per patch"):
        make().fit(X, y, groups=groups[:-1])


def test_predict_before_fit(make):
    with pytest.raises(NotInitializedError):
        make().predict(np.zeros((2, 16, 16, 3), np.uint8))


def test_predict_checks_shape(fitted):
    with pytest.raises(ValueError, match="expected patch_shape"):
        fitted.predict(np.zeros((2, 50, 50, 3), np.uint8))


# -- GPU --


@requires_cuda
def test_auto_device_trains_on_gpu(make, patches):
    X, y, groups = patches
    clf = make().fit(X, y, groups=groups)
    assert clf.device_ == "cuda" and clf.get_params()["device"] == "auto"
    assert next(clf.module_.parameters()).is_cuda
    assert clf.predict_proba(X).shape == (len(X), 2)


@requires_cuda
def test_gpu_model_unpickles_in_a_cpu_only_process(make, tmp_path, patches):
    X, y, groups = patches
    clf = make().fit(X, y, groups=groups)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "proba.npy", clf.predict_proba(X))
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(clf))
    code = f"""
import pickle, warnings, numpy as np, torch
assert not torch.cuda.is_available()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    clf = pickle.loads(open({str(tmp_path / "model.pkl")!r}, "rb").read())
assert clf.device_ == "cpu", clf.device_
X = np.load({str(tmp_path / "X.npy")!r})
expected = np.load({str(tmp_path / "proba.npy")!r})
np.testing.assert_allclose(clf.predict_proba(X), expected, atol=1e-4)
"""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_no_warnings_in_a_plain_fit(make, patches):
    X, y, groups = patches
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make().fit(X, y, groups=groups).predict(X)


def test_predictions_do_not_depend_on_batching_or_order(fitted, patches):
    X, _, _ = patches
    full = fitted.predict_proba(X)
    np.testing.assert_allclose(fitted.predict_proba(X[5:17]), full[5:17], atol=1e-5)
    order = np.random.default_rng(0).permutation(len(X))
    np.testing.assert_allclose(fitted.predict_proba(X[order]), full[order], atol=1e-5)
    one_by_one = clone(fitted).set_params(batch_size=1)
    one_by_one.initialize()
    one_by_one.module_.load_state_dict(fitted.module_.state_dict())
    np.testing.assert_allclose(one_by_one.predict_proba(X[:6]), full[:6], atol=1e-5)


# -- the class as a skorch user reads it (issue 25) --


def test_the_estimator_is_skorch_s_class_plus_one_level():
    # NeuralNetClassifier's chain is 8 classes long; no mixin of its own.
    assert len(PatchNetClassifier.__mro__) <= 10
    assert PatchNetClassifier.__bases__ == (NeuralNetClassifier,)
    assert "predict_proba" in vars(PatchNetClassifier)
    owners = [cls for cls in PatchNetClassifier.__mro__ if "predict_proba" in vars(cls)]
    assert owners[0] is PatchNetClassifier and all(
        cls.__module__.startswith(("skorch", "sklearn")) for cls in owners[1:]
    )


def test_no_context_variable_carries_state_through_skorch():
    package = Path(idc_sklearn.__file__).parent
    sources = {path: path.read_text() for path in package.rglob("*.py")}
    assert not [path for path, text in sources.items() if "ContextVar" in text]
    assert not [path for path, text in sources.items() if "contextvars" in text]


# -- issue 18's bugs: each test failed before its fix --


def test_hed_sigma_is_a_parameter_that_reaches_the_jitter():
    X, y, groups = make_patches(n=48, n_patients=4)
    base = {**TINY, "max_epochs": 1, "augment": "hed", "train_split": None}
    clf = MLBNInceptionClassifier(**base)
    assert clf.get_params()["hed_sigma"] == 0.05
    weak = MLBNInceptionClassifier(**base, hed_sigma=0.0).fit(X, y)
    strong = clf.set_params(hed_sigma=0.5).fit(X, y)
    assert not np.allclose(weak.predict_proba(X), strong.predict_proba(X))
    with pytest.raises(ValueError, match="'hed_sigma' parameter"):
        MLBNInceptionClassifier(**base, hed_sigma=1.5).fit(X, y)


def test_fit_leaves_the_parameters_as_given(make, patches):
    """What sklearn's check_dont_overwrite_parameters asks, on patches."""
    X, y, groups = patches
    clf = make()
    before = {k: v for k, v in clf.get_params(deep=False).items()}
    clf.fit(X, y, groups=groups)
    after = clf.get_params(deep=False)
    assert after.keys() == before.keys()
    assert all(after[k] is before[k] for k in before)
    public = {k for k in vars(clf) if not k.startswith("_") and not k.endswith("_")}
    assert public <= set(before) | {"classes"}

"""The paper's training recipe: per-epoch class balancing, initialisation and
training-time augmentation, on tiny networks. The recipe's callbacks (BatchNorm
recalibration, the validation scores) are tested in test_callbacks.py."""

import numpy as np
import pytest
import torch
from conftest import TINY, make_patches
from imblearn.pipeline import Pipeline as ImbPipeline
from skorch.callbacks import Callback

from idc_sklearn import MLBNInception, MLBNInceptionClassifier, PatchResampler
from idc_sklearn.resampling import EpochResampler


def tiny(**kwargs):
    return MLBNInceptionClassifier(**{**TINY, **kwargs})


class BatchRecorder(Callback):
    """Records the labels and patient marks of every batch, per epoch and side."""

    def initialize(self):
        self.epochs = []
        return self

    def on_epoch_begin(self, net, **kwargs):
        self.epochs.append({True: ([], []), False: ([], [])})

    def on_batch_begin(self, net, batch=None, training=None, **kwargs):
        X, y = batch
        labels, marks = self.epochs[-1][training]
        labels.append(y.numpy().copy())
        marks.append(X[:, 0, 0, 0].numpy().copy())

    def side(self, epoch, training):
        labels, marks = self.epochs[epoch][training]
        return np.concatenate(labels), np.concatenate(marks)


@pytest.fixture(scope="module")
def imbalanced():
    """60 non-IDC, 20 IDC patches of 8 patients; pixel (0, 0, 0) marks the patient."""
    X, _, groups = make_patches(n=80)
    y = np.array([0] * 60 + [1] * 20)
    rng = np.random.default_rng(1)
    y = rng.permutation(y)
    patient = np.repeat(np.arange(8), 10)
    X = X.copy()
    X[:, 0, 0, 0] = patient
    return X, y, groups, patient


# -- resample --


@pytest.mark.parametrize("kind", ["over", "under"])
def test_resample_balances_every_epoch_and_leaves_validation(kind, imbalanced):
    X, y, groups, patient = imbalanced
    recorder = BatchRecorder()
    clf = tiny(resample=kind, max_epochs=3, callbacks=[("recorder", recorder)])
    clf.fit(X, y, groups=groups)
    train_idx, valid_idx = clf.train_split.split_indices(y, groups)
    counts = np.bincount(y[train_idx], minlength=2)
    target = counts.max() if kind == "over" else counts.min()
    draws = []
    for epoch in range(3):
        labels, marks = recorder.side(epoch, training=True)
        assert np.bincount(labels, minlength=2).tolist() == [target, target]
        # No validation patient is ever trained on.
        assert set(marks) <= set(patient[train_idx])
        valid_labels, valid_marks = recorder.side(epoch, training=False)
        assert (
            np.bincount(valid_labels, minlength=2).tolist()
            == np.bincount(y[valid_idx], minlength=2).tolist()
        )
        assert set(valid_marks) == set(patient[valid_idx])
        assert not set(valid_marks) & set(marks)
        draws.append(np.bincount(marks, minlength=8))
    # A fresh draw each epoch: which patients' patches repeat changes.
    assert any((draws[0] != d).any() for d in draws[1:])


def test_resample_none_trains_on_the_raw_ratio(imbalanced):
    X, y, groups, _ = imbalanced
    recorder = BatchRecorder()
    clf = tiny(resample=None, max_epochs=1, callbacks=[("recorder", recorder)])
    clf.fit(X, y, groups=groups)
    train_idx, _ = clf.train_split.split_indices(y, groups)
    labels, _ = recorder.side(0, training=True)
    assert np.bincount(labels).tolist() == np.bincount(y[train_idx]).tolist()


def test_resample_is_seeded(imbalanced):
    X, y, groups, _ = imbalanced

    def labels_seen(seed):
        recorder = BatchRecorder()
        tiny(
            resample="over",
            max_epochs=2,
            random_state=seed,
            callbacks=[("recorder", recorder)],
        ).fit(X, y, groups=groups)
        return [recorder.side(e, True)[1] for e in range(2)]

    first, again, other = labels_seen(0), labels_seen(0), labels_seen(1)
    assert all((a == b).all() for a, b in zip(first, again, strict=True))
    assert any((a != b).any() for a, b in zip(first, other, strict=True))


def test_resample_without_validation_split(imbalanced):
    X, y, _, _ = imbalanced
    recorder = BatchRecorder()
    tiny(resample="over", train_split=None, callbacks=[("recorder", recorder)]).fit(
        X, y
    )
    labels, _ = recorder.side(0, training=True)
    assert np.bincount(labels).tolist() == [60, 60]


def test_epoch_resampler_draws_afresh_and_reproducibly():
    y = np.array([0] * 30 + [1] * 5)
    first = EpochResampler(y, "over", random_state=3)
    second = EpochResampler(y, "over", random_state=3)
    epochs = [list(first) for _ in range(3)]
    assert epochs == [list(second) for _ in range(3)]
    assert epochs[0] != epochs[1]
    for indices in epochs:
        assert len(indices) == len(first) == 60
        assert np.bincount(y[indices]).tolist() == [30, 30]
        # Every original patch is kept; only the minority repeats.
        assert set(indices) == set(range(35))
    under = list(EpochResampler(y, "under", shuffle=False, random_state=0))
    assert np.bincount(y[under]).tolist() == [5, 5]
    with pytest.raises(ValueError, match="resample must be one of"):
        EpochResampler(y, "smote")


def test_bad_resample_is_named(imbalanced):
    X, y, groups, _ = imbalanced
    with pytest.raises(ValueError, match=r"'resample' parameter .*'over'.*'twice'"):
        tiny(resample="twice").fit(X, y, groups=groups)


def test_sampler_in_pipeline_fails_first_and_names_resample(imbalanced):
    X, y, groups, _ = imbalanced
    pipe = ImbPipeline(
        [
            ("ros", PatchResampler("over", random_state=0, patch_shape=(16, 16, 3))),
            ("clf", tiny()),
        ]
    )
    with pytest.raises(ValueError, match=r"resample=.over") as info:
        pipe.fit(X, y, clf__groups=groups)
    assert "shape (120,); got shape (80,)" in str(info.value)
    # Nothing was built: the error came before any work.
    assert not hasattr(pipe.named_steps["clf"], "module_")


# -- initialisation --


@pytest.mark.parametrize("init", ["glorot", "he"])
def test_init_modes_set_weight_scale_and_zero_biases(init):
    torch.manual_seed(0)
    net = MLBNInception(filters=(12, 12), head_units=(32,), patch_size=16, init=init)
    conv = net.features[0].branch1x1[0]
    fan_in, fan_out = conv.weight.shape[1], conv.weight.shape[0]
    expected = 2 / (fan_in + fan_out) if init == "glorot" else 2 / fan_in
    assert conv.weight.var().item() == pytest.approx(expected, rel=0.5)
    assert all(
        float(m.bias.detach().abs().max()) == 0
        for m in net.modules()
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))
    )
    torch.manual_seed(0)
    default = MLBNInception(
        filters=(12, 12), head_units=(32,), patch_size=16, init="torch"
    )
    assert float(default.features[0].branch1x1[0].bias.detach().abs().max()) > 0


def test_init_reaches_the_network_and_bad_init_is_named(imbalanced):
    X, y, groups, _ = imbalanced
    clf = tiny(init="torch", max_epochs=1, train_split=None).fit(X, y)
    assert clf.get_params()["init"] == "torch"
    with pytest.raises(ValueError, match=r"'init' parameter .*'glorot'.*'xavier'"):
        tiny(init="xavier").fit(X, y, groups=groups)


def test_the_default_recipe_over_samples_glorot_initialised_without_augmenting(
    imbalanced,
):
    X, y, _, _ = imbalanced
    recorder = BatchRecorder()
    default = tiny(train_split=None, max_epochs=1, callbacks=[("recorder", recorder)])
    default.fit(X, y)
    labels, _ = recorder.side(0, True)
    assert np.bincount(labels).tolist() == [60, 60]  # the minority over-sampled
    # The defaults train as the paper's recipe spelled out does, weight for weight.
    spelled_out = tiny(
        train_split=None, max_epochs=1, resample="over", init="glorot", augment=None
    ).fit(X, y)
    for a, b in zip(
        default.module_.parameters(), spelled_out.module_.parameters(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


# -- augmentation --


def test_augment_is_seeded_and_training_only(imbalanced):
    X, y, groups, _ = imbalanced
    fits = [
        tiny(augment=augment, random_state=0).fit(X, y, groups=groups)
        for augment in ("all", "all", None)
    ]
    a, b, plain = (clf.predict_proba(X) for clf in fits)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, plain)
    # Prediction is deterministic: no augmentation outside training.
    np.testing.assert_array_equal(fits[0].predict_proba(X), a)
    with pytest.raises(ValueError, match=r"'augment' parameter .*'dihedral'.*'flip'"):
        tiny(augment="flip").fit(X, y, groups=groups)

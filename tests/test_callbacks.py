"""The recipe's callbacks (``callbacks.py``): BatchNorm recalibration on the final
weights, the validation scores read from the dataset, and WeightAveraging: the
fitted network is the average, training goes on from the training weights, and a
checkpoint resumes it exactly."""

import numpy as np
import pytest
import torch
from conftest import TINY, Crash, make_patches
from skorch.callbacks import Callback

from idc_sklearn import MLBNInceptionClassifier, WeightAveraging
from idc_sklearn.callbacks import BatchNormRecalibration, recalibrate_batchnorm


def tiny(**kwargs):
    return MLBNInceptionClassifier(**{**TINY, **kwargs})


# -- BatchNorm recalibration --


def _head_inputs(clf, X):
    """What each BatchNorm of the head sees in eval mode, over X."""
    module = clf.module_.eval()
    with torch.no_grad():
        x = torch.from_numpy(X).permute(0, 3, 1, 2).float() / 255
        features = module.flatten(module.features(x))
        return module.head[0](features)


def test_recalibration_measures_the_final_weights(patches):
    X, y, _ = patches
    clf = tiny(train_split=None, resample=None, batch_size=80, max_epochs=2).fit(X, y)
    seen = _head_inputs(clf, X)
    norm = clf.module_.head[1]
    np.testing.assert_allclose(norm.running_mean, seen.mean(0), rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(norm.running_var, seen.var(0), rtol=1e-2, atol=1e-5)
    stale = tiny(
        train_split=None,
        resample=None,
        batch_size=80,
        max_epochs=2,
        callbacks__bn_recalibration=None,
    ).fit(X, y)
    stale_norm = stale.module_.head[1]
    assert not np.allclose(
        stale_norm.running_mean, _head_inputs(stale, X).mean(0), rtol=1e-2
    )


class CountingRecalibration(BatchNormRecalibration):
    def initialize(self):
        self.calls = 0
        return super().initialize()

    def recalibrate(self, net):
        self.calls += 1
        super().recalibrate(net)


@pytest.mark.parametrize("split", [True, False])
def test_recalibration_before_each_validation_or_once_at_the_end(split, patches):
    X, y, groups = patches
    counter = CountingRecalibration()
    kwargs = {} if split else {"train_split": None}
    tiny(max_epochs=3, callbacks__bn_recalibration=counter, **kwargs).fit(
        X, y, groups=groups
    )
    assert counter.calls == (3 if split else 1)
    assert counter._dataset is None  # no training data kept after fit


def test_recalibration_subset_and_bad_max_patches(patches):
    X, y, groups = patches
    tiny(callbacks__bn_recalibration__max_patches=16).fit(X, y, groups=groups)
    with pytest.raises(ValueError, match="max_patches must be None or an int"):
        tiny(callbacks__bn_recalibration__max_patches=1).fit(X, y, groups=groups)


def test_recalibrate_batchnorm_keeps_dropout_off_and_restores_modes():
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(4, 4), torch.nn.Dropout(0.5), torch.nn.BatchNorm1d(4)
    ).train()
    batches = [torch.randn(16, 4) for _ in range(3)]
    assert recalibrate_batchnorm(net, batches)
    with torch.no_grad():
        expected = torch.cat([net[0](b) for b in batches]).mean(0)
    torch.testing.assert_close(net[2].running_mean, expected)
    assert net.training and net[1].training
    assert net[2].momentum == 0.1
    assert not recalibrate_batchnorm(torch.nn.Linear(2, 2), batches)


# -- validation scores --


def test_valid_bacc_reads_labels_from_the_dataset_without_caching(patches):
    X, y, groups = patches
    cached = tiny(max_epochs=1).fit(X, y, groups=groups)
    uncached = tiny(max_epochs=1, callbacks__valid_bacc__use_caching=False)
    uncached.fit(X, y, groups=groups)
    assert uncached.history[:, "valid_bacc"] == cached.history[:, "valid_bacc"]


# -- weight averaging --

EPOCHS = 3


class EpochWeights(Callback):
    """Keeps a copy of the network's parameters at the end of each epoch."""

    def initialize(self):
        self.weights = []
        return self

    def on_epoch_end(self, net, **kwargs):
        self.weights.append(
            {k: p.detach().clone() for k, p in net.module_.named_parameters()}
        )


@pytest.fixture(scope="module")
def data():
    return make_patches(n=48, n_patients=6)


def tiny_without_early_stopping(**kwargs):
    return MLBNInceptionClassifier(
        **{
            **TINY,
            "max_epochs": EPOCHS,
            "callbacks__early_stopping": None,
            **kwargs,
        }
    )


def params(net):
    return dict(net.module_.named_parameters())


def test_swa_is_the_mean_of_the_epochs_training_weights(data):
    X, y, groups = data
    recorder = EpochWeights()
    plain = tiny_without_early_stopping(callbacks=[("weights", recorder)]).fit(
        X, y, groups=groups
    )
    averaged = tiny_without_early_stopping(
        callbacks__weight_averaging=WeightAveraging("swa")
    ).fit(X, y, groups=groups)
    assert dict(averaged.callbacks_)["weight_averaging"].n_averaged_ == EPOCHS
    # The mean of the plain fit's epochs: so each epoch trained on from the training
    # weights, not from the average that was validated in between.
    for name, p in params(averaged).items():
        mean = torch.stack([w[name] for w in recorder.weights]).mean(dim=0)
        torch.testing.assert_close(p, mean, rtol=1e-5, atol=1e-6, msg=name)
    assert not torch.equal(
        params(plain)["head.0.weight"], params(averaged)["head.0.weight"]
    )


def test_ema_updates_after_every_step_and_is_validated(data):
    X, y, groups = data
    clf = tiny_without_early_stopping(
        callbacks__weight_averaging=WeightAveraging("ema", decay=0.9)
    ).fit(X, y, groups=groups)
    callback = dict(clf.callbacks_)["weight_averaging"]
    train_steps = sum(
        1 for row in clf.history for batch in row["batches"] if "train_loss" in batch
    )
    assert train_steps > EPOCHS
    assert callback.n_averaged_ == train_steps
    for name, p in params(clf).items():
        torch.testing.assert_close(p, callback.averaged_[name], msg=name)


def test_start_epoch_leaves_the_first_epochs_out(data):
    X, y, groups = data
    clf = tiny_without_early_stopping(
        callbacks__weight_averaging=WeightAveraging("swa", start_epoch=EPOCHS)
    ).fit(X, y, groups=groups)
    assert dict(clf.callbacks_)["weight_averaging"].n_averaged_ == 1


def test_a_fit_with_weight_averaging_resumes_exactly(data, tmp_path):
    X, y, groups = data
    settings = {"callbacks__weight_averaging": WeightAveraging("ema", decay=0.9)}
    reference = tiny_without_early_stopping(**settings).fit(X, y, groups=groups)
    with pytest.raises(RuntimeError, match="crash"):
        tiny_without_early_stopping(
            **settings, checkpoint_dir=tmp_path, callbacks=[("crash", Crash(2))]
        ).fit(X, y, groups=groups)
    resumed = tiny_without_early_stopping(
        callbacks__weight_averaging=WeightAveraging("ema", decay=0.9),
        checkpoint_dir=tmp_path,
    ).fit(X, y, groups=groups)
    assert len(resumed.history) == EPOCHS
    for name, p in params(reference).items():
        torch.testing.assert_close(params(resumed)[name], p, rtol=0, atol=0, msg=name)


def test_without_a_validation_split_the_average_replaces_the_weights(data):
    X, y, groups = data
    clf = tiny_without_early_stopping(
        train_split=None, callbacks__weight_averaging=WeightAveraging("swa")
    ).fit(X, y)
    callback = dict(clf.callbacks_)["weight_averaging"]
    assert callback.n_averaged_ == EPOCHS
    for name, p in params(clf).items():
        torch.testing.assert_close(p, callback.averaged_[name], msg=name)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "mean"}, r"callbacks__weight_averaging__method must be one of"),
        ({"decay": 1.0}, r"callbacks__weight_averaging__decay must be a float in"),
        ({"start_epoch": 0}, r"callbacks__weight_averaging__start_epoch must be an"),
    ],
)
def test_bad_settings_are_refused_with_the_parameter_named(data, kwargs, message):
    X, y, groups = data
    with pytest.raises(ValueError, match=message):
        tiny_without_early_stopping(
            callbacks__weight_averaging=WeightAveraging(**kwargs)
        ).fit(X, y, groups=groups)


def test_it_is_a_named_default_callback_that_is_off():
    clf = MLBNInceptionClassifier()
    assert clf.get_params()["callbacks__weight_averaging"] is None
    names = [name for name, _ in clf.initialize().callbacks_]
    assert "weight_averaging" not in names

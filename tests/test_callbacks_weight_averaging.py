"""WeightAveraging: the fitted network is the average, training goes on from the
training weights, and a checkpoint resumes it exactly."""

import pytest
import torch
from conftest import TINY, make_patches
from skorch.callbacks import Callback

from idc_sklearn import MLBNInceptionClassifier, WeightAveraging

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


class Crash(Callback):
    """Fails at the end of one epoch, as a crash in the middle of a fit."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epoch:
            raise RuntimeError("crash")


@pytest.fixture(scope="module")
def data():
    return make_patches(n=48, n_patients=6)


def tiny(**kwargs):
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
    plain = tiny(callbacks=[("weights", recorder)]).fit(X, y, groups=groups)
    averaged = tiny(callbacks__weight_averaging=WeightAveraging("swa")).fit(
        X, y, groups=groups
    )
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
    clf = tiny(callbacks__weight_averaging=WeightAveraging("ema", decay=0.9)).fit(
        X, y, groups=groups
    )
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
    clf = tiny(
        callbacks__weight_averaging=WeightAveraging("swa", start_epoch=EPOCHS)
    ).fit(X, y, groups=groups)
    assert dict(clf.callbacks_)["weight_averaging"].n_averaged_ == 1


def test_a_fit_with_weight_averaging_resumes_exactly(data, tmp_path):
    X, y, groups = data
    settings = {"callbacks__weight_averaging": WeightAveraging("ema", decay=0.9)}
    reference = tiny(**settings).fit(X, y, groups=groups)
    with pytest.raises(RuntimeError, match="crash"):
        tiny(**settings, checkpoint_dir=tmp_path, callbacks=[("crash", Crash(2))]).fit(
            X, y, groups=groups
        )
    resumed = tiny(
        callbacks__weight_averaging=WeightAveraging("ema", decay=0.9),
        checkpoint_dir=tmp_path,
    ).fit(X, y, groups=groups)
    assert len(resumed.history) == EPOCHS
    for name, p in params(reference).items():
        torch.testing.assert_close(params(resumed)[name], p, rtol=0, atol=0, msg=name)


def test_without_a_validation_split_the_average_replaces_the_weights(data):
    X, y, groups = data
    clf = tiny(
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
        tiny(callbacks__weight_averaging=WeightAveraging(**kwargs)).fit(
            X, y, groups=groups
        )


def test_it_is_a_named_default_callback_that_is_off():
    clf = MLBNInceptionClassifier()
    assert clf.get_params()["callbacks__weight_averaging"] is None
    names = [name for name, _ in clf.initialize().callbacks_]
    assert "weight_averaging" not in names

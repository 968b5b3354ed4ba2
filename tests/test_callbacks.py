"""The recipe's callbacks (``callbacks.py``): BatchNorm recalibration on the final
weights, and the validation scores read from the dataset."""

import numpy as np
import pytest
import torch
from conftest import TINY

from idc_sklearn import MLBNInceptionClassifier
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

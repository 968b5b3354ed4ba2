"""What is particular to the two CNN baselines (their shared contract is tested in
test_classifier.py and test_sklearn_checks.py)."""

import numpy as np
import pytest
import torch
from torch import nn

from idc_sklearn import (
    CruzRoaCNN,
    CruzRoaCNNClassifier,
    JanowczykCNN,
    JanowczykCNNClassifier,
)


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def test_janowczyk_network_matches_the_caffe_file():
    net = JanowczykCNN()
    assert n_params(net) == 145_058
    assert net.classifier[1].in_features == 1024  # 64 x 4 x 4 after 32-16-8-4
    kinds = [type(m) for m in net.features]
    assert kinds == [
        nn.Conv2d, nn.MaxPool2d, nn.ReLU,
        nn.Conv2d, nn.ReLU, nn.AvgPool2d,
        nn.Conv2d, nn.ReLU, nn.AvgPool2d,
    ]  # fmt: skip
    assert all(m.ceil_mode for m in net.features if hasattr(m, "ceil_mode"))
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.Dropout)) for m in net.modules())
    assert net.features[0].weight.std().item() == pytest.approx(1e-4, rel=0.2)
    assert net.classifier[1].weight.std().item() == pytest.approx(0.1, rel=0.05)
    assert not net.features[0].bias.any()
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 2)


def test_cruz_roa_network_is_the_proposed_stand_in():
    net = CruzRoaCNN()
    convs = [m for m in net.features if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 32]
    assert all(c.kernel_size == (5, 5) for c in convs)
    assert sum(isinstance(m, nn.Tanh) for m in net.modules()) == 3
    assert net.classifier[1].out_features == 128
    # pure-white input in YUV with unit statistics
    rgb = torch.full((1, 3, 1, 1), 255.0)
    yuv = torch.einsum("oc,nchw->nohw", net.rgb_to_yuv, rgb).flatten()
    torch.testing.assert_close(yuv, torch.tensor([255.0, 0.0, 0.0]), atol=0.05, rtol=0)
    with pytest.raises(ValueError, match="in_channels must be 3"):
        CruzRoaCNN(in_channels=1)


def test_janowczyk_crop_is_rows_8_to_39_of_a_50_pixel_patch():
    X = np.zeros((4, 50, 50, 3), np.uint8)
    X[:, 8:40, 8:40] = 200
    clf = JanowczykCNNClassifier(
        max_epochs=1, train_split=None, verbose=0, random_state=0, rotate=False
    ).fit(X, np.array([0, 1, 0, 1]))
    # every pixel of the crop is the bright square: the mean image is flat 200
    np.testing.assert_allclose(clf.mean_image_, 200)
    torch.testing.assert_close(
        clf.module_.input_mean, torch.full((3, 32, 32), 200.0, device=clf.device_)
    )


def test_janowczyk_mean_image_is_that_of_the_rotation_doubled_set():
    X = np.zeros((2, 16, 16, 3), np.uint8)
    X[:, :, :8] = 100  # left half bright
    kw = dict(crop_size=16, patch_shape=(16, 16, 3), max_epochs=1, verbose=0)
    flat = JanowczykCNNClassifier(rotate=True, train_split=None, **kw)
    flat.fit(X, np.array([0, 1]))
    plain = JanowczykCNNClassifier(rotate=False, train_split=None, **kw)
    plain.fit(X, np.array([0, 1]))
    expected = (plain.mean_image_ + np.rot90(plain.mean_image_, axes=(0, 1))) / 2
    np.testing.assert_allclose(flat.mean_image_, expected)


def test_augmentation_only_while_training():
    X = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    y = np.tile([0, 1], 4)
    for clf in (
        JanowczykCNNClassifier(crop_size=32, patch_shape=(32, 32, 3)),
        CruzRoaCNNClassifier(patch_shape=(32, 32, 3)),
    ):
        clf.set_params(max_epochs=1, train_split=None, verbose=0, random_state=0)
        clf.fit(X, y)
        x = torch.from_numpy(X).to(clf.device_)
        clf.module_.eval()
        torch.testing.assert_close(clf.prepare_batch(x), clf.prepare_batch(x))
        clf.module_.train()
        torch.manual_seed(0)
        changed = [
            not torch.equal(clf.prepare_batch(x), clf.prepare_batch(x))
            for _ in range(5)
        ]
        assert any(changed)


def test_cruz_roa_standardises_yuv_with_training_statistics():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (64, 16, 16, 3), dtype=np.uint8)
    clf = CruzRoaCNNClassifier(
        patch_shape=(16, 16, 3), max_epochs=1, train_split=None, verbose=0
    ).fit(X, np.tile([0, 1], 32))
    yuv = (
        X.reshape(-1, 3).astype(np.float64) @ np.asarray(clf.module_.rgb_to_yuv.cpu()).T
    )
    np.testing.assert_allclose(clf.channel_mean_, yuv.mean(axis=0), atol=1e-4)
    np.testing.assert_allclose(clf.channel_std_, yuv.std(axis=0), atol=1e-4)


def test_the_sources_recipes_reach_the_optimiser_and_the_batches():
    # 50-pixel patches, as the sources trained on; more than one batch of 128.
    X = np.random.default_rng(0).integers(0, 256, (136, 50, 50, 3), dtype=np.uint8)
    y = np.tile([0, 1], 68)
    fitted = {}
    for name, cls in (("jan", JanowczykCNNClassifier), ("cruz", CruzRoaCNNClassifier)):
        clf = cls(max_epochs=1, train_split=None, verbose=0, random_state=0)
        fitted[name] = clf.fit(X, y)
        sizes = [b["train_batch_size"] for b in clf.history[-1, "batches"]]
        assert sizes == [128, 8], name
    jan, cruz = fitted["jan"], fitted["cruz"]
    (group,) = jan.optimizer_.param_groups
    assert isinstance(jan.optimizer_, torch.optim.Adagrad)
    assert (group["lr"], group["weight_decay"]) == (1e-3, 4e-3)
    assert jan.mean_image_.shape == (32, 32, 3)  # the 32-pixel crop
    (group,) = cruz.optimizer_.param_groups
    assert isinstance(cruz.optimizer_, torch.optim.SGD)
    assert (group["lr"], group["momentum"]) == (1e-2, 0.9)
    assert "Cruz-Roa-style" in CruzRoaCNNClassifier.__doc__


@pytest.mark.parametrize("crop", [np.int64(16), np.int32(24), np.uint8(32)])
def test_crop_size_takes_numpy_integers(crop):
    X = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    clf = JanowczykCNNClassifier(
        crop_size=crop, patch_shape=(32, 32, 3), max_epochs=1, verbose=0
    ).fit(X, [0, 1, 0, 1], groups=["a", "b", "c", "d"])
    assert clf.get_params()["crop_size"] is crop
    assert clf.mean_image_.shape == (crop, crop, 3)
    assert clf.predict_proba(X).shape == (4, 2)


@pytest.mark.parametrize("network", [JanowczykCNN, CruzRoaCNN])
def test_networks_take_a_numpy_integer_patch_size(network):
    net = network(patch_size=np.int64(24)).eval()
    assert net(torch.zeros(2, 3, 24, 24)).shape == (2, 2)


@pytest.mark.parametrize("crop", [8, 40, 32.0, True, np.float64(32)])
def test_bad_crop_size(crop):
    clf = JanowczykCNNClassifier(crop_size=crop, patch_shape=(32, 32, 3), verbose=0)
    with pytest.raises(ValueError, match="crop_size must be an int from 16"):
        clf.fit(np.zeros((4, 32, 32, 3), np.uint8), [0, 1, 0, 1])

"""precision=, tta=, inference=, the already-scaled warning, the per-epoch loss read."""

import pickle
import shutil
import warnings

import numpy as np
import pytest
import torch
from conftest import TINY, make_patches, requires_cuda
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback

from idc_sklearn import (
    MLBNInceptionClassifier,
    PatchNetClassifier,
    PatientValidSplit,
)
from idc_sklearn import precision as precision_module
from idc_sklearn._device import has_bfloat16_units
from idc_sklearn._inference import fold_batchnorm
from idc_sklearn.augmentation import dihedral_views


def _has_cpuinfo() -> bool:
    try:
        with open("/proc/cpuinfo"):
            return True
    except OSError:
        return False


def tiny(**kwargs):
    return MLBNInceptionClassifier(**{**TINY, "train_split": None, **kwargs})


@pytest.fixture(scope="module")
def data():
    return make_patches(n=48)


@pytest.fixture(scope="module")
def fitted(data):
    X, y, _ = data
    return tiny(max_epochs=1).fit(X, y)


# -- precision --


def test_bfloat16_trains_and_agrees_with_float32(data, fitted):
    X, y, _ = data
    clf = tiny(max_epochs=1, precision="bfloat16").fit(X, y)
    proba = clf.predict_proba(X)
    assert proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    # Same seed, same data: the weights differ only by the rounding of one epoch.
    np.testing.assert_allclose(proba, fitted.predict_proba(X), atol=0.05)
    assert clf.grad_scaler_ is None


def test_float16_trains_with_a_grad_scaler(data):
    X, y, _ = data
    clf = tiny(max_epochs=2, precision="float16").fit(X, y)
    assert isinstance(clf.grad_scaler_, torch.amp.GradScaler)
    assert np.isfinite(clf.history[:, "train_loss"]).all()
    assert clf.score(X, y) > 0.5


@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_precision_changes_the_forward_arithmetic(precision, data, fitted):
    X, _, _ = data
    reduced = fitted.set_params(precision=precision).predict_proba(X)
    full = fitted.set_params(precision="float32").predict_proba(X)
    assert not np.array_equal(reduced, full)
    np.testing.assert_allclose(reduced, full, atol=0.02)


@pytest.mark.parametrize("units", [True, False])
def test_auto_precision_is_bfloat16_only_where_the_device_has_units(
    units, data, fitted, monkeypatch
):
    X, _, _ = data
    asked = []

    def has_units(device_type):
        asked.append(device_type)
        return units

    monkeypatch.setattr(precision_module, "has_bfloat16_units", has_units)
    auto = fitted.set_params(precision="auto").predict_proba(X)
    expected = fitted.set_params(precision="bfloat16" if units else "float32")
    np.testing.assert_array_equal(auto, expected.predict_proba(X))
    assert set(asked) == {"cpu"}
    fitted.set_params(precision="float32")


def test_bfloat16_units_are_read_from_the_cpu():
    # The answer is the CPU's (lscpu's flags), and cached.
    flags = open("/proc/cpuinfo").read().split() if _has_cpuinfo() else None
    found = has_bfloat16_units("cpu")
    assert has_bfloat16_units("cpu") is found
    if flags is not None:
        assert found == any(f in flags for f in ("amx_tile", "avx512_bf16"))
    assert has_bfloat16_units("mps") is False


def test_float16_scales_the_loss(data):
    X, y, _ = data

    class Scales(Callback):
        def on_grad_computed(self, net, named_parameters, **kwargs):
            # Unscaled before callbacks see them: gradient norms of a real loss.
            norms = [p.grad.norm().item() for _, p in named_parameters]
            self.largest = max(norms)
            self.scale = net.grad_scaler_.get_scale()

    scales = Scales()
    tiny(max_epochs=1, precision="float16", callbacks=[scales]).fit(X, y)
    assert scales.scale > 1000  # the default initial scale is 65536
    assert 0 < scales.largest < 100


# -- test-time augmentation --


def test_dihedral_views_are_the_eight_symmetries():
    x = torch.arange(2 * 3 * 3 * 1).reshape(2, 3, 3, 1)
    views = list(dihedral_views(x, dims=(1, 2)))
    assert len(views) == 8
    assert len({v.contiguous().numpy().tobytes() for v in views}) == 8
    assert all(v.shape == x.shape for v in views)
    assert len(list(dihedral_views(torch.zeros((1, 2, 3, 1)), dims=(1, 2)))) == 4


def test_tta_averages_the_eight_views(data, fitted):
    X, _, _ = data
    plain = fitted.set_params(tta=False)
    views = dihedral_views(torch.from_numpy(X), dims=(1, 2))
    expected = np.mean(
        [plain.predict_proba(v.contiguous().numpy()) for v in views], axis=0
    )
    averaged = fitted.set_params(tta=True).predict_proba(X)
    fitted.set_params(tta=False)
    assert averaged.dtype == np.float32
    np.testing.assert_allclose(averaged, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(averaged.sum(axis=1), 1.0, rtol=1e-6)
    assert not np.allclose(averaged, plain.predict_proba(X))
    # A patch and its mirror image get the same averaged probabilities.
    mirrored = fitted.set_params(tta=True).predict_proba(X[:, :, ::-1])
    fitted.set_params(tta=False)
    np.testing.assert_allclose(mirrored, averaged, rtol=1e-5, atol=1e-6)


def test_tta_reads_the_data_once(data, fitted, monkeypatch):
    X, _, _ = data
    expected = fitted.set_params(tta=True).predict_proba(X)
    datasets = []
    get_dataset = MLBNInceptionClassifier.get_dataset

    def counted(self, X, y=None):
        datasets.append(X)
        return get_dataset(self, X, y)

    monkeypatch.setattr(MLBNInceptionClassifier, "get_dataset", counted)
    try:
        resident = fitted.set_params(data_on_device=True).predict_proba(X)
    finally:
        fitted.set_params(tta=False, data_on_device=False)
    # one dataset (one copy to the device), not one per view
    assert len(datasets) == 1 and datasets[0].shape == X.shape
    np.testing.assert_array_equal(resident, expected)


def test_tta_leaves_training_and_validation_alone(data):
    X, y, groups = data
    fits = [
        MLBNInceptionClassifier(**{**TINY, "tta": tta}).fit(X, y, groups=groups)
        for tta in (False, True)
    ]
    # Validation scores (and so early stopping) and the weights are those of a
    # fit without test-time augmentation.
    assert fits[0].history[:, "valid_bacc"] == fits[1].history[:, "valid_bacc"]
    for a, b in zip(
        fits[0].module_.parameters(), fits[1].module_.parameters(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


# -- the already-scaled warning --


def test_floats_in_unit_range_warn_with_scale(data, fitted):
    X, y, _ = data
    scaled = X.astype(np.float32) / 255
    with pytest.warns(UserWarning, match=r"floats in \[0, 1\].*normalize='scale'"):
        fitted.predict_proba(scaled)
    with pytest.warns(UserWarning, match="normalize=None"):
        tiny(max_epochs=1).fit(scaled, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fitted.predict_proba(X.astype(np.float32))
        tiny(max_epochs=1, normalize=None).fit(scaled, y)
        tiny(max_epochs=1, normalize="zscore").fit(scaled, y)


# -- one host synchronisation per epoch --


def test_batch_losses_are_floats_read_once_per_epoch(data):
    X, y, groups = data

    class Seen(Callback):
        def initialize(self):
            self.types = set()
            return self

        def on_batch_end(self, net, training=None, **kwargs):
            if training:
                self.types.add(type(net.history[-1, "batches", -1, "train_loss"]))

    seen = Seen()
    clf = MLBNInceptionClassifier(**{**TINY, "callbacks": [seen]}).fit(
        X, y, groups=groups
    )
    assert seen.types == {torch.Tensor}
    for epoch in clf.history:
        losses = [b["train_loss"] for b in epoch["batches"] if "train_loss" in b]
        sizes = [b["train_batch_size"] for b in epoch["batches"] if "train_loss" in b]
        assert all(type(v) is float for v in losses)
        assert epoch["train_batch_count"] == len(losses)
        assert epoch["train_loss"] == pytest.approx(np.average(losses, weights=sizes))
        valid = [b["valid_loss"] for b in epoch["batches"] if "valid_loss" in b]
        assert valid and all(type(v) is float for v in valid)


# -- data resident on the training device --


def test_data_on_device_gives_the_same_fit(data):
    X, y, groups = data
    fits = [
        MLBNInceptionClassifier(
            **{**TINY, "data_on_device": on_device, "resample": "over"}
        ).fit(X, y, groups=groups)
        for on_device in (False, True)
    ]
    assert fits[0].history[:, "valid_bacc"] == fits[1].history[:, "valid_bacc"]
    np.testing.assert_array_equal(fits[0].predict_proba(X), fits[1].predict_proba(X))
    dataset = fits[1].get_dataset(X, y)
    assert isinstance(dataset.X, torch.Tensor) and dataset.X.dtype == torch.uint8
    assert not isinstance(fits[0].get_dataset(X, y).X, torch.Tensor)


@requires_cuda
@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_reduced_precision_on_cuda(precision, data):
    X, y, groups = data
    clf = MLBNInceptionClassifier(**{**TINY, "device": "cuda"}).fit(X, y, groups=groups)
    full = clf.predict_proba(X)
    reduced = clf.set_params(precision=precision).predict_proba(X)
    np.testing.assert_allclose(reduced, full, atol=0.02)
    trained = MLBNInceptionClassifier(
        **{**TINY, "device": "cuda", "precision": precision}
    ).fit(X, y, groups=groups)
    assert np.isfinite(trained.history[:, "train_loss"]).all()


@requires_cuda
def test_data_on_device_on_cuda(data):
    X, y, groups = data
    fits = [
        MLBNInceptionClassifier(**{**TINY, "device": "cuda", "data_on_device": on}).fit(
            X, y, groups=groups
        )
        for on in (False, True)
    ]
    assert fits[1].get_dataset(X, y).X.is_cuda
    np.testing.assert_allclose(
        fits[0].predict_proba(X), fits[1].predict_proba(X), atol=1e-5
    )


def test_predict_proba_keeps_batches_on_the_device_and_agrees_with_skorch(
    data, fitted, monkeypatch
):
    X, _, _ = data
    targets = []
    forward_iter = MLBNInceptionClassifier.forward_iter

    def spy(self, X, training=False, device="cpu"):
        targets.append(device)
        yield from forward_iter(self, X, training=training, device=device)

    monkeypatch.setattr(MLBNInceptionClassifier, "forward_iter", spy)
    ours = fitted.predict_proba(X)
    # each batch's output stays where the network ran, read once at the end
    assert targets == [fitted.device_]
    skorch_way = NeuralNetClassifier.predict_proba(fitted, X)
    np.testing.assert_array_equal(ours, skorch_way)
    assert ours.dtype == np.float32


# -- inference: BatchNorm folded, compiled --


def _eager_proba(clf, X):
    mode = clf.inference
    try:
        return clf.set_params(inference="eager").predict_proba(X)
    finally:
        clf.set_params(inference=mode)


def test_fold_batchnorm_folds_every_pair_and_leaves_the_network_alone(fitted):
    module = fitted.module_
    state = {k: v.clone() for k, v in module.state_dict().items()}
    folded = fold_batchnorm(module)
    assert folded is not module
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in folded.modules())
    assert not folded.training
    assert not any(p.requires_grad for p in folded.parameters())
    # the trained network keeps its layers and weights
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in module.modules()) == 12
    for key, value in module.state_dict().items():
        assert torch.equal(value, state[key]), key
    without_bn = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
    assert fold_batchnorm(without_bn) is without_bn


def test_folded_predictions_equal_the_trained_network(data, fitted):
    X, _, _ = data
    assert fitted.inference == "fold"
    # Hooks on the trained network's BatchNorm layers run only where it runs.
    calls = []
    hooks = [
        m.register_forward_hook(lambda *args: calls.append(1))
        for m in fitted.module_.modules()
        if isinstance(m, torch.nn.BatchNorm2d)
    ]
    try:
        folded = fitted.predict_proba(X)
        assert calls == []  # another network, without BatchNorm layers, ran
        eager = _eager_proba(fitted, X)
        assert len(calls) == len(hooks) * 3  # three batches of 16
    finally:
        for hook in hooks:
            hook.remove()
    np.testing.assert_allclose(folded, eager, atol=1e-5)
    assert not any(
        isinstance(m, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d)
        for m in fold_batchnorm(fitted.module_).modules()
    )


def test_folded_network_follows_the_weights(data):
    X, y, _ = data
    clf = tiny(max_epochs=1).fit(X, y)
    before = clf.predict_proba(X)
    clf.partial_fit(X, y)  # an optimiser step changes the weights in place
    after = clf.predict_proba(X)
    assert np.abs(after - before).max() > 1e-3
    np.testing.assert_allclose(after, _eager_proba(clf, X), atol=1e-5)
    with torch.no_grad():  # so does a changed BatchNorm statistic
        clf.module_.features[0].branch1x1[1].running_mean += 5.0
    np.testing.assert_allclose(clf.predict_proba(X), _eager_proba(clf, X), atol=1e-5)
    assert np.abs(clf.predict_proba(X) - after).max() > 1e-3


def test_a_model_that_has_predicted_pickles(data):
    """The folded network made for predictions is kept apart from the estimator."""
    X, y, _ = data
    clf = tiny(max_epochs=1).fit(X, y)
    unused = pickle.dumps(clf)
    expected = clf.predict_proba(X)
    used = pickle.dumps(clf)
    # nothing the prediction built travels with the model
    assert len(used) == len(unused)
    np.testing.assert_array_equal(pickle.loads(used).predict_proba(X), expected)


class ConvBatchNormNet(torch.nn.Module):
    """One convolution, BatchNorm and a linear layer: cheap to compile."""

    def __init__(self, n_classes, in_channels, patch_size):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(in_channels, 4, 3),
            torch.nn.BatchNorm2d(4),
            torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1),
            torch.nn.Flatten(),
            torch.nn.Linear(4, n_classes),
        )

    def forward(self, x):
        return self.features(x)


@pytest.mark.skipif(
    shutil.which("c++") is None and shutil.which("g++") is None,
    reason="torch.compile's CPU backend needs a C++ compiler; none is on PATH",
)
def test_compiled_inference_matches_and_pads_the_last_batch(data, monkeypatch):
    compiled = []
    real_compile = torch.compile

    def counting_compile(*args, **kwargs):
        compiled.append(kwargs)
        return real_compile(*args, **kwargs)

    monkeypatch.setattr(torch, "compile", counting_compile)
    X, y, _ = data
    clf = PatchNetClassifier(
        ConvBatchNormNet,
        patch_shape=TINY["patch_shape"],
        batch_size=16,
        max_epochs=1,
        verbose=0,
        random_state=0,
        inference="compile",
        train_split=PatientValidSplit(0.25),
    )
    groups = np.repeat(np.arange(8), len(X) // 8)
    clf.fit(X, y, groups=groups)
    # the validation passes of fit ran the folded network, never a compiled one
    assert compiled == []
    proba = clf.predict_proba(X[:40])  # batches of 16, 16 and 8
    assert len(compiled) == 1 and compiled[0]["options"] == {"freezing": True}
    np.testing.assert_allclose(proba, _eager_proba(clf, X[:40]), atol=1e-5)
    # a prediction on fewer patches runs the same compiled network, padded
    np.testing.assert_allclose(clf.predict_proba(X[:3]), proba[:3], atol=1e-6)
    assert len(compiled) == 1
    # new weights, a new compiled network
    clf.partial_fit(X, y, groups=groups)
    np.testing.assert_allclose(
        clf.predict_proba(X[:40]), _eager_proba(clf, X[:40]), atol=1e-5
    )
    assert len(compiled) == 2

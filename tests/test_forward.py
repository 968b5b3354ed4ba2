"""The forward pass (idc_sklearn._forward): tta=, inference= (BatchNorm folded,
compiled), and predict_proba's one transfer per call."""

import pickle
import shutil

import numpy as np
import pytest
import torch
from conftest import TINY, tiny_unsplit
from skorch import NeuralNetClassifier

from idc_sklearn import MLBNInceptionClassifier, PatchNetClassifier, PatientValidSplit
from idc_sklearn._forward import fold_batchnorm
from idc_sklearn.augmentation import dihedral_views

tiny = tiny_unsplit


def test_tta_averages_the_eight_views(patches48, fitted_unsplit):
    X, _, _ = patches48
    plain = fitted_unsplit.set_params(tta=False)
    views = dihedral_views(torch.from_numpy(X), dims=(1, 2))
    expected = np.mean(
        [plain.predict_proba(v.contiguous().numpy()) for v in views], axis=0
    )
    averaged = fitted_unsplit.set_params(tta=True).predict_proba(X)
    fitted_unsplit.set_params(tta=False)
    assert averaged.dtype == np.float32
    np.testing.assert_allclose(averaged, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(averaged.sum(axis=1), 1.0, rtol=1e-6)
    assert not np.allclose(averaged, plain.predict_proba(X))
    # A patch and its mirror image get the same averaged probabilities.
    mirrored = fitted_unsplit.set_params(tta=True).predict_proba(X[:, :, ::-1])
    fitted_unsplit.set_params(tta=False)
    np.testing.assert_allclose(mirrored, averaged, rtol=1e-5, atol=1e-6)


def test_tta_reads_the_data_once(patches48, fitted_unsplit, monkeypatch):
    X, _, _ = patches48
    expected = fitted_unsplit.set_params(tta=True).predict_proba(X)
    datasets = []
    get_dataset = MLBNInceptionClassifier.get_dataset

    def counted(self, X, y=None):
        datasets.append(X)
        return get_dataset(self, X, y)

    monkeypatch.setattr(MLBNInceptionClassifier, "get_dataset", counted)
    try:
        resident = fitted_unsplit.set_params(data_on_device=True).predict_proba(X)
    finally:
        fitted_unsplit.set_params(tta=False, data_on_device=False)
    # one dataset (one copy to the device), not one per view
    assert len(datasets) == 1 and datasets[0].shape == X.shape
    np.testing.assert_array_equal(resident, expected)


def test_tta_leaves_training_and_validation_alone(patches48):
    X, y, groups = patches48
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


def test_predict_proba_keeps_batches_on_the_device_and_agrees_with_skorch(
    patches48, fitted_unsplit, monkeypatch
):
    X, _, _ = patches48
    targets = []
    forward_iter = MLBNInceptionClassifier.forward_iter

    def spy(self, X, training=False, device="cpu"):
        targets.append(device)
        yield from forward_iter(self, X, training=training, device=device)

    monkeypatch.setattr(MLBNInceptionClassifier, "forward_iter", spy)
    ours = fitted_unsplit.predict_proba(X)
    # each batch's output stays where the network ran, read once at the end
    assert targets == [fitted_unsplit.device_]
    skorch_way = NeuralNetClassifier.predict_proba(fitted_unsplit, X)
    np.testing.assert_array_equal(ours, skorch_way)
    assert ours.dtype == np.float32


def _eager_proba(clf, X):
    mode = clf.inference
    try:
        return clf.set_params(inference="eager").predict_proba(X)
    finally:
        clf.set_params(inference=mode)


def test_fold_batchnorm_folds_every_pair_and_leaves_the_network_alone(fitted_unsplit):
    module = fitted_unsplit.module_
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


def test_folded_predictions_equal_the_trained_network(patches48, fitted_unsplit):
    X, _, _ = patches48
    assert fitted_unsplit.inference == "fold"
    # Hooks on the trained network's BatchNorm layers run only where it runs.
    calls = []
    hooks = [
        m.register_forward_hook(lambda *args: calls.append(1))
        for m in fitted_unsplit.module_.modules()
        if isinstance(m, torch.nn.BatchNorm2d)
    ]
    try:
        folded = fitted_unsplit.predict_proba(X)
        assert calls == []  # another network, without BatchNorm layers, ran
        eager = _eager_proba(fitted_unsplit, X)
        assert len(calls) == len(hooks) * 3  # three batches of 16
    finally:
        for hook in hooks:
            hook.remove()
    np.testing.assert_allclose(folded, eager, atol=1e-5)
    assert not any(
        isinstance(m, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d)
        for m in fold_batchnorm(fitted_unsplit.module_).modules()
    )


def test_folded_network_follows_the_weights(patches48):
    X, y, _ = patches48
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


def test_a_model_that_has_predicted_pickles(patches48):
    """The folded network made for predictions is kept apart from the estimator."""
    X, y, _ = patches48
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
def test_compiled_inference_matches_and_pads_the_last_batch(patches48, monkeypatch):
    compiled = []
    real_compile = torch.compile

    def counting_compile(*args, **kwargs):
        compiled.append(kwargs)
        return real_compile(*args, **kwargs)

    monkeypatch.setattr(torch, "compile", counting_compile)
    X, y, _ = patches48
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


def test_dihedral_views_are_the_eight_symmetries():
    x = torch.arange(2 * 3 * 3 * 1).reshape(2, 3, 3, 1)
    views = list(dihedral_views(x, dims=(1, 2)))
    assert len(views) == 8
    assert len({v.contiguous().numpy().tobytes() for v in views}) == 8
    assert all(v.shape == x.shape for v in views)
    assert len(list(dihedral_views(torch.zeros((1, 2, 3, 1)), dims=(1, 2)))) == 4

"""precision=: autocast in the forward pass, float16 loss scaling, "auto"."""

import numpy as np
import pytest
import torch
from conftest import TINY, requires_cuda, tiny_unsplit
from skorch.callbacks import Callback

from idc_sklearn import MLBNInceptionClassifier
from idc_sklearn import precision as precision_module
from idc_sklearn._device import has_bfloat16_units


def _has_cpuinfo() -> bool:
    try:
        with open("/proc/cpuinfo"):
            return True
    except OSError:
        return False


tiny = tiny_unsplit


def test_bfloat16_trains_and_agrees_with_float32(patches48, fitted_unsplit):
    X, y, _ = patches48
    clf = tiny(max_epochs=1, precision="bfloat16").fit(X, y)
    proba = clf.predict_proba(X)
    assert proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    # Same seed, same data: the weights differ only by the rounding of one epoch.
    np.testing.assert_allclose(proba, fitted_unsplit.predict_proba(X), atol=0.05)
    assert clf.grad_scaler_ is None


def test_float16_trains_with_a_grad_scaler(patches48):
    X, y, _ = patches48
    clf = tiny(max_epochs=2, precision="float16").fit(X, y)
    assert isinstance(clf.grad_scaler_, torch.amp.GradScaler)
    assert np.isfinite(clf.history[:, "train_loss"]).all()
    assert clf.score(X, y) > 0.5


@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_precision_changes_the_forward_arithmetic(precision, patches48, fitted_unsplit):
    X, _, _ = patches48
    reduced = fitted_unsplit.set_params(precision=precision).predict_proba(X)
    full = fitted_unsplit.set_params(precision="float32").predict_proba(X)
    assert not np.array_equal(reduced, full)
    np.testing.assert_allclose(reduced, full, atol=0.02)


@pytest.mark.parametrize("units", [True, False])
def test_auto_precision_is_bfloat16_only_where_the_device_has_units(
    units, patches48, fitted_unsplit, monkeypatch
):
    X, _, _ = patches48
    asked = []

    def has_units(device_type):
        asked.append(device_type)
        return units

    monkeypatch.setattr(precision_module, "has_bfloat16_units", has_units)
    auto = fitted_unsplit.set_params(precision="auto").predict_proba(X)
    expected = fitted_unsplit.set_params(precision="bfloat16" if units else "float32")
    np.testing.assert_array_equal(auto, expected.predict_proba(X))
    assert set(asked) == {"cpu"}
    fitted_unsplit.set_params(precision="float32")


def test_bfloat16_units_are_read_from_the_cpu():
    # The answer is the CPU's (lscpu's flags), and cached.
    flags = open("/proc/cpuinfo").read().split() if _has_cpuinfo() else None
    found = has_bfloat16_units("cpu")
    assert has_bfloat16_units("cpu") is found
    if flags is not None:
        assert found == any(f in flags for f in ("amx_tile", "avx512_bf16"))
    assert has_bfloat16_units("mps") is False


def test_float16_scales_the_loss(patches48):
    X, y, _ = patches48

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


@requires_cuda
@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_reduced_precision_on_cuda(precision, patches48):
    X, y, groups = patches48
    clf = MLBNInceptionClassifier(**{**TINY, "device": "cuda"}).fit(X, y, groups=groups)
    full = clf.predict_proba(X)
    reduced = clf.set_params(precision=precision).predict_proba(X)
    np.testing.assert_allclose(reduced, full, atol=0.02)
    trained = MLBNInceptionClassifier(
        **{**TINY, "device": "cuda", "precision": precision}
    ).fit(X, y, groups=groups)
    assert np.isfinite(trained.history[:, "train_loss"]).all()

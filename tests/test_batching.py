"""Batches of patches (idc_sklearn.batching): the dataset and loaders, the
training loader's last batch, data resident on the device, batch losses read once
per epoch."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY, make_patches, requires_cuda
from skorch.callbacks import Callback

from idc_sklearn import MLBNInceptionClassifier
from idc_sklearn.batching import prepare_patches


def tiny(**kwargs):
    return MLBNInceptionClassifier(**{**TINY, **kwargs})


@pytest.fixture(scope="module")
def data():
    return make_patches(n=48)


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


_PEAK_MEMORY = """
import sys
import numpy as np
sys.path.insert(0, {tests!r})
from conftest import TINY, make_patches
from skorch.callbacks import Callback
from idc_sklearn import MLBNInceptionClassifier

class StopAfterFiveBatches(Callback):
    # A whole-array copy would happen before the first batch; skorch ends
    # training quietly on KeyboardInterrupt.
    def on_batch_end(self, net, **kwargs):
        self.seen = getattr(self, "seen", 0) + 1
        if self.seen == 5:
            raise KeyboardInterrupt

def status(key):
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith(key + ":"))
    return int(line.split()[1]) * 1024

X, y, _ = make_patches(n=100_000)
clf = MLBNInceptionClassifier(**{{**TINY, "train_split": None, "max_epochs": 1,
                                 "batch_size": 512}})
clf.fit(X[:1024], y[:1024])  # warm-up: torch's own buffers
# The kernel's high-water mark restarts here: what making the data and the warm-up
# allocated and freed before (and the allocator may or may not have handed back)
# must not count as the fit's.
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
before = status("VmRSS")
if {mode!r} == "fit":
    clf.set_params(callbacks=[("stop", StopAfterFiveBatches())]).fit(X, y)
    assert len(clf.history[-1, "batches"]) == 5
else:
    copy = X.astype(np.float32)
print(X.nbytes, status("VmHWM") - before)
"""


def _peak_growth(mode: str) -> tuple[int, int]:
    code = _PEAK_MEMORY.format(tests=str(Path(__file__).parent), mode=mode)
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    nbytes, growth = map(int, out.split())
    return nbytes, growth


def test_fit_never_makes_a_float_copy_of_X():
    # Peak resident memory over the memory in use before sees torch's allocations
    # too (tracemalloc does not); each measurement runs in a process of its own.
    nbytes, copy_growth = _peak_growth("copy")
    _, fit_growth = _peak_growth("fit")
    # The control: a float32 copy grows the peak by 4x the data (77 MB of uint8
    # patches, well above the allocator's noise of a few tens of MB).
    assert copy_growth > 3 * nbytes
    assert fit_growth < nbytes, (fit_growth, nbytes)


@pytest.mark.parametrize("normalize", ["scale", "zscore", None])
def test_normalize_modes(normalize, patches):
    X, y, _ = patches
    x = torch.from_numpy(X[:4])
    out = prepare_patches(x, normalize)
    assert out.shape == (4, 3, 16, 16) and out.dtype == torch.float32
    raw = x.permute(0, 3, 1, 2).float()
    if normalize == "scale":
        torch.testing.assert_close(out, raw / 255)
    elif normalize == "zscore":
        torch.testing.assert_close(
            out.mean(dim=(2, 3)), torch.zeros(4, 3), atol=1e-5, rtol=0
        )
        torch.testing.assert_close(
            out.std(dim=(2, 3), unbiased=False), torch.ones(4, 3), atol=1e-3, rtol=0
        )
    else:
        torch.testing.assert_close(out, raw)
    clf = tiny(normalize=normalize, train_split=None, max_epochs=1).fit(X, y)
    assert np.isfinite(clf.predict_proba(X)).all()


def test_last_batch_of_one_is_dropped_not_fatal():
    X, y, _ = make_patches(n=34)
    y = np.array([0] * 17 + [1] * 17)
    # 34 training patches in batches of 11 leave a last batch of one.
    clf = tiny(resample=None, train_split=None, batch_size=11, max_epochs=1)
    clf.fit(X, y)
    assert clf.history[-1, "train_batch_count"] == 3


@pytest.mark.parametrize("augment", [None, "dihedral"])
def test_training_convolutions_run_channels_last(data, augment):
    """Every convolution of a training step, augmented or not, gets and gives
    channels-last activations: on an AMX Xeon a training step with channels-first
    activations ran 1.5x to 1.9x slower (benchmarks.md, "The widths on a CPU")."""
    X, y, _ = data
    layouts = []

    def record(module, inputs, output):
        if module.training:
            layouts.append(
                (
                    inputs[0].is_contiguous(memory_format=torch.channels_last),
                    output.is_contiguous(memory_format=torch.channels_last),
                )
            )

    # Reductions of at least 2 channels: a 1-channel tensor is both layouts at
    # once, and the convolution after it may take either.
    clf = tiny(filters=(8, 8), max_epochs=1, augment=augment, train_split=None)
    clf.initialize()
    convolutions = [m for m in clf.module_.modules() if isinstance(m, torch.nn.Conv2d)]
    hooks = [m.register_forward_hook(record) for m in convolutions]
    try:
        clf.partial_fit(X[:16], y[:16])
    finally:
        for hook in hooks:
            hook.remove()
    assert len(layouts) >= len(convolutions)
    assert all(given and made for given, made in layouts), layouts

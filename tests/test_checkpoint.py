"""checkpoint_dir: training resumes after a crash or a SIGKILL with the same result."""

import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT, TINY, Crash, make_patches

from idc_sklearn import MLBNInceptionClassifier
from idc_sklearn._files import FileFormatError, load_tensors
from idc_sklearn.checkpoint import CHECKPOINT_FILE

EPOCHS = 5


def tiny(**kwargs):
    # Early stopping would not trigger in 5 epochs; a short patience makes it.
    return MLBNInceptionClassifier(
        **{**TINY, "max_epochs": EPOCHS, "random_state": 3, **kwargs}
    )


@pytest.fixture(scope="module")
def data():
    X, y, groups = make_patches(n=64)
    # Imbalanced, so the per-epoch class-balancing sampler's state matters.
    return X, np.where(np.arange(64) % 4 == 0, 1, 0), groups


@pytest.fixture(scope="module")
def uninterrupted(data):
    X, y, groups = data
    return tiny().fit(X, y, groups=groups)


def assert_same_fit(a, b):
    for (name, p), (_, q) in zip(
        a.module_.state_dict().items(), b.module_.state_dict().items(), strict=True
    ):
        torch.testing.assert_close(p, q, rtol=0, atol=0, msg=name)
    assert a.history[:, "valid_bacc"] == b.history[:, "valid_bacc"]
    assert a.history[:, "train_loss"] == pytest.approx(b.history[:, "train_loss"])


@pytest.mark.parametrize("resample", ["over", None])
def test_a_crashed_fit_resumes_to_the_same_weights(resample, data, tmp_path):
    X, y, groups = data
    reference = tiny(resample=resample).fit(X, y, groups=groups)
    with pytest.raises(RuntimeError, match="crash"):
        tiny(resample=resample, checkpoint_dir=tmp_path, callbacks=[Crash(3)]).fit(
            X, y, groups=groups
        )
    _, saved = load_tensors(tmp_path / CHECKPOINT_FILE)
    assert saved["epochs"] == 2 and not saved["finished"]  # epoch 3 was lost
    resumed = tiny(resample=resample, checkpoint_dir=tmp_path).fit(X, y, groups=groups)
    assert len(resumed.history) == EPOCHS
    assert_same_fit(resumed, reference)
    _, final = load_tensors(tmp_path / CHECKPOINT_FILE)
    assert final["finished"] and final["epochs"] == EPOCHS
    # A finished fit is loaded, not trained again.
    again = tiny(resample=resample, checkpoint_dir=tmp_path, callbacks=[Crash(1)])
    assert_same_fit(again.fit(X, y, groups=groups), reference)
    np.testing.assert_array_equal(again.predict_proba(X), reference.predict_proba(X))


def test_resume_keeps_early_stopping_and_scheduler_state(data, tmp_path):
    X, y, groups = data
    settings = {
        "max_epochs": 8,
        "callbacks__early_stopping__patience": 2,
        "callbacks__early_stopping__threshold": 0.5,  # no epoch improves enough
        "callbacks__lr_scheduler__patience": 0,
    }
    reference = tiny(**settings).fit(X, y, groups=groups)
    assert len(reference.history) == 3  # stopped early
    with pytest.raises(RuntimeError):
        tiny(**settings, checkpoint_dir=tmp_path, callbacks=[Crash(2)]).fit(
            X, y, groups=groups
        )
    resumed = tiny(**settings, checkpoint_dir=tmp_path).fit(X, y, groups=groups)
    assert len(resumed.history) == 3
    assert_same_fit(resumed, reference)
    assert resumed.optimizer_.param_groups[0]["lr"] == pytest.approx(
        reference.optimizer_.param_groups[0]["lr"]
    )
    assert reference.optimizer_.param_groups[0]["lr"] < 1e-3  # the scheduler acted


def test_a_checkpoint_of_other_data_or_params_is_refused(data, tmp_path):
    X, y, groups = data
    tiny(max_epochs=1, checkpoint_dir=tmp_path).fit(X, y, groups=groups)
    with pytest.raises(ValueError, match="other data"):
        tiny(max_epochs=1, checkpoint_dir=tmp_path).fit(X[::-1], y, groups=groups)
    with pytest.raises(ValueError, match=r"other parameters \(lr\)"):
        tiny(max_epochs=1, lr=0.1, checkpoint_dir=tmp_path).fit(X, y, groups=groups)
    # how the model predicts is free to change: the finished fit is loaded
    loaded = tiny(
        max_epochs=1, inference="eager", tta=True, checkpoint_dir=tmp_path
    ).fit(X, y, groups=groups)
    assert len(loaded.history) == 1


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty"])
def test_a_damaged_checkpoint_is_refused(damage, data, tmp_path):
    X, y, groups = data
    tiny(max_epochs=1, checkpoint_dir=tmp_path).fit(X, y, groups=groups)
    path = tmp_path / CHECKPOINT_FILE
    raw = bytearray(path.read_bytes())
    if damage == "truncate":
        raw = raw[: len(raw) // 2]
    elif damage == "flip":
        raw[-100] ^= 0xFF
    else:
        raw = bytearray()
    path.write_bytes(bytes(raw))
    with pytest.raises(FileFormatError, match=CHECKPOINT_FILE):
        tiny(max_epochs=1, checkpoint_dir=tmp_path).fit(X, y, groups=groups)


CHILD = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {tests!r})
    import numpy as np
    import torch
    from skorch.callbacks import Callback
    # The parent's thread count: float sums, and so weights, depend on it.
    torch.set_num_threads({threads})
    from test_checkpoint import tiny, make_patches

    class Slow(Callback):
        def on_epoch_end(self, net, **kwargs):
            print("epoch", len(net.history), flush=True)
            time.sleep(0.4)

    X, y, groups = make_patches(n=64)
    y = np.where(np.arange(64) % 4 == 0, 1, 0)
    tiny(checkpoint_dir={folder!r}, callbacks=[Slow()]).fit(X, y, groups=groups)
    print("finished", flush=True)
    """
)


def test_a_killed_fit_resumes_to_the_same_weights(data, uninterrupted, tmp_path):
    X, y, groups = data
    script = CHILD.format(
        tests=str(REPO_ROOT / "tests"),
        folder=str(tmp_path),
        threads=torch.get_num_threads(),
    )
    env = dict(os.environ)
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env
    )
    epochs_seen = 0
    deadline = time.monotonic() + 120
    for line in child.stdout:
        if line.startswith("epoch"):
            epochs_seen = int(line.split()[1])
        if epochs_seen >= 2 or time.monotonic() > deadline:
            break
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL, "the child finished before the kill"
    _, saved = load_tensors(tmp_path / CHECKPOINT_FILE)
    assert not saved["finished"]
    # At most the epoch in progress is lost.
    assert epochs_seen - 1 <= saved["epochs"] <= epochs_seen < EPOCHS
    resumed = tiny(checkpoint_dir=tmp_path).fit(X, y, groups=groups)
    assert_same_fit(resumed, uninterrupted)


class _RunsCode:
    """Unpickling this creates ``marker``: what a hostile checkpoint would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_a_checkpoint_that_would_run_code_is_refused(writer, data, tmp_path):
    X, y, groups = data
    marker = tmp_path / "pwned"
    path = tmp_path / CHECKPOINT_FILE
    if writer == "pickle":
        path.write_bytes(pickle.dumps(_RunsCode(marker)))
    else:
        torch.save({"state": _RunsCode(marker)}, path)
    with pytest.raises(FileFormatError, match="never loaded"):
        tiny(max_epochs=1, checkpoint_dir=tmp_path).fit(X, y, groups=groups)
    assert not marker.exists()


def test_a_fitted_model_keeps_no_training_labels(data, tmp_path):
    X, y, groups = data
    for clf in (
        tiny(resample="over").fit(X, y, groups=groups),
        tiny(resample="over", checkpoint_dir=tmp_path).fit(X, y, groups=groups),
    ):
        # the class-balancing sampler (which holds the labels) is nowhere in the
        # pickle, the checkpoint callback's included
        assert b"EpochResampler" not in pickle.dumps(clf)

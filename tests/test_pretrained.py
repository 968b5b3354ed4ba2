"""load_pretrained: the shipped model, its card, fine-tuning and the command line."""

from __future__ import annotations

import contextlib
import hashlib
import io
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import SHARED_DATA
from PIL import Image
from sklearn.base import clone
from sklearn.metrics import balanced_accuracy_score, log_loss
from skorch.callbacks import Callback

from idc_sklearn import (
    PRETRAINED,
    MLBNInceptionClassifier,
    load_idc,
    load_idc_sample,
    load_pretrained,
    pretrained,
    pretrained_card,
)
from idc_sklearn.cli import main

MAX_BYTES = 8 * 1024 * 1024
# The split's test patients in ../shared: the shipped model never trained on them.
HELD_OUT = ["8864", "8918"]


def _file(name: str, key: str = "file"):
    return pretrained._resource(PRETRAINED[name][key])


@pytest.fixture(scope="module")
def shipped():
    return load_pretrained("mlbn-small", device="cpu")


@pytest.fixture(scope="module")
def sample():
    """400 patches of the built-in sample, 200 of each class (seeded)."""
    idc = load_idc_sample()
    rng = np.random.default_rng(0)
    rows = np.sort(
        np.concatenate(
            [
                rng.choice(np.flatnonzero(idc.target == c), 200, replace=False)
                for c in (0, 1)
            ]
        )
    )
    return idc.data[rows], idc.target[rows], idc.groups[rows]


def test_load_pretrained_is_a_fitted_mlbn_of_classes_0_1(shipped, sample):
    assert isinstance(shipped, MLBNInceptionClassifier)
    assert shipped.classes_.tolist() == [0, 1]
    assert shipped.patch_shape == (50, 50, 3)
    assert shipped.precision == "float32" and shipped.checkpoint_dir is None
    assert shipped.predict_proba(sample[0][:4]).shape == (4, 2)


def test_each_call_returns_a_fresh_independent_estimator(shipped, sample):
    a = load_pretrained("mlbn-small", device="cpu")
    b = load_pretrained("mlbn-small", device="cpu")
    assert a is not b and a.module_ is not b.module_
    X = sample[0][:16]
    before = b.predict_proba(X)
    for param in a.module_.parameters():
        param.data.zero_()
    a.set_params(max_epochs=7)
    np.testing.assert_array_equal(b.predict_proba(X), before)
    np.testing.assert_array_equal(shipped.predict_proba(X), before)
    assert b.max_epochs == shipped.max_epochs != 7


def test_unknown_name_is_a_value_error_naming_it_and_the_choices():
    with pytest.raises(
        ValueError,
        match=(
            r"name='mlbn-huge' .*available: "
            r"mlbn-hgb, mlbn-hgb-context, mlbn-hgb-patient, mlbn-small, mlbn-small-all"
        ),
    ):
        load_pretrained("mlbn-huge")
    with pytest.raises(ValueError, match=r"name='nope'.*mlbn-small"):
        pretrained_card("nope")
    with pytest.raises(TypeError, match="name must be .* got int 3"):
        load_pretrained(3)


def test_missing_weights_say_how_to_rebuild_them(monkeypatch, tmp_path):
    monkeypatch.setattr(pretrained, "_resource", lambda file: tmp_path / file)
    with pytest.raises(FileNotFoundError) as excinfo:
        load_pretrained("mlbn-small")
    message = str(excinfo.value)
    assert "mlbn-small.safetensors does not exist" in message
    assert "python scripts/build/train_pretrained.py --name mlbn-small" in message
    with pytest.raises(FileNotFoundError, match="model card .* is missing"):
        pretrained_card("mlbn-small")


def test_registry_is_read_only():
    with pytest.raises(TypeError):
        PRETRAINED["mine"] = {}
    assert set(PRETRAINED["mlbn-small"]) == {"file", "card", "description"}


@pytest.mark.parametrize("name", sorted(PRETRAINED))
def test_shipped_files_are_small_and_the_card_describes_them(name):
    weights = _file(name)
    data = weights.read_bytes()
    assert len(data) <= MAX_BYTES
    card = pretrained_card(name)
    # The card was written with these very weights, not an earlier run's.
    assert card["sha256"] == hashlib.sha256(data).hexdigest()
    assert card["file_bytes"] == len(data) and card["file"] == weights.name
    assert card["classes"] == [0, 1] and card["name"] == name
    trained = card["data"]
    assert trained["patients"] == len(trained["patches_by_patient"]) == 114
    assert trained["excluded_patients"] == HELD_OUT
    assert not set(HELD_OUT) & set(trained["patches_by_patient"])
    by_class = np.sum(list(trained["patches_by_patient"].values()), axis=0)
    assert by_class.tolist() == [
        trained["patches_by_class"]["0"],
        trained["patches_by_class"]["1"],
    ]
    assert by_class.sum() == trained["patches"]
    assert trained["magnification"] == "2.5x" and trained["patch_size"] == [50, 50]
    assert len(card["training"]["epochs"]) == card["training"]["max_epochs"]
    script = "ship_cv_models" if "features" in PRETRAINED[name] else "train_pretrained"
    assert card["command"].startswith(f"python scripts/build/{script}.py")
    assert "validation" in card
    assert pretrained_card(name) is not pretrained_card(name)


def test_all_shipped_files_together_stay_under_32_mb():
    files = {
        pretrained._resource(entry[key])
        for entry in PRETRAINED.values()
        for key in ("file", "card", "features")
        if key in entry
    }
    assert sum(file.stat().st_size for file in files) <= 32 * 1024 * 1024


@pytest.mark.parametrize("name", ["mlbn-small-all", "mlbn-hgb"])
def test_the_cross_validated_cards_hold_their_threshold_and_scores(name):
    card = pretrained_card(name)
    threshold = card["operating_point"]["threshold"]
    assert 0.05 <= threshold <= 0.95
    assert load_pretrained(name, device="cpu").threshold == threshold
    cv = card["cross_validation"]
    assert cv["patients"] == 111 and set(cv["seeds"]) >= {"0"}
    for seed in cv["seeds"].values():
        low, high = seed["lead_over_features-hgb_95"]
        assert low <= seed["lead_over_features-hgb"] <= high
        assert 0.5 < seed["balanced_accuracy"] < 1
        assert len(seed["thresholds_by_fold"]) == 5
    if "features" in PRETRAINED[name]:
        member = card["members"]["features-hgb"]
        data = _file(name, "features").read_bytes()
        assert member["sha256"] == hashlib.sha256(data).hexdigest()
        assert card["members"]["mlbn"]["sha256"] == card["sha256"]


def test_the_per_patient_card_holds_its_strength_and_scores():
    card = pretrained_card("mlbn-hgb-patient")
    prior = card["per_patient"]
    assert prior["train_prior"] == 0.5 and 0 <= prior["strength"] < float("inf")
    model = load_pretrained("mlbn-hgb-patient", device="cpu")
    assert model.strength == prior["strength"]
    assert model.estimator.estimator.threshold == card["operating_point"]["threshold"]
    cv = card["cross_validation"]
    assert cv["patients"] == 111 and cv["run"].endswith(" per patient")
    for seed in cv["seeds"].values():
        low, high = seed["lead_over_features-hgb_95"]
        assert low <= seed["lead_over_features-hgb"] <= high
        assert len(seed["strengths_by_fold"]) == 5
    # What predict does without the patients is mlbn-hgb's, figures included.
    assert (
        card["cross_validation_without_patients"]
        == (pretrained_card("mlbn-hgb")["cross_validation"])
    )


def test_the_context_card_holds_its_weight_strength_and_scores():
    card = pretrained_card("mlbn-hgb-context")
    prior = card["per_patient"]
    assert 0 < prior["neighbour_weight"] <= 1 and prior["stride"] == 50
    model = load_pretrained("mlbn-hgb-context", device="cpu")
    assert model.neighbour_weight == prior["neighbour_weight"]
    assert model.strength == prior["strength"]
    cv = card["cross_validation"]
    assert cv["run"].endswith(" per patient & neighbours")
    for seed in cv["seeds"].values():
        for lead in ("lead_over_features-hgb", "lead_over_features-hgb_same_context"):
            low, high = seed[f"{lead}_95"]
            assert low <= seed[lead] <= high
        assert len(seed["chosen_by_fold"]) == 5
    # Without positions and patients it is mlbn-hgb, figures included.
    assert (
        card["cross_validation_without_patients"]
        == (pretrained_card("mlbn-hgb")["cross_validation"])
    )


def test_predicts_the_builtin_sample_better_than_chance(shipped, sample):
    # The sample's patients are among the model's training patients: this says the
    # shipped weights are a trained model, not how it does on new patients.
    X, y, _ = sample
    assert balanced_accuracy_score(y, shipped.predict(X)) > 0.7


def test_predicts_the_held_out_test_patients_better_than_chance(shipped):
    folders = [SHARED_DATA / "idc_sample", SHARED_DATA / "idc_more"]
    if not all(folder.is_dir() for folder in folders):
        pytest.skip(f"the shared IDC folders are absent: {folders}")
    idc = load_idc(folders, patients=HELD_OUT, progress=False)
    # Every other patch of their 1,253: the score moves by a few thousandths.
    X, y = idc.data[::2], idc.target[::2]
    assert set(y) == {0, 1}
    assert balanced_accuracy_score(y, shipped.predict(X)) > 0.7


class _FirstStep(Callback):
    """The network's parameters as the first training step finds them."""

    def initialize(self):
        self.parameters_ = None
        return self

    def on_batch_begin(self, net, batch=None, training=None, **kwargs):
        if training and self.parameters_ is None:
            self.parameters_ = {
                name: param.detach().clone()
                for name, param in net.module_.named_parameters()
            }


@pytest.mark.end_to_end
def test_fine_tuning_goes_on_from_the_shipped_weights(shipped, sample):
    X_all, y_all, _ = sample
    rng = np.random.default_rng(1)
    rows = np.concatenate(
        [rng.choice(np.flatnonzero(y_all == c), 32, replace=False) for c in (0, 1)]
    )
    X, y = X_all[rows], y_all[rows]
    rest = np.setdiff1d(np.arange(len(y_all)), rows)[::2]
    tuned = load_pretrained("mlbn-small", device="cpu").set_params(
        max_epochs=1, verbose=0, random_state=0, callbacks=[("first_step", _FirstStep)]
    )
    # set_params stores the callbacks; initialising them builds the new one.
    tuned.initialize_callbacks()
    epochs = len(tuned.history_)
    before = tuned.predict_proba(X_all[rest])
    tuned.partial_fit(X, y)
    first = dict(tuned.callbacks_)["first_step"]

    # The first step starts from the shipped weights, and changes them.
    for name, param in shipped.module_.named_parameters():
        np.testing.assert_array_equal(first.parameters_[name], param.detach())
    assert any(
        not np.array_equal(param.detach(), tuned.module_.get_parameter(name).detach())
        for name, param in shipped.module_.named_parameters()
    )
    assert len(tuned.history_) == epochs + 1
    # Its loss is the shipped model's on those patches, not an untrained one's.
    loss = tuned.history_[-1]["train_loss"]
    shipped_loss = log_loss(y, shipped.predict_proba(X))
    untrained = clone(shipped).set_params(max_epochs=1, verbose=0, random_state=0)
    untrained_loss = untrained.fit(X, y).history_[-1]["train_loss"]
    assert abs(loss - shipped_loss) < abs(loss - untrained_loss), (
        loss,
        shipped_loss,
        untrained_loss,
    )
    after = tuned.predict_proba(X_all[rest])
    assert not np.allclose(after, before)
    assert balanced_accuracy_score(y_all[rest], after.argmax(axis=1)) > 0.6


def _run(argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    return status, out.getvalue(), err.getvalue()


def test_cli_predict_takes_a_pretrained_name(shipped, sample, tmp_path):
    X = sample[0][:40]
    npy, csv = tmp_path / "patches.npy", tmp_path / "p.csv"
    np.save(npy, X)
    argv = ["predict", "mlbn-small", str(npy), "-o", str(csv), "--device", "cpu"]
    status, _, err = _run(argv)
    assert status == 0, err
    table = pd.read_csv(csv)
    np.testing.assert_allclose(table["proba"], shipped.predict_proba(X)[:, 1])
    np.testing.assert_array_equal(table["predicted"], shipped.predict(X))


def test_cli_heatmap_takes_a_pretrained_name(sample, tmp_path):
    patient = str(sample[2][0])
    png = tmp_path / "slide.png"
    argv = ["heatmap", "mlbn-small", "--patient", patient, "-o", str(png), "-q"]
    status, _, err = _run(argv)
    assert status == 0, err
    with Image.open(png) as image:
        assert image.size[0] > 200


def test_cli_a_file_named_like_a_pretrained_model_wins(
    shipped, sample, tmp_path, monkeypatch
):
    from idc_sklearn import save_model

    own = clone(shipped).set_params(
        filters=(3, 3), head_units=(4,), max_epochs=1, verbose=0, random_state=0
    )
    X, y, _ = sample
    save_model(own.fit(X[::40], y[::40]), tmp_path / "mlbn-small")
    np.save(tmp_path / "x.npy", X[:8])
    monkeypatch.chdir(tmp_path)
    status, _, err = _run(["predict", "mlbn-small", "x.npy", "-o", "p.csv", "-q"])
    assert status == 0, err
    np.testing.assert_allclose(
        pd.read_csv(tmp_path / "p.csv")["proba"], own.predict_proba(X[:8])[:, 1]
    )


def test_cli_unknown_model_lists_the_pretrained_names(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((2, 50, 50, 3), np.uint8))
    status, _, err = _run(["predict", "mlbn-huge", str(tmp_path / "x.npy"), "-q"])
    assert status == 1
    assert err == (
        "idc-sklearn predict: error: MODEL mlbn-huge does not exist, and is not the "
        "name of a pretrained model (mlbn-hgb, mlbn-hgb-context, mlbn-hgb-patient, "
        "mlbn-small, mlbn-small-all)\n"
    )


_OFFLINE = """
import socket

def refuse(*args, **kwargs):
    raise AssertionError("load_pretrained touched the network")

socket.socket.connect = socket.socket.connect_ex = refuse
socket.create_connection = socket.getaddrinfo = refuse

import numpy as np
from idc_sklearn import load_pretrained

X = np.full((3, 50, 50, 3), 200, np.uint8)
for name in (None, "mlbn-small", "mlbn-small-all"):
    clf = load_pretrained(name, device="cpu")
    print(clf.classes_.tolist(), clf.predict_proba(X).shape, clf.predict(X).shape)
"""


def test_loads_in_a_fresh_process_offline(tmp_path):
    # Another working folder, no network: the weights are package data.
    result = subprocess.run(
        [sys.executable, "-c", _OFFLINE],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["[0, 1] (3, 2) (3,)"] * 3

"""load_pretrained of the models chosen by cross-validation: a network at its chosen
threshold, and the network averaged with a handcrafted pipeline read by skops.

The shipped files themselves are tested in test_pretrained.py; here a tiny network
and pipeline stand in for them, in a folder of their own, so that every path of the
loader is exercised in seconds.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import make_patches, tiny_unsplit
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import FixedThresholdClassifier

from idc_sklearn import (
    DEFAULT_PRETRAINED,
    PRETRAINED,
    PatientPriorClassifier,
    PatientVotingClassifier,
    adapt_to_patients,
    load_pretrained,
    make_baseline,
    pretrained,
    pretrained_card,
    save_model,
    smooth_neighbours,
)
from idc_sklearn._checks import patch_networks
from idc_sklearn.cli import main

skops_io = pytest.importorskip("skops.io", reason="skops reads the shipped pipelines")

SHAPE = (32, 32, 3)  # HOG's 16-pixel cells in 2x2 blocks need 32 pixels
NETWORK, ENSEMBLE, PATIENT = "mlbn-small-all", "mlbn-hgb", "mlbn-hgb-patient"
CONTEXT = "mlbn-hgb-context"


@pytest.fixture(scope="module")
def data():
    return make_patches(n=48, size=SHAPE[0])


@pytest.fixture(scope="module")
def folder(tmp_path_factory, data):
    """A package folder holding a tiny network, a tiny features-hgb and cards."""
    X, y, _ = data
    root = tmp_path_factory.mktemp("pretrained_models")
    network = tiny_unsplit(max_epochs=1, patch_shape=SHAPE, random_state=0).fit(X, y)
    save_model(network, root / PRETRAINED[NETWORK]["file"])
    features = make_baseline("features-hgb", patch_shape=SHAPE, random_state=0)
    features.fit(X, y)
    skops_io.dump(
        features,
        root / PRETRAINED[ENSEMBLE]["features"],
        compression=zipfile.ZIP_DEFLATED,
    )
    for name, threshold in (
        (NETWORK, 0.62),
        (ENSEMBLE, 0.47),
        (PATIENT, 0.47),
        (CONTEXT, 0.47),
    ):
        card = {"name": name, "operating_point": {"threshold": threshold}}
        if name == PATIENT:
            card["per_patient"] = {"strength": 20.0, "train_prior": 0.5}
        if name == CONTEXT:
            card["per_patient"] = {
                "strength": 30.0,
                "train_prior": 0.5,
                "neighbour_weight": 0.5,
                "stride": 50.0,
            }
        (root / PRETRAINED[name]["card"]).write_text(json.dumps(card))
    return root


@pytest.fixture
def shipped_here(monkeypatch, folder):
    monkeypatch.setattr(pretrained, "_resource", lambda file: folder / file)
    return folder


def _reference(folder, X):
    from idc_sklearn import load_model

    network = load_model(folder / PRETRAINED[NETWORK]["file"], device="cpu")
    features = skops_io.load(
        folder / PRETRAINED[ENSEMBLE]["features"],
        trusted=list(pretrained.FEATURES_TYPES),
    )
    return network.predict_proba(X), features.predict_proba(X)


def test_the_default_is_the_context_ensemble_and_every_entry_names_its_files():
    assert DEFAULT_PRETRAINED == CONTEXT and DEFAULT_PRETRAINED in PRETRAINED
    for name in (ENSEMBLE, PATIENT, CONTEXT):
        assert PRETRAINED[name]["file"] == PRETRAINED[NETWORK]["file"]
        assert set(PRETRAINED[name]) == {"file", "features", "card", "description"}
        assert PRETRAINED[name]["features"] == PRETRAINED[ENSEMBLE]["features"]


def test_the_network_predicts_at_its_chosen_threshold(shipped_here, data):
    X, _, _ = data
    model = load_pretrained(NETWORK, device="cpu")
    assert isinstance(model, FixedThresholdClassifier)
    assert model.threshold == 0.62 and model.classes_.tolist() == [0, 1]
    net_proba, _ = _reference(shipped_here, X)
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba, net_proba, atol=1e-6)
    np.testing.assert_array_equal(model.predict(X), (proba[:, 1] >= 0.62).astype(int))


def test_the_ensemble_averages_its_members_at_its_threshold(shipped_here, data):
    X, _, _ = data
    model = load_pretrained(ENSEMBLE, device="cpu")
    assert isinstance(model.estimator_, PatientVotingClassifier)
    assert list(model.estimator_.named_estimators_) == ["mlbn", "features-hgb"]
    net_proba, features_proba = _reference(shipped_here, X)
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba, (net_proba + features_proba) / 2, atol=1e-6)
    np.testing.assert_array_equal(model.predict(X), (proba[:, 1] >= 0.47).astype(int))
    assert pretrained_card()["name"] == CONTEXT
    default = load_pretrained(device="cpu")
    assert isinstance(default, PatientPriorClassifier)
    np.testing.assert_allclose(default.predict_proba(X), proba)


def test_the_per_patient_model_is_the_ensemble_adapted_to_each_patient(
    shipped_here, data
):
    X, _, groups = data
    model = load_pretrained(PATIENT, device="cpu")
    assert isinstance(model, PatientPriorClassifier) and model.strength == 20.0
    ensemble = load_pretrained(ENSEMBLE, device="cpu")
    # Without the patients: the ensemble, its threshold included.
    np.testing.assert_allclose(model.predict_proba(X), ensemble.predict_proba(X))
    np.testing.assert_array_equal(model.predict(X), ensemble.predict(X))
    # With them: each patient's probabilities at its own share, IDC above 0.5.
    expected = adapt_to_patients(ensemble.predict_proba(X)[:, 1], groups, strength=20)
    np.testing.assert_allclose(model.predict_proba(X, groups=groups)[:, 1], expected)
    np.testing.assert_array_equal(
        model.predict(X, groups=groups), (expected > 0.5).astype(int)
    )
    (network,) = patch_networks(model)
    assert network.patch_shape == SHAPE
    # Refitting keeps the shipped members.
    np.testing.assert_allclose(
        clone(model).fit(X[:8], y=np.tile([0, 1], 4)).predict_proba(X),
        model.predict_proba(X),
    )


def test_the_context_model_mixes_neighbours_then_adapts_each_patient(
    shipped_here, data
):
    X, _, groups = data
    model = load_pretrained(CONTEXT, device="cpu")
    assert isinstance(model, PatientPriorClassifier)
    assert (model.strength, model.neighbour_weight, model.stride) == (30.0, 0.5, 50.0)
    ensemble = load_pretrained(ENSEMBLE, device="cpu")
    proba = ensemble.predict_proba(X)[:, 1]
    # Patches of one patient in a row, 50 pixels apart: each has neighbours.
    coords = np.column_stack([np.arange(len(X)) * 50, np.zeros(len(X))])
    smoothed = smooth_neighbours(proba, coords, groups, weight=0.5)
    expected = adapt_to_patients(smoothed, groups, strength=30)
    got = model.predict_proba(X, groups=groups, coords=coords)[:, 1]
    np.testing.assert_allclose(got, expected)
    assert not np.allclose(got, adapt_to_patients(proba, groups, strength=30))
    # Positions alone: the neighbours only, as one slide; neither: the ensemble.
    np.testing.assert_allclose(
        model.predict_proba(X, coords=coords)[:, 1],
        smooth_neighbours(proba, coords, weight=0.5),
    )
    np.testing.assert_array_equal(model.predict(X), ensemble.predict(X))


def test_refitting_a_frozen_model_keeps_the_shipped_weights(shipped_here, data):
    X, y, _ = data
    model = load_pretrained(ENSEMBLE, device="cpu")
    before = model.predict_proba(X)
    # fit, and clone-then-fit as a grid search does, leave the members as shipped.
    np.testing.assert_allclose(model.fit(X[:8], 1 - y[:8]).predict_proba(X), before)
    np.testing.assert_allclose(clone(model).fit(X, y).predict_proba(X), before)
    member = model.estimator_.named_estimators_["mlbn"]
    assert isinstance(member, FrozenEstimator)


def test_each_call_returns_an_independent_model(shipped_here):
    a, b = load_pretrained(device="cpu"), load_pretrained(device="cpu")
    net_a, net_b = patch_networks(a)[0], patch_networks(b)[0]
    assert net_a is not net_b and net_a.module_ is not net_b.module_


def test_patch_networks_finds_the_network_inside_the_wrappers(shipped_here):
    model = load_pretrained(ENSEMBLE, device="cpu")
    (network,) = patch_networks(model)
    assert network is model.estimator_.named_estimators_["mlbn"].estimator
    default = load_pretrained(device="cpu")
    (network,) = patch_networks(default)
    assert (
        network
        is default.estimator_.estimator.estimator_.named_estimators_["mlbn"].estimator
    )
    assert patch_networks(load_pretrained(NETWORK, device="cpu"))[0].patch_shape == (
        SHAPE
    )
    assert patch_networks(make_baseline("features-hgb")) == []


def test_a_pipeline_file_naming_an_untrusted_type_is_refused(
    shipped_here, data, tmp_path, monkeypatch
):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    X, y, _ = data
    # A function of numpy's: a type skops does not trust, that no shipped file holds.
    foreign = make_pipeline(
        FunctionTransformer(np.reshape, kw_args={"shape": (len(X), -1)}),
        HistGradientBoostingClassifier(max_iter=2),
    ).fit(X, y)
    for file in shipped_here.iterdir():
        (tmp_path / file.name).write_bytes(file.read_bytes())
    skops_io.dump(foreign, tmp_path / PRETRAINED[ENSEMBLE]["features"])
    monkeypatch.setattr(pretrained, "_resource", lambda file: tmp_path / file)
    with pytest.raises(ValueError, match="may not hold: .*numpy"):
        load_pretrained(device="cpu")


def test_a_missing_pipeline_names_the_script_that_builds_it(
    shipped_here, tmp_path, monkeypatch
):
    for file in shipped_here.iterdir():
        if file.suffix != ".skops":
            (tmp_path / file.name).write_bytes(file.read_bytes())
    monkeypatch.setattr(pretrained, "_resource", lambda file: tmp_path / file)
    with pytest.raises(FileNotFoundError, match="scripts/build/ship_cv_models.py"):
        load_pretrained(device="cpu")


def test_the_trusted_types_cover_a_fitted_features_hgb(data):
    # What skops itself trusts grows with its version (0.16 trusts scikit-learn's
    # loss objects, 0.13 does not): the list must cover what any version asks for,
    # and the library's own steps are never trusted by skops alone. If scikit-learn
    # renames an internal type, the shipped file no longer loads: this names it.
    X, y, _ = data
    fitted = make_baseline("features-hgb", patch_shape=SHAPE, random_state=0)
    found = set(skops_io.get_untrusted_types(data=skops_io.dumps(fitted.fit(X, y))))
    trusted = set(pretrained.FEATURES_TYPES)
    assert found <= trusted, found - trusted
    own = {name for name in pretrained.FEATURES_TYPES if name.startswith("idc_sklearn")}
    assert own <= found and len(own) == 6


@pytest.mark.parametrize("name", [ENSEMBLE, PATIENT])
def test_cli_predict_calls_at_the_models_threshold(shipped_here, data, tmp_path, name):
    # The per-patient model scores patches without their patients: as mlbn-hgb.
    X, _, _ = data
    patches = tmp_path / "patches.npy"
    np.save(patches, X)
    out = tmp_path / "predictions.csv"
    assert main(["predict", name, str(patches), "--output", str(out), "-q"]) == 0
    import pandas as pd

    table = pd.read_csv(out)
    expected = load_pretrained(ENSEMBLE, device="cpu").predict(X)
    np.testing.assert_array_equal(table["predicted"], expected)
    np.testing.assert_array_equal(table["predicted"], table["proba"] >= 0.47)


def _archive(folder, data) -> list[str]:
    """``data``'s patches as PNG files in the archive's layout; their names."""
    from PIL import Image

    X, y, groups = data
    names = []
    for i, (patch, label, patient) in enumerate(zip(X, y, groups, strict=True)):
        (folder / patient / str(label)).mkdir(parents=True, exist_ok=True)
        name = f"{patient}_idx5_x{50 * i}_y0_class{label}.png"
        Image.fromarray(patch).save(folder / patient / str(label) / name)
        names.append(name)
    return names


def _predictions(out, names):
    """The CSV ``out`` of idc-sklearn predict, its rows those of the files ``names``."""
    import pandas as pd

    table = pd.read_csv(out, dtype={"patient": str}).set_index("path")
    table.index = [Path(path).name for path in table.index]
    return table.loc[names]


@pytest.mark.parametrize("name", [PATIENT, CONTEXT])
def test_cli_predict_adapts_each_patient_of_an_archive(
    shipped_here, data, tmp_path, capsys, name
):
    """A per-patient model on a folder of the archive's layout, whose file names
    give each patch's patient and position: each patient's probabilities at its
    own share, mlbn-hgb-context's first mixed with their neighbours'."""
    X, _, groups = data
    names = _archive(tmp_path / "archive", data)
    out = tmp_path / "predictions.csv"
    assert main(["predict", name, str(tmp_path / "archive"), "--output", str(out)]) == 0
    mixed = "Mixed each patch with its neighbours" in capsys.readouterr().err
    table = _predictions(out, names)
    model = load_pretrained(name, device="cpu")
    ensemble = load_pretrained(ENSEMBLE, device="cpu").predict_proba(X)[:, 1]
    coords = np.column_stack([50 * np.arange(len(X)), np.zeros(len(X))])  # _archive's
    smoothed = smooth_neighbours(
        ensemble, coords, groups, weight=model.neighbour_weight
    )
    expected = adapt_to_patients(smoothed, groups, strength=model.strength)
    np.testing.assert_allclose(table["proba"], expected, atol=1e-5)
    np.testing.assert_array_equal(table["predicted"], (expected > 0.5).astype(int))
    alone = adapt_to_patients(ensemble, groups, strength=model.strength)
    assert not np.allclose(alone, ensemble, atol=1e-3)  # it did adapt
    # mlbn-hgb-context mixed the neighbours in, and said so; mlbn-hgb-patient not.
    assert mixed == (name == CONTEXT)
    assert np.allclose(expected, alone, atol=1e-3) == (name == PATIENT)


def test_cli_predict_mixes_no_neighbours_where_a_name_gives_no_position(
    shipped_here, data, tmp_path, capsys
):
    """Patches whose file names give their patient but not their position: each
    patient's probabilities at its own share, no patch mixed with its neighbours,
    and a line says so."""
    from PIL import Image

    X, _, groups = data
    folder = tmp_path / "patches"
    folder.mkdir()
    names = [f"{patient}_idx5_patch{i}.png" for i, patient in enumerate(groups)]
    for patch, name in zip(X, names, strict=True):
        Image.fromarray(patch).save(folder / name)
    out = tmp_path / "predictions.csv"
    assert main(["predict", CONTEXT, str(folder), "--output", str(out)]) == 0
    assert "no patch was mixed with its neighbours" in capsys.readouterr().err
    table = _predictions(out, names)
    assert table["x"].isna().all()
    strength = load_pretrained(CONTEXT, device="cpu").strength
    ensemble = load_pretrained(ENSEMBLE, device="cpu").predict_proba(X)[:, 1]
    expected = adapt_to_patients(ensemble, groups, strength=strength)
    np.testing.assert_allclose(table["proba"], expected, atol=1e-5)


def test_cli_heatmap_adapts_the_patient(shipped_here, data, tmp_path, monkeypatch):
    """idc-sklearn heatmap draws one patient: with mlbn-hgb-patient, its patches
    at that patient's own share; with mlbn-hgb-context, each first mixed with its
    neighbours' at the patches' x, y."""
    from idc_sklearn import plotting

    _archive(tmp_path / "archive", data)
    drawn = {}

    def capture(idc, proba, **kwargs):
        drawn["idc"], drawn["proba"] = idc, np.asarray(proba)

    monkeypatch.setattr(plotting, "plot_patient_heatmap", capture)
    for name in (ENSEMBLE, PATIENT, CONTEXT):
        argv = ["heatmap", name, "--data", str(tmp_path / "archive"), "--patient"]
        argv += ["p1", "--output", str(tmp_path / f"{name}.png"), "-q"]
        assert main(argv) == 0
        drawn[name] = drawn.pop("proba")
    idc = drawn["idc"]  # the patient's patches, read alike each time
    assert (idc.frame["patient"] == "p1").all() and len(idc.frame) == 6
    plain = load_pretrained(ENSEMBLE, device="cpu").predict_proba(idc.data)[:, 1]
    np.testing.assert_allclose(drawn[ENSEMBLE], plain, atol=1e-5)
    one = np.zeros(len(plain))
    expected = adapt_to_patients(plain, one, strength=20)
    np.testing.assert_allclose(drawn[PATIENT], expected, atol=1e-5)
    assert not np.allclose(expected, plain, atol=1e-3)
    context = load_pretrained(CONTEXT, device="cpu")
    coords = idc.frame[["x", "y"]].to_numpy()
    smoothed = smooth_neighbours(plain, coords, weight=context.neighbour_weight)
    expected = adapt_to_patients(smoothed, one, strength=context.strength)
    np.testing.assert_allclose(drawn[CONTEXT], expected, atol=1e-5)
    alone = adapt_to_patients(plain, one, strength=context.strength)
    assert not np.allclose(expected, alone, atol=1e-3)  # the neighbours counted

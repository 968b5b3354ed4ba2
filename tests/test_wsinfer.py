"""wsinfer.py: a fitted CNN as a WSInfer model directory, and the real client's run.

The TorchScript module is checked against ``predict_proba`` on the same patches,
for every CNN of the library, a pipeline, the pretrained model and test-time
augmentation; then the real ``wsinfer run`` (a venv of its own, see
``wsinfer_client.py``) scores a slide rebuilt from a patient's archive patches,
and its CSV must hold ``predict_slide``'s probabilities at the tiles both scored.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import make_patches
from imblearn.pipeline import Pipeline
from slide_fixtures import needs_slides
from wsinfer_client import (
    WSINFER_INSTALL,
    run_wsinfer,
    validate_config,
    wsinfer_executable,
)

from idc_sklearn import (
    CruzRoaCNNClassifier,
    JanowczykCNNClassifier,
    MLBNInceptionClassifier,
    PatchResampler,
    export_wsinfer,
    load_idc_sample,
    predict_slide,
    save_model,
)
from idc_sklearn.cli import main
from idc_sklearn.wsinfer import torchscript

# The fixtures: patient, slide, model (the pretrained mlbn-small on the CPU).
pytest_plugins = ["slide_fixtures"]

# Synthetic patches of a side of their own: the config must carry the estimator's.
SIDE = 32
TINY = {
    "patch_shape": (SIDE, SIDE, 3),
    "max_epochs": 1,
    "batch_size": 16,
    "train_split": None,
    "verbose": 0,
    "random_state": 0,
}
MLBN_TINY = {"filters": (3, 3), "head_units": (8,)}
# Each CNN of the library, by what it does to a batch before its network.
CNNS = {
    "mlbn": lambda: MLBNInceptionClassifier(**MLBN_TINY, **TINY),
    "mlbn-zscore": lambda: MLBNInceptionClassifier(
        **MLBN_TINY, **TINY, normalize="zscore"
    ),
    "janowczyk-crop": lambda: JanowczykCNNClassifier(**TINY),
    "cruz-roa-yuv": lambda: CruzRoaCNNClassifier(**TINY),
}
# The differences the export may make: float rounding.
ATOL = 1e-5


@pytest.fixture(scope="module")
def data():
    X, y, _ = make_patches(n=48, size=SIDE)
    return X, y


@pytest.fixture(scope="module")
def fitted(data):
    return {name: make().fit(*data) for name, make in CNNS.items()}


def load_exported(directory):
    with torchscript():
        return torch.jit.load(directory / "torchscript_model.pt")


def wsinfer_proba(module, X) -> np.ndarray:
    """What WSInfer does to patches: ToTensor, the module, the softmax."""
    x = torch.from_numpy(np.ascontiguousarray(X)).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        return module(x).softmax(dim=1).numpy()


def read_config(directory) -> dict:
    return json.loads((directory / "config.json").read_text())


@pytest.mark.parametrize("name", list(CNNS))
def test_probabilities_equal_predict_proba(fitted, data, name, tmp_path):
    estimator = fitted[name]
    assert export_wsinfer(estimator, tmp_path / "model") == tmp_path / "model"
    module = load_exported(tmp_path / "model")
    X = data[0]
    expected = estimator.predict_proba(X)
    # Batches of other sizes than the one traced, and of one.
    for rows in (slice(None), slice(0, 7), slice(3, 4)):
        np.testing.assert_allclose(
            wsinfer_proba(module, X[rows]), expected[rows], rtol=0, atol=ATOL
        )
    config = read_config(tmp_path / "model")
    assert config == {
        "spec_version": "1.0",
        "architecture": type(estimator.module_).__name__,
        "num_classes": 2,
        "class_names": ["non-IDC", "IDC"],
        "patch_size_pixels": SIDE,
        "spacing_um_px": 4.0,
        "transform": [
            {"name": "Resize", "arguments": {"size": SIDE}},
            {"name": "ToTensor"},
        ],
    }


def test_tta_is_exported_as_the_mean_of_the_views(fitted, data, tmp_path):
    plain = fitted["mlbn"]
    with_tta = copy.deepcopy(plain).set_params(tta=True)
    export_wsinfer(with_tta, tmp_path / "tta")
    X = data[0][:16]
    proba = wsinfer_proba(load_exported(tmp_path / "tta"), X)
    # Not the plain network's: the views change what it sees.
    assert np.abs(proba - plain.predict_proba(X)).max() > 1e-4
    np.testing.assert_allclose(proba, with_tta.predict_proba(X), rtol=0, atol=ATOL)


def test_export_leaves_the_estimator_as_it_was(fitted, data, tmp_path):
    estimator = copy.deepcopy(fitted["mlbn"])
    before = {k: v.clone() for k, v in estimator.module_.state_dict().items()}
    proba = estimator.predict_proba(data[0])
    estimator.module_.train()
    export_wsinfer(estimator, tmp_path / "model")
    assert estimator.module_.training
    after = estimator.module_.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert any(
        isinstance(m, torch.nn.BatchNorm2d) for m in estimator.module_.modules()
    ), "the estimator's own network was folded"
    np.testing.assert_array_equal(estimator.predict_proba(data[0]), proba)


def test_a_pipeline_of_a_sampler_and_a_cnn_exports_its_network(data, tmp_path):
    pipeline = Pipeline(
        [
            ("balance", PatchResampler(random_state=0, patch_shape=(SIDE, SIDE, 3))),
            ("clf", CNNS["cruz-roa-yuv"]()),
        ]
    ).fit(*data)
    export_wsinfer(pipeline, tmp_path / "model")
    np.testing.assert_allclose(
        wsinfer_proba(load_exported(tmp_path / "model"), data[0]),
        pipeline.predict_proba(data[0]),
        atol=ATOL,
    )


def test_class_names_and_resolution_reach_the_config(data, tmp_path):
    X, y = data
    labels = np.where(y == 1, "tumour", "benign")
    estimator = CNNS["cruz-roa-yuv"]().fit(X, labels)
    export_wsinfer(estimator, tmp_path / "default")
    assert read_config(tmp_path / "default")["class_names"] == ["benign", "tumour"]
    export_wsinfer(
        estimator, tmp_path / "named", class_names=["B", "T"], target_mpp=2.0
    )
    config = read_config(tmp_path / "named")
    assert (config["class_names"], config["spacing_um_px"]) == (["B", "T"], 2.0)


def test_a_threshold_wrapper_is_refused_naming_the_threshold(fitted, tmp_path):
    from sklearn.model_selection import FixedThresholdClassifier

    wrapped = FixedThresholdClassifier(fitted["mlbn"], threshold=0.3)
    with pytest.raises(TypeError, match="estimator.*decision threshold"):
        export_wsinfer(wrapped, tmp_path / "model")
    assert not (tmp_path / "model").exists()


def test_a_per_patient_model_is_refused_naming_the_adaptation(fitted, tmp_path):
    from idc_sklearn import PatientPriorClassifier

    adapted = PatientPriorClassifier(fitted["mlbn"])
    adapted.estimator_, adapted.classes_ = fitted["mlbn"], fitted["mlbn"].classes_
    with pytest.raises(
        TypeError, match="each tile alone.*share and the mixing.*export the network"
    ):
        export_wsinfer(adapted, tmp_path / "model")
    assert not (tmp_path / "model").exists()


def test_export_command_writes_the_pretrained_model(model, tmp_path, capsys):
    """``idc-sklearn export mlbn-small DIR``: the shipped model, as it predicts."""
    directory = tmp_path / "mlbn-small"
    assert main(["export", "mlbn-small", str(directory)]) == 0
    err = capsys.readouterr().err
    assert "wsinfer run" in err and str(directory / "config.json") in err
    config = read_config(directory)
    assert (config["architecture"], config["patch_size_pixels"]) == (
        "MLBNInception",
        50,
    )
    assert config["class_names"] == ["non-IDC", "IDC"]
    X = load_idc_sample().data[::50]
    np.testing.assert_allclose(
        wsinfer_proba(load_exported(directory), X),
        model.predict_proba(X),
        atol=ATOL,
    )


def test_export_command_tta_on_a_saved_model(tmp_path):
    X, y, _ = make_patches(n=16, size=16)
    estimator = CruzRoaCNNClassifier(**{**TINY, "patch_shape": (16, 16, 3)}).fit(X, y)
    save_model(estimator, tmp_path / "m.safetensors")
    argv = ["export", str(tmp_path / "m.safetensors"), str(tmp_path / "out")]
    assert main([*argv, "--tta", "--quiet", "--target-mpp", "2"]) == 0
    assert read_config(tmp_path / "out")["spacing_um_px"] == 2.0
    np.testing.assert_allclose(
        wsinfer_proba(load_exported(tmp_path / "out"), X),
        estimator.set_params(tta=True).predict_proba(X),
        atol=ATOL,
    )


def test_export_command_refuses_a_stain_step_before_the_network(data, tmp_path, capsys):
    from sklearn.pipeline import make_pipeline

    from idc_sklearn import ReinhardNormalizer

    stained = make_pipeline(
        ReinhardNormalizer(patch_shape=(SIDE, SIDE, 3)), CNNS["cruz-roa-yuv"]()
    ).fit(*data)
    save_model(stained, tmp_path / "stained.safetensors")
    argv = ["export", str(tmp_path / "stained.safetensors"), str(tmp_path / "out")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("idc-sklearn export: error: MODEL ")
    assert "'reinhardnormalizer' (ReinhardNormalizer)" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


# --- the round trip through the real client ---------------------------------------


@pytest.fixture(scope="module")
def wsinfer():
    executable = wsinfer_executable()
    if executable is None:
        pytest.skip(
            "the WSInfer client is absent: set IDC_SKLEARN_WSINFER to a wsinfer "
            f"executable, or make its venv at the repo root: {WSINFER_INSTALL}"
        )
    return executable


def test_config_is_valid_for_wsinfer_zoo(wsinfer, fitted, tmp_path):
    export_wsinfer(fitted["janowczyk-crop"], tmp_path / "model")
    validate_config(wsinfer, tmp_path / "model" / "config.json", home=tmp_path)


def test_wsinfer_run_scores_tiles_as_predict_slide(wsinfer, patient, slide, tmp_path):
    """The exported model in ``wsinfer run``, against ``predict_slide``, tile by tile.

    WSInfer lays its grid from the slide's corner as predict_slide does (at
    ``origin=(0, 0)``), but keeps the tiles whose centre falls in its own tissue
    mask, where predict_slide keeps those with ``min_tissue`` of tissue: the tiles
    both scored are compared.
    """
    needs_slides()
    estimator = CruzRoaCNNClassifier(
        **{**TINY, "patch_shape": (50, 50, 3), "max_epochs": 2}
    ).fit(patient[0], patient[1])
    export_wsinfer(estimator, tmp_path / "model")
    results = tmp_path / "results"
    run_wsinfer(
        wsinfer,
        slide.parent,
        tmp_path / "model",
        results,
        home=tmp_path / "home",
        options=("--num-workers", "1"),
    )
    theirs = pd.read_csv(results / "model-outputs-csv" / f"{slide.stem}.csv")
    assert list(theirs.columns) == [
        "minx",
        "miny",
        "width",
        "height",
        "prob_non-IDC",
        "prob_IDC",
    ]
    # 50 pixels at 4 um per pixel: the slide's own pixels, read without resizing.
    assert (theirs["width"] == 50).all() and (theirs["height"] == 50).all()
    ours = predict_slide(estimator, slide, num_workers=0, progress=False).tiles
    both = ours.merge(theirs, left_on=["x", "y"], right_on=["minx", "miny"])
    assert len(both) >= 0.8 * len(ours) and len(both) >= 400, (
        len(both),
        len(ours),
        len(theirs),
    )
    # The comparison tells tiles apart: the probabilities differ between them.
    assert both["probability"].std() > 0.01
    np.testing.assert_allclose(both["prob_IDC"], both["probability"], atol=1e-4)
    np.testing.assert_allclose(both["prob_non-IDC"] + both["prob_IDC"], 1.0, atol=1e-5)

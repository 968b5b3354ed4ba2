"""save_model and load_model: exact round trips, refusals, hostile files."""

from __future__ import annotations

import io
import json
import pickle
import struct
import warnings

import numpy as np
import pytest
import torch
from imblearn.pipeline import make_pipeline as make_imb_pipeline
from safetensors.torch import save_file
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.utils.validation import check_is_fitted

from idc_sklearn import (
    CruzRoaCNNClassifier,
    FileFormatError,
    JanowczykCNNClassifier,
    MLBNInception,
    MLBNInceptionClassifier,
    PatchNetClassifier,
    PatchResampler,
    ReinhardNormalizer,
    load_model,
    save_model,
)
from idc_sklearn._files import save_tensors
from idc_sklearn.persistence import MODEL_FORMAT
from idc_sklearn.split import PatientValidSplit
from tests.conftest import make_patches, requires_cuda

SHAPE = (16, 16, 3)
COMMON = {
    "patch_shape": SHAPE,
    "max_epochs": 1,
    "batch_size": 8,
    "train_split": None,
    "verbose": 0,
    "random_state": 0,
}
TINY_MLBN = {"filters": (3, 3), "head_units": (4,), **COMMON}

FACTORIES = {
    "mlbn": lambda: MLBNInceptionClassifier(**TINY_MLBN),
    "janowczyk": lambda: JanowczykCNNClassifier(crop_size=16, **COMMON),
    "cruz-roa": lambda: CruzRoaCNNClassifier(**COMMON),
    "patchnet": lambda: PatchNetClassifier(
        MLBNInception, module__filters=(3, 3), module__head_units=(4,), **COMMON
    ),
    "imblearn-pipeline": lambda: make_imb_pipeline(
        PatchResampler(patch_shape=SHAPE, random_state=0),
        MLBNInceptionClassifier(**TINY_MLBN),
    ),
}


@pytest.fixture(scope="module")
def data():
    X, y, groups = make_patches(n=32, size=16, n_patients=4)
    return X, np.where(y == 1, "IDC", "non-IDC"), groups


@pytest.fixture(scope="module")
def fitted(data):
    X, y, _ = data
    return {name: make().fit(X, y) for name, make in FACTORIES.items()}


@pytest.fixture(scope="module")
def model_file(fitted, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "mlbn.safetensors"
    save_model(fitted["mlbn"], path)
    return path


def _net(estimator):
    return estimator[-1] if isinstance(estimator, Pipeline) else estimator


# --- round trips --------------------------------------------------------------


@pytest.mark.parametrize("name", FACTORIES)
def test_round_trip_gives_the_same_probabilities(name, fitted, data, tmp_path):
    X, _, _ = data
    original = fitted[name]
    path = tmp_path / f"{name}.safetensors"
    save_model(original, path)
    loaded = load_model(path)
    assert type(loaded) is type(original)
    check_is_fitted(loaded)
    np.testing.assert_array_equal(loaded.predict_proba(X), original.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), original.predict(X))
    net, loaded_net = _net(original), _net(loaded)
    assert loaded_net.classes_.dtype == net.classes_.dtype
    assert loaded_net.n_features_in_ == net.n_features_in_
    assert loaded_net.history_.to_list() == net.history_.to_list()
    assert loaded_net.get_params(deep=False) == net.get_params(deep=False)


def test_params_and_fitted_arrays_keep_their_types(fitted, tmp_path):
    original = fitted["janowczyk"]
    save_model(original, tmp_path / "m.safetensors")
    loaded = load_model(tmp_path / "m.safetensors")
    params = loaded.get_params(deep=False)
    assert params["patch_shape"] == SHAPE and isinstance(params["patch_shape"], tuple)
    assert params["optimizer"] is torch.optim.Adagrad
    assert params["optimizer__weight_decay"] == 4e-3
    assert loaded.mean_image_.dtype == np.float32
    np.testing.assert_array_equal(loaded.mean_image_, original.mean_image_)
    cruz = load_model(_saved(fitted["cruz-roa"], tmp_path / "c.safetensors"))
    np.testing.assert_array_equal(cruz.channel_std_, fitted["cruz-roa"].channel_std_)
    resampler = load_model(_saved(fitted["imblearn-pipeline"], tmp_path / "p.st"))[0]
    fitted_resampler = fitted["imblearn-pipeline"][0]
    assert resampler.sampling_strategy_ == dict(fitted_resampler.sampling_strategy_)
    np.testing.assert_array_equal(
        resampler.sample_indices_, fitted_resampler.sample_indices_
    )


def _saved(estimator, path):
    save_model(estimator, path)
    return path


def test_class_weight_and_a_patient_split_round_trip(data, tmp_path):
    X, y, groups = data
    original = MLBNInceptionClassifier(
        **{
            **TINY_MLBN,
            "max_epochs": 2,
            "train_split": PatientValidSplit(0.25, random_state=1),
        },
        class_weight={"IDC": 2.0, "non-IDC": 1.0},
    ).fit(X, y, groups=groups)
    loaded = load_model(_saved(original, tmp_path / "m.safetensors"))
    split = loaded.get_params()["train_split"]
    assert isinstance(split, PatientValidSplit) and split.valid_size == 0.25
    assert loaded.class_weight == {"IDC": 2.0, "non-IDC": 1.0}
    np.testing.assert_array_equal(loaded.class_weight_, original.class_weight_)
    np.testing.assert_array_equal(loaded.predict_proba(X), original.predict_proba(X))
    assert [h["valid_bacc"] for h in loaded.history_] == [
        h["valid_bacc"] for h in original.history_
    ]


def test_loaded_model_clones_sets_params_and_trains_on(data, tmp_path):
    X, y, _ = data
    original = MLBNInceptionClassifier(**TINY_MLBN).fit(X, y)
    loaded = load_model(_saved(original, tmp_path / "m.safetensors"))
    clone(loaded).fit(X, y)
    loaded.set_params(lr=5e-4)
    original.set_params(lr=5e-4)
    # The optimizer state is saved, so one more epoch on each is the same epoch.
    loaded.partial_fit(X, y)
    original.partial_fit(X, y)
    assert len(loaded.history_) == 2
    np.testing.assert_array_equal(loaded.predict_proba(X), original.predict_proba(X))


def test_loading_leaves_the_global_random_state_alone(model_file):
    before = torch.get_rng_state()
    load_model(model_file)
    assert torch.equal(torch.get_rng_state(), before)


def test_path_may_be_a_str_and_nothing_else_is_written(fitted, tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"an older file")
    (tmp_path / "other.txt").write_text("kept")
    save_model(fitted["mlbn"], str(path))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "model.safetensors",
        "other.txt",
    ]
    assert (tmp_path / "other.txt").read_text() == "kept"
    assert isinstance(load_model(str(path)), MLBNInceptionClassifier)


# --- devices ------------------------------------------------------------------


def test_a_model_saved_on_cuda_loads_on_a_cpu_only_machine(data, tmp_path):
    X, y, _ = data
    original = MLBNInceptionClassifier(**TINY_MLBN).fit(X, y)
    # What a GPU-trained model records (its device parameter, kept behind the
    # ``device`` property, and device_), with the tensors already on the CPU.
    original._device = original.device_ = "cuda"
    path = _saved(original, tmp_path / "gpu.safetensors")
    original._device = original.device_ = "cpu"
    if torch.cuda.is_available():
        loaded = load_model(path, device="cpu")
    else:
        with pytest.warns(UserWarning, match="no CUDA device is present"):
            loaded = load_model(path)
    assert loaded.device_ == "cpu" and loaded.get_params()["device"] == "cpu"
    assert next(loaded.module_.parameters()).device.type == "cpu"
    np.testing.assert_array_equal(loaded.predict_proba(X), original.predict_proba(X))


def test_auto_device_stays_auto(model_file):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = load_model(model_file)
    assert loaded.get_params()["device"] == "auto"


def test_device_argument_is_checked(model_file):
    with pytest.raises(ValueError, match="device must be"):
        load_model(model_file, device="gpu-please")


@requires_cuda
@pytest.mark.gpu
def test_gpu_model_round_trips_to_cpu_and_back(data, tmp_path):
    X, y, _ = data
    original = MLBNInceptionClassifier(**TINY_MLBN, device="cuda").fit(X, y)
    path = _saved(original, tmp_path / "gpu.safetensors")
    on_cpu = load_model(path, device="cpu")
    np.testing.assert_allclose(
        on_cpu.predict_proba(X), original.predict_proba(X), atol=1e-5
    )
    on_gpu = load_model(path)
    assert on_gpu.device_ == "cuda"
    np.testing.assert_array_equal(on_gpu.predict_proba(X), original.predict_proba(X))


# --- refused at save ----------------------------------------------------------


def test_a_pipeline_with_a_cache_folder_is_refused(fitted, tmp_path):
    pipeline = fitted["imblearn-pipeline"]
    pipeline.set_params(memory=str(tmp_path))
    try:
        with pytest.raises(TypeError, match="stores pipelines without a cache"):
            save_model(pipeline, tmp_path / "m.safetensors")
    finally:
        pipeline.set_params(memory=None)


def test_a_stain_normaliser_step_round_trips(data, tmp_path):
    X, y, _ = data
    original = make_pipeline(
        ReinhardNormalizer(patch_shape=SHAPE),
        MLBNInceptionClassifier(**TINY_MLBN),
    ).fit(X, y)
    loaded = load_model(_saved(original, tmp_path / "m.safetensors"))
    np.testing.assert_array_equal(
        loaded[0].reference_mean_, original[0].reference_mean_
    )
    np.testing.assert_array_equal(loaded.predict_proba(X), original.predict_proba(X))


def test_unfitted_and_non_estimators_are_refused(tmp_path):
    with pytest.raises(NotFittedError):
        save_model(MLBNInceptionClassifier(**TINY_MLBN), tmp_path / "m.safetensors")
    with pytest.raises(TypeError, match="estimator must be a fitted estimator"):
        save_model(MLBNInceptionClassifier, tmp_path / "m.safetensors")
    with pytest.raises(TypeError, match="path must be a str or path-like"):
        save_model(MLBNInceptionClassifier(**TINY_MLBN), 3)
    assert not list(tmp_path.iterdir())


# --- hostile and damaged files ------------------------------------------------


class _RunsCode:
    """Unpickling this creates ``marker``: what a hostile model file would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickle_that_runs_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.safetensors"
    path.write_bytes(pickle.dumps(_RunsCode(marker)))
    with pytest.raises(FileFormatError, match="a Python pickle, which is never loaded"):
        load_model(path)
    assert not marker.exists()
    # The crafted file does run code where it is unpickled.
    pickle.loads(path.read_bytes()).close()
    assert marker.exists()


def test_a_torch_save_archive_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    buffer = io.BytesIO()
    torch.save({"state": _RunsCode(marker)}, buffer)
    path = tmp_path / "model.pt"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(FileFormatError, match=r"zip archive, as torch.save writes"):
        load_model(path)
    assert not marker.exists()


def test_loading_never_unpickles(model_file, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("load_model unpickled something")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    assert isinstance(load_model(model_file), MLBNInceptionClassifier)


def _header(data: bytes):
    (size,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + size]), data[8 + size :]


def _with_header(header: dict, rest: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + rest


@pytest.mark.parametrize(
    "lie",
    ["offsets beyond the data", "shape larger than the data", "header length"],
)
def test_a_header_that_lies_about_sizes_is_refused(lie, model_file, tmp_path):
    header, rest = _header(model_file.read_bytes())
    name = next(k for k in header if k != "__metadata__")
    if lie == "offsets beyond the data":
        header[name]["data_offsets"][1] += 4096
        data = _with_header(header, rest)
    elif lie == "shape larger than the data":
        header[name]["shape"] = [10**6, *header[name]["shape"][1:]]
        data = _with_header(header, rest)
    else:
        data = struct.pack("<Q", 2**40) + model_file.read_bytes()[8:]
    path = tmp_path / "lying.safetensors"
    path.write_bytes(data)
    with pytest.raises(FileFormatError, match="is not a valid safetensors file"):
        load_model(path)


@pytest.mark.parametrize("damage", ["truncated", "empty", "bit in a weight", "header"])
def test_a_damaged_model_file_is_refused(damage, model_file, tmp_path):
    data = bytearray(model_file.read_bytes())
    header_size = struct.unpack("<Q", data[:8])[0]
    if damage == "truncated":
        data = data[: len(data) // 2]
    elif damage == "empty":
        data = bytearray()
    elif damage == "bit in a weight":
        data[-5] ^= 0x10
    else:
        at = data.index(b'\\"max_epochs\\": 1', 8, 8 + header_size)
        data[at + len('\\"max_epochs\\": ')] = ord("7")
    path = tmp_path / "damaged.safetensors"
    path.write_bytes(bytes(data))
    expected = "checksum" if damage in ("bit in a weight", "header") else "not a valid"
    with pytest.raises(FileFormatError, match=expected) as error:
        load_model(path)
    assert str(path) in str(error.value)


def test_other_safetensors_files_are_refused(tmp_path):
    path = tmp_path / "foreign.safetensors"
    save_file({"w": torch.ones(2)}, path)
    with pytest.raises(FileFormatError, match="not one written by idc_sklearn"):
        load_model(path)
    save_tensors(path, {"w": torch.ones(2)}, {"format": "a checkpoint"})
    with pytest.raises(FileFormatError, match="tensor file but not a model file"):
        load_model(path)
    save_tensors(path, {}, {"format": MODEL_FORMAT, "format_version": 99})
    with pytest.raises(FileFormatError, match="format version 99"):
        load_model(path)


def test_a_missing_file_names_its_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.safetensors"):
        load_model(tmp_path / "nowhere.safetensors")

"""The encoding of a model as a JSON document plus tensors (``_serialization.py``),
through save_model and load_model: types kept, what cannot be stored refused before
anything is written, classes only from the allowlist."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import make_patches
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from test_persistence import COMMON, TINY_MLBN

from idc_sklearn import (
    FileFormatError,
    MLBNInception,
    MLBNInceptionClassifier,
    PatchNetClassifier,
    load_model,
    save_model,
)
from idc_sklearn._files import save_tensors
from idc_sklearn.persistence import MODEL_FORMAT, MODEL_FORMAT_VERSION


@pytest.fixture(scope="module")
def data():
    X, y, groups = make_patches(n=32, size=16, n_patients=4)
    return X, np.where(y == 1, "IDC", "non-IDC"), groups


def _saved(estimator, path):
    save_model(estimator, path)
    return path


# --- types kept ---------------------------------------------------------------


@pytest.mark.parametrize(
    "labels",
    [np.array([3, 7]), np.array([False, True]), np.array(["a", "b"], dtype=object)],
    ids=["int", "bool", "object-str"],
)
def test_classes_keep_their_dtype(labels, data, tmp_path):
    X, y, _ = data
    y = labels[(y == "IDC").astype(int)]
    original = MLBNInceptionClassifier(**TINY_MLBN).fit(X, y)
    loaded = load_model(_saved(original, tmp_path / "m.safetensors"))
    assert loaded.classes_.dtype == original.classes_.dtype
    assert loaded.classes_.tolist() == original.classes_.tolist()
    np.testing.assert_array_equal(loaded.predict(X), original.predict(X))


# --- refused at save ----------------------------------------------------------


class _MyLoss(torch.nn.CrossEntropyLoss):
    pass


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (
            lambda: MLBNInceptionClassifier(**TINY_MLBN, criterion=_MyLoss),
            r"parameter 'criterion' .* is the class "
            r".*test_serialization\._MyLoss, which",
        ),
        (
            lambda: MLBNInceptionClassifier(
                **TINY_MLBN, callbacks__print_log__sink=print
            ),
            "parameter 'callbacks__print_log__sink'",
        ),
        (
            lambda: PatchNetClassifier(
                MLBNInception(filters=(3, 3), head_units=(4,), patch_size=16),
                **COMMON,
            ),
            "parameter 'module' .* MLBNInception module instance",
        ),
        (
            lambda: make_pipeline(
                FunctionTransformer(), MLBNInceptionClassifier(**TINY_MLBN)
            ),
            "step 'functiontransformer' .*FunctionTransformer object",
        ),
    ],
    ids=["criterion-class", "callback-function", "module-instance", "step"],
)
def test_what_cannot_be_stored_is_refused_before_writing(make, match, data, tmp_path):
    X, y, _ = data
    estimator = make().fit(X, y)
    path = tmp_path / "m.safetensors"
    path.write_bytes(b"older")
    with pytest.raises(TypeError, match=match):
        save_model(estimator, path)
    assert path.read_bytes() == b"older"
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


# --- classes by allowlisted name ---------------------------------------------


def test_a_file_naming_a_class_outside_the_allowlist_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    estimator = {
        "__kind__": "object",
        "class": "os.system",
        "params": {"command": f"touch {marker}"},
    }
    document = {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "estimator": estimator,
    }
    path = tmp_path / "crafted.safetensors"
    save_tensors(path, {}, document)
    with pytest.raises(FileFormatError, match="names class 'os.system'"):
        load_model(path)
    estimator["class"] = "idc_sklearn._files.atomic_write"
    save_tensors(path, {}, document)
    with pytest.raises(FileFormatError, match="not one a model file may name"):
        load_model(path)
    assert not marker.exists()

"""Every bad input the library detects, tried: the error type and what its message says.

``CASES`` is the single list of bad inputs. Each case is tried by
``test_bad_input`` and written as one row of the table in ``docs/bad_inputs.md``;
``test_the_docs_table_is_generated_from_the_cases`` fails when the two differ. After
changing a case, regenerate the table with::

    python tests/test_bad_inputs.py

A case names the argument its message must name and the other parts (what was
received, what is expected) that the message must hold. Errors must come from the
library's own checks (or sklearn's), never from inside torch. Cases the library
does not meet yet are marked ``pending`` with the fix they wait for; they run as
strict xfails, so they fail loudly once the fix lands and the mark should go.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
import pickle
import re
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
import torch
from conftest import TINY as TINY_MLBN
from sklearn.exceptions import NotFittedError
from sklearn.svm import LinearSVC

from idc_sklearn import (
    ColorHistogram,
    CruzRoaCNNClassifier,
    GLCMFeatures,
    HOGFeatures,
    JanowczykCNNClassifier,
    MLBNInception,
    MLBNInceptionClassifier,
    PatchNetClassifier,
    PatchResampler,
    PatientPriorClassifier,
    adapt_to_patients,
    load_idc,
    make_baseline,
    make_idc_patches,
    paired_bootstrap,
    patient_scores,
    read_patient_split,
    save_model,
    smooth_neighbours,
)
from idc_sklearn.cli import main as cli_main

DOC = Path(__file__).resolve().parents[1] / "docs" / "bad_inputs.md"
PATCH = (16, 16, 3)
N = 20
TINY = {
    "patch_shape": PATCH,
    "max_epochs": 1,
    "train_split": None,
    "verbose": 0,
    "random_state": 0,
}

# --- the data the cases spoil -------------------------------------------------


def _patches(n: int = N, shape: Sequence[int] = PATCH) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, *shape), dtype=np.uint8)


Y = np.tile([0, 1], N // 2)
GROUPS = np.repeat(np.arange(5), N // 5)


def _with(value) -> np.ndarray:
    """Float patches with one pixel replaced by ``value``."""
    X = _patches().astype(np.float64)
    X[3, 2, 1, 0] = value
    return X


def _flat(n_features: int) -> np.ndarray:
    return np.zeros((N, n_features), dtype=np.uint8)


def _mlbn(**params) -> MLBNInceptionClassifier:
    return MLBNInceptionClassifier(**{**TINY_MLBN, **TINY, **params})


def _patchnet(**params) -> PatchNetClassifier:
    return PatchNetClassifier(
        MLBNInception,
        module__filters=(3, 3),
        module__head_units=(4,),
        **{**TINY, **params},
    )


def _janowczyk(**params) -> JanowczykCNNClassifier:
    return JanowczykCNNClassifier(**{**TINY, "crop_size": 16, **params})


def _cruz_roa(**params) -> CruzRoaCNNClassifier:
    return CruzRoaCNNClassifier(**{**TINY, **params})


ESTIMATORS = {
    "MLBNInceptionClassifier": _mlbn,
    "PatchNetClassifier": _patchnet,
    "JanowczykCNNClassifier": _janowczyk,
    "CruzRoaCNNClassifier": _cruz_roa,
}


@functools.cache
def _fitted_mlbn() -> MLBNInceptionClassifier:
    return _mlbn().fit(_patches(), Y)


def _fit(make: Callable = _mlbn, X=None, y=Y, **fit_params):
    return lambda tmp: make().fit(_patches() if X is None else X, y, **fit_params)


def _predict(X):
    return lambda tmp: _fitted_mlbn().predict_proba(X)


def _features(X, transformer=None):
    transformer = transformer or ColorHistogram(patch_shape=PATCH)
    return lambda tmp: transformer.fit_transform(X)


def _resample(X=None, y=Y, **params):
    sampler = PatchResampler(**{"patch_shape": PATCH, "random_state": 0, **params})
    return lambda tmp: sampler.fit_resample(_patches() if X is None else X, y)


def _archive(tmp: Path) -> Path:
    """A one-patch archive in the dataset's layout."""
    from PIL import Image

    folder = tmp / "archive" / "7" / "0"
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (50, 50), "pink").save(folder / "7_idx5_x1_y1_class0.png")
    return tmp / "archive"


def _load(root: Callable[[Path], object] = _archive, **kwargs):
    return lambda tmp: load_idc(root(tmp), progress=False, **kwargs)


def _split_folder(tmp: Path, **lists) -> Path:
    texts = {"train": "1\n2\n", "val": "3\n", "test": "4\n", **lists}
    folder = tmp / "split"
    folder.mkdir(exist_ok=True)
    for name, text in texts.items():
        if text is not None:
            (folder / f"cases_{name}.txt").write_text(text)
    return folder


SCORE = np.linspace(0.1, 0.9, N)
LABELS = (SCORE > 0.5).astype(int)


def _model_file(tmp: Path) -> Path:
    """The tiny fitted MLBN network (16x16 patches), saved for the command to read."""
    path = tmp / "model.safetensors"
    if not path.exists():
        save_model(_fitted_mlbn(), path)
    return path


def _file(name: str, content: bytes | np.ndarray) -> Callable[[Path], None]:
    """Write ``name`` in the case's folder: these bytes, or this array as .npy."""

    def write(tmp: Path) -> None:
        if isinstance(content, np.ndarray):
            np.save(tmp / name, content)
        else:
            (tmp / name).write_bytes(content)

    return write


def cli(command: str, *argv: str, make: Callable[[Path], object] | None = None):
    """Run ``idc-sklearn command --quiet argv`` in this process.

    Returns its exit status and stderr. In ``argv``, ``{tmp}`` is the case's folder
    and ``{model}`` a tiny fitted model saved in it; ``make(tmp)`` writes what else
    the case reads.
    """

    def run(tmp: Path):
        if make is not None:
            make(tmp)
        model = _model_file(tmp) if any("{model}" in a for a in argv) else None
        argv_ = [a.format(tmp=tmp, model=model) for a in argv]
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            status = cli_main([command, "--quiet", *argv_])
        return status, err.getvalue()

    return run


# --- the cases ------------------------------------------------------------------


# --- whole slides (the slides extra, installed with dev) ---


def _slide(tmp: Path, image=None, *, mpp=4.0) -> Path:
    """A small pyramidal TIFF: tissue-coloured, or ``image``."""
    from idc_sklearn import write_slide

    if image is None:
        image = np.full((200, 240, 3), 255, np.uint8)
        image[40:160, 40:200] = (190, 90, 160)
    path = tmp / "slide.tif"
    write_slide(image, path, mpp=mpp)
    return path


def _no_resolution(tmp: Path) -> Path:
    import tifffile

    path = tmp / "plain.tif"
    tifffile.imwrite(path, np.full((64, 64, 3), 200, np.uint8), tile=(16, 16))
    return path


def _text(tmp: Path) -> Path:
    path = tmp / "notes.txt"
    path.write_text("not a slide")
    return path


def _renamed_png(tmp: Path) -> Path:
    from PIL import Image

    path = tmp / "scan.svs"
    Image.fromarray(np.full((64, 64, 3), 200, np.uint8)).save(path, format="PNG")
    return path


def _truncated(tmp: Path) -> Path:
    """A slide of which an interrupted copy kept the first half."""
    whole = _slide(tmp).read_bytes()
    path = tmp / "copied.tif"
    path.write_bytes(whole[: len(whole) // 2])
    return path


# A case that reads a slide needs a reader: OpenSlide or tiffslide.
READERS = ("openslide", "tiffslide")


def _slide_call(make_slide=_slide, estimator=None, **params):
    def call(tmp):
        from idc_sklearn import predict_slide

        model = _fitted_mlbn() if estimator is None else estimator()
        return predict_slide(model, make_slide(tmp), progress=False, **params)

    return call


def _export(estimator=None, directory="model", **params):
    """export_wsinfer of ``estimator()`` (the tiny fitted MLBN) into the folder."""

    def call(tmp):
        from idc_sklearn import export_wsinfer

        model = _fitted_mlbn() if estimator is None else estimator()
        return export_wsinfer(model, tmp / directory, **params)

    return call


def _slides_call(
    slides=("a.svs",), output=lambda tmp: tmp / "out", estimator=None, **params
):
    """predict_slides refusing an argument, before any slide is read."""

    def call(tmp):
        from idc_sklearn import predict_slides

        model = _fitted_mlbn() if estimator is None else estimator()
        listed = slides if isinstance(slides, str) else [tmp / s for s in slides]
        return predict_slides(model, listed, output(tmp), progress=False, **params)

    return call


def _stain_pipeline():
    from sklearn.pipeline import Pipeline

    from idc_sklearn import ReinhardNormalizer

    steps = [("stain", ReinhardNormalizer(patch_shape=PATCH)), ("clf", _mlbn())]
    return Pipeline(steps).fit(_patches(), Y)


@dataclass(frozen=True)
class Case:
    """A bad input, what detects it and the parts its message must hold."""

    id: str
    where: str
    what: str
    call: Callable[[Path], object]
    raises: type[BaseException] | type[Warning] | int  # an int is an exit status
    argument: str
    parts: tuple[str, ...] = ()
    pending: str | None = None
    # optional modules (an extra) of which the case needs one; it skips without
    needs: tuple[str, ...] = ()

    @property
    def raises_text(self) -> str:
        if isinstance(self.raises, int):
            return f"exit status {self.raises}"
        if issubclass(self.raises, Warning):
            return f"{self.raises.__name__} (a warning; the call goes on)"
        return self.raises.__name__


MLBN = "MLBNInceptionClassifier"


def _unknown(param: str, value: str, expected: str) -> Case:
    """An unknown value of an option of the MLBN estimator."""
    return Case(
        param.replace("_", "-"),
        MLBN,
        f"unknown `{param}`",
        _fit(lambda: _mlbn(**{param: value})),
        ValueError,
        param,
        (repr(value), expected),
    )


# fmt: off
CASES = [
    # --- estimators: X ---
    Case("nan", MLBN, "`X` with a NaN (`fit`)", _fit(X=_with(np.nan)), ValueError,
         "X", ("NaN or infinity",)),
    Case("inf", MLBN, "`X` with an infinity (`predict_proba`)", _predict(_with(np.inf)),
         ValueError, "X", ("NaN or infinity",)),
    Case("ndim-3", MLBN, "`X` of one patch, 3-D", _predict(_patches()[0]), ValueError,
         "X", ("3-D", "(16, 16, 3)", "4-D", "X[None]")),
    Case("ndim-5", MLBN, "`X` 5-D", _predict(_patches()[None]), ValueError, "X",
         ("5-D", "4-D (n, height, width, channels)")),
    Case("ndim-1", MLBN, "`X` 1-D", _predict(_patches().ravel()), ValueError, "X",
         ("1-D", "2-D (n, height*width*channels)")),
    Case("ndim-0", MLBN, "`X` a float scalar", _predict(np.float64(3.0)), ValueError,
         "X", ("0-D",)),
    Case("row-length", MLBN, "2-D `X` whose row length does not match `patch_shape`",
         _predict(_flat(767)), ValueError, "X",
         ("767 features per row", "(16, 16, 3)", "have 768")),
    Case("zero-features", MLBN, "2-D `X` with 0 columns", _predict(_flat(0)),
         ValueError, "X", ("0 feature(s)", "768")),
    Case("channels", MLBN, "`X` with 2 channels where the network has 3",
         _predict(_patches()[..., :2]), ValueError, "X",
         ("(16, 16, 2)", "(16, 16, 3)")),
    Case("channels-first", MLBN, "`X` channels-first",
         _predict(_patches().transpose(0, 3, 1, 2)), ValueError, "X",
         ("(3, 16, 16)", "channels-first", "transpose(0, 2, 3, 1)")),
    Case("other-shape", MLBN, "`predict_proba` with patches of another shape than "
         "`fit` saw", _predict(_patches(4, (24, 24, 3))), ValueError, "X",
         ("(24, 24, 3)", "(16, 16, 3)")),
    Case("empty", MLBN, "empty `X` (0 patches)", _fit(X=_patches(0), y=Y[:0]),
         ValueError, "X", ("0 samples", "at least 1 patch")),
    Case("object", MLBN, "`X` of object dtype", _predict(_patches().astype(object)),
         ValueError, "X", ("dtype object", "real numbers")),
    Case("string", MLBN, "`X` of strings", _predict(_patches().astype(str)),
         ValueError, "X", ("dtype <U", "real numbers")),
    Case("complex", MLBN, "`X` of complex numbers",
         _predict(_patches().astype(complex)), ValueError, "X",
         ("complex128", "real numbers")),
    Case("bool", MLBN, "`X` of booleans", _predict(_patches().astype(bool)),
         ValueError, "X", ("dtype bool", "real numbers")),
    Case("timedelta", MLBN, "`X` of time differences (`timedelta64`)",
         _predict(_patches().astype("timedelta64[s]")), ValueError, "X",
         ("timedelta64", "real numbers")),
    Case("sparse", MLBN, "`X` a sparse matrix",
         _predict(scipy.sparse.csr_matrix(_flat(768))), TypeError, "X",
         ("sparse csr_matrix", "dense array")),
    Case("not-an-array", MLBN, "`X` None", _predict(None), TypeError, "X",
         ("NoneType", "numpy array")),
    Case("ragged", MLBN, "`X` a list of patches of different shapes",
         _predict([_patches()[0], _patches()[0, :8]]), ValueError, "X",
         ("shape",)),
    Case("scaled-floats", MLBN, "float patches already scaled to [0, 1] with "
         "`normalize=\"scale\"` (which reads 0-255)", _predict(_patches() / 255.0),
         UserWarning, "X", ("[0, 1]", "normalize='scale'", "0-255")),
    # --- estimators: y and groups ---
    Case("y-length", MLBN, "`y` of another length than `X`", _fit(y=Y[:-1]),
         ValueError, "y", ("20 patches", "19 labels")),
    Case("y-none", MLBN, "`y` None", _fit(y=None), ValueError, "y", ("None",)),
    Case("y-2d", MLBN, "`y` of shape (n, 2)", _fit(y=np.c_[Y, Y]), ValueError, "y",
         ("(20, 2)", "1-D")),
    Case("single-class", MLBN, "`y` with a single class", _fit(y=np.zeros(N)),
         ValueError, "y", ("1 class", "at least 2 classes")),
    Case("continuous", MLBN, "continuous `y`", _fit(y=np.linspace(0, 1, N)),
         ValueError, "y", ("continuous",)),
    Case("y-nan", MLBN, "`y` with a NaN", _fit(y=np.where(Y == 0, np.nan, 1.0)),
         ValueError, "y", ("NaN",)),
    Case("groups-length", MLBN, "`groups` of another length than `X`",
         _fit(groups=GROUPS[:-1]), ValueError, "groups", ("(20,)", "(19,)")),
    Case("groups-missing", MLBN, "`groups` with a missing patient id (None)",
         _fit(groups=np.where(np.arange(N) == 3, None, GROUPS.astype(object))),
         ValueError, "groups", ("1 missing patient id", "patch 3")),
    # --- estimators: parameters ---
    _unknown("device", "tpu", '"cuda:<index>"'),
    Case("cuda-absent", MLBN, "a CUDA device that does not exist",
         _fit(lambda: _mlbn(device="cuda:99")), ValueError, "device",
         ("'cuda:99'",)),
    _unknown("normalize", "minmax", "'zscore'"),
    _unknown("class_weight", "auto", "balanced"),
    _unknown("resample", "smote", "'over'"),
    _unknown("augment", "mixup", "'dihedral'"),
    _unknown("precision", "fp8", "'bfloat16'"),
    _unknown("inference", "fast", "'compile'"),
    Case("patch-shape", MLBN, "`patch_shape` not a (height, width, channels) triple",
         _fit(lambda: _mlbn(patch_shape=(16, 16))), ValueError, "patch_shape",
         ("(16, 16)", "3 positive ints")),
    Case("filters-zero", MLBN, "`filters` with a 0",
         _fit(lambda: _mlbn(filters=(3, 0))), ValueError, "filters",
         ("(3, 0)", "positive ints")),
    Case("filters-int", MLBN, "`filters` an int, not a sequence",
         _fit(lambda: _mlbn(filters=3)), ValueError, "filters",
         ("Got 3", "array-like")),
    Case("filters-empty", MLBN, "`filters` empty", _fit(lambda: _mlbn(filters=())),
         ValueError, "filters", ("()", "non-empty")),
    Case("filters-float", MLBN, "`filters` with a float",
         _fit(lambda: _mlbn(filters=(3.5, 3))), ValueError, "filters",
         ("(3.5, 3)", "positive ints")),
    Case("filters-small", MLBN, "`filters` with a branch narrower than 3",
         _fit(lambda: _mlbn(filters=(2, 3))), ValueError, "filters",
         ("2", ">= 3")),
    Case("head-units", MLBN, "`head_units` with a negative width",
         _fit(lambda: _mlbn(head_units=(-1,))), ValueError, "head_units",
         ("(-1,)", "positive ints")),
    Case("head-units-str", MLBN, "`head_units` a string",
         _fit(lambda: _mlbn(head_units="8")), ValueError, "head_units",
         ("Got '8'", "array-like")),
    Case("dropout", MLBN, "`dropout` out of [0, 1)",
         _fit(lambda: _mlbn(dropout=1.5)), ValueError, "dropout",
         ("Got 1.5", "[0.0, 1.0)")),
    _unknown("init", "xavier", "'glorot'"),
    Case("too-small", MLBN, "a patch smaller than the network accepts (8x8)",
         _fit(lambda: _mlbn(patch_shape=(8, 8, 3)), X=_patches(shape=(8, 8, 3))),
         ValueError, "patch_shape", ("(8, 8", "16")),
    Case("not-fitted", MLBN, "`predict` before `fit`",
         lambda tmp: _mlbn().predict(_patches()), NotFittedError,
         "MLBNInceptionClassifier", ("not initialized", "'fit'")),
    # --- the other estimators share the checks; one of each kind is tried ---
    *[
        case
        for name, make in ESTIMATORS.items()
        if name != MLBN
        for case in (
            Case(f"{name}-nan", name, "`X` with a NaN (`fit`)",
                 _fit(make, X=_with(np.nan)), ValueError, "X", ("NaN or infinity",)),
            Case(f"{name}-channels", name, "`X` with 2 channels",
                 _fit(make, X=_patches()[..., :2]), ValueError, "X",
                 ("(16, 16, 2)", "(16, 16, 3)")),
            Case(f"{name}-single-class", name, "`y` with a single class",
                 _fit(make, y=np.ones(N)), ValueError, "y", ("1 class",)),
            Case(f"{name}-not-fitted", name, "`predict` before `fit`",
                 lambda tmp, make=make: make().predict(_patches()), NotFittedError,
                 name, ("not initialized",)),
        )
    ],
    Case("crop-size", "JanowczykCNNClassifier", "`crop_size` larger than the patch",
         _fit(lambda: _janowczyk(crop_size=40)), ValueError, "crop_size",
         ("got 40", "16 to the patch side 16")),
    Case("cruz-roa-too-small", "CruzRoaCNNClassifier", "a patch smaller than the "
         "network accepts (8x8)",
         _fit(lambda: _cruz_roa(patch_shape=(8, 8, 3)), X=_patches(shape=(8, 8, 3))),
         ValueError, "patch_shape", ("(8, 8", "16")),
    # --- feature transformers (idc_sklearn.handcrafted) ---
    Case("features-nan", "handcrafted transformers", "`X` with a NaN",
         _features(_with(np.nan)), ValueError, "X", ("NaN or infinity",)),
    Case("features-ndim", "handcrafted transformers", "`X` of one patch, 3-D",
         _features(_patches()[0]), ValueError, "X", ("3-D", "X[None]")),
    Case("features-row-length", "handcrafted transformers",
         "2-D `X` whose row length does not match `patch_shape`",
         _features(_flat(767)), ValueError, "X", ("767", "768")),
    Case("features-channels", "handcrafted transformers", "`X` with 2 channels",
         _features(_patches()[..., :2]), ValueError, "X",
         ("(16, 16, 2)", "(16, 16, 3)")),
    Case("features-empty", "handcrafted transformers", "empty `X`",
         _features(_patches(0)), ValueError, "X", ("0 samples",)),
    Case("features-object", "handcrafted transformers", "`X` of object dtype",
         _features(_patches().astype(object)), ValueError, "X", ("dtype object",)),
    Case("features-complex", "handcrafted transformers", "`X` of complex numbers",
         _features(_patches().astype(complex)), ValueError, "X", ("complex128",)),
    Case("features-range", "handcrafted transformers", "`X` with values above 255",
         _features(_patches() * 2.0), ValueError, "X",
         ("[0.0, 510.0]", "0-255 scale")),
    Case("features-negative", "handcrafted transformers", "`X` with negative values",
         _features(_patches() - 10.0), ValueError, "X", ("[-10.0,", "0-255 scale")),
    Case("features-rgb", "handcrafted transformers", "`patch_shape` with 4 channels",
         _features(_patches(), ColorHistogram(patch_shape=(16, 16, 4))), ValueError,
         "patch_shape", ("(16, 16, 4)", "RGB")),
    Case("features-bins", "handcrafted transformers", "`bins` below 2",
         _features(_patches(), ColorHistogram(bins=0, patch_shape=PATCH)),
         ValueError, "bins", ("Got 0", "[2, inf)")),
    Case("features-color-space", "handcrafted transformers", "unknown `color_space`",
         _features(_patches(), ColorHistogram(color_space="lab", patch_shape=PATCH)),
         ValueError, "color_space", ("'lab'", "'hed'")),
    Case("features-distances", "handcrafted transformers", "`GLCMFeatures` "
         "`distances` empty",
         _features(_patches(), GLCMFeatures(distances=(), patch_shape=PATCH)),
         ValueError, "distances", ("()", "non-empty")),
    Case("features-hog-cells", "handcrafted transformers", "`HOGFeatures` cells "
         "larger than the patch",
         _features(_patches(),
                   HOGFeatures(pixels_per_cell=(32, 32), patch_shape=PATCH)),
         ValueError, "pixels_per_cell", ("(32, 32)", "96x96", "(16, 16, 3)")),
    Case("features-other-shape", "handcrafted transformers",
         "`transform` with patches of another shape than `fit` saw",
         lambda tmp: ColorHistogram(patch_shape=PATCH).fit(_patches()).transform(
             _patches(4, (24, 24, 3))), ValueError, "X",
         ("(24, 24, 3)", "(16, 16, 3)")),
    Case("baseline-name", "make_baseline", "unknown baseline name",
         lambda tmp: make_baseline("nope"), ValueError, "name",
         ("'nope'", "'features-rf'")),
    # --- samplers ---
    Case("sampler-kind", "PatchResampler", "unknown `kind`", _resample(kind="smote"),
         ValueError, "kind", ("'smote'", "'over'")),
    Case("sampler-y-length", "PatchResampler", "`y` of another length than `X`",
         _resample(y=Y[:-1]), ValueError, "y", ("20 patches", "19 labels")),
    Case("sampler-single-class", "PatchResampler", "`y` with a single class",
         _resample(y=np.zeros(N)), ValueError, "y", ("1 class",)),
    Case("sampler-continuous", "PatchResampler", "continuous `y`",
         _resample(y=np.linspace(0, 1, N)), ValueError, "y", ("continuous",)),
    Case("sampler-nan", "PatchResampler", "`X` with a NaN", _resample(X=_with(np.nan)),
         ValueError, "X", ("NaN or infinity",)),
    Case("sampler-channels", "PatchResampler", "`X` with 2 channels",
         _resample(X=_patches()[..., :2]), ValueError, "X",
         ("(16, 16, 2)", "(16, 16, 3)")),
    Case("sampler-strategy", "PatchResampler", "`sampling_strategy` above 1",
         _resample(sampling_strategy=2.0), ValueError, "sampling_strategy",
         ("Got 2.0", "(0.0, 1.0]")),
    # --- each patient's own share (idc_sklearn.prior_shift) ---
    Case("prior-proba", "adapt_to_patients", "`proba` above 1",
         lambda tmp: adapt_to_patients(np.where(Y, 1.5, 0.2), GROUPS), ValueError,
         "proba", ("[0, 1]", "one probability of IDC")),
    Case("prior-groups", "adapt_to_patients", "`groups` of another length",
         lambda tmp: adapt_to_patients(SCORE, GROUPS[:-1]), ValueError, "groups",
         ("one patient id per patch", "(20,)", "(19,)")),
    Case("prior-strength", "adapt_to_patients", "a negative `strength`",
         lambda tmp: adapt_to_patients(SCORE, GROUPS, strength=-1), ValueError,
         "strength", (">= 0", "got -1")),
    Case("prior-train-prior", "PatientPriorClassifier", "`train_prior` of 1",
         lambda tmp: PatientPriorClassifier(_mlbn(), train_prior=1).fit(_patches(), Y),
         ValueError, "train_prior", ("strictly between 0 and 1", "got 1")),
    Case("prior-no-proba", "PatientPriorClassifier", "an `estimator` without "
         "`predict_proba`",
         lambda tmp: PatientPriorClassifier(LinearSVC()).fit(_patches(), Y),
         TypeError, "estimator", ("predict_proba", "LinearSVC")),
    Case("neighbours-coords", "smooth_neighbours", "`coords` of one column",
         lambda tmp: smooth_neighbours(SCORE, np.zeros((N, 1))), ValueError,
         "coords", ("(x, y) position", f"({N}, 2)", f"({N}, 1)")),
    Case("neighbours-nan", "smooth_neighbours", "a NaN position",
         lambda tmp: smooth_neighbours(SCORE, np.where(np.eye(N, 2), np.nan, 0.0)),
         ValueError, "coords", ("finite positions", "2 NaN")),
    Case("neighbours-weight", "smooth_neighbours", "a `weight` above 1",
         lambda tmp: smooth_neighbours(SCORE, np.zeros((N, 2)), weight=2),
         ValueError, "neighbour_weight", ("[0, 1]", "got 2")),
    Case("prior-neighbours", "PatientPriorClassifier", "a negative "
         "`neighbour_weight`",
         lambda tmp: PatientPriorClassifier(_mlbn(), neighbour_weight=-1).fit(
             _patches(), Y),
         ValueError, "neighbour_weight", ("[0, 1]", "got -1")),
    # --- loaders ---
    Case("root-missing", "load_idc", "`root` that does not exist",
         _load(lambda tmp: tmp / "nowhere"), FileNotFoundError, "root",
         ("nowhere", "does not exist", "<patient>/<0|1>/")),
    Case("root-file", "load_idc", "`root` a file", _load(lambda tmp: _archive(tmp)
         / "7" / "0" / "7_idx5_x1_y1_class0.png"), NotADirectoryError, "root",
         ("is a file, not a folder",)),
    Case("root-empty", "load_idc", "`root` an empty folder", _load(lambda tmp: tmp),
         ValueError, "root", ("holds no patient folders", "It is empty")),
    Case("root-type", "load_idc", "`root` not a path", _load(lambda tmp: 42),
         TypeError, "root", ("int",)),
    Case("patients-unknown", "load_idc", "unknown patient ids",
         _load(patients=["999"]), ValueError, "patients", ("'999'", "'7'")),
    Case("pad", "load_idc", "unknown `pad`", _load(pad="edge"), ValueError, "pad",
         ("'edge'", "'reflect'")),
    Case("n-jobs", "load_idc", "`n_jobs=0`", _load(n_jobs=0), ValueError, "n_jobs",
         ("got 0", "-1 (all cores)")),
    Case("cache-type", "load_idc", "`cache` not a path", _load(cache=3), TypeError,
         "cache", ("int",)),
    Case("split-missing", "read_patient_split", "a folder that does not exist",
         lambda tmp: read_patient_split(tmp / "nowhere"), FileNotFoundError,
         "folder", ("nowhere", "cases_train.txt")),
    Case("split-file-missing", "read_patient_split", "a folder without cases_val.txt",
         lambda tmp: read_patient_split(_split_folder(tmp, val=None)),
         FileNotFoundError, "cases_val.txt", ("is missing",)),
    Case("split-overlap", "read_patient_split", "a patient in two lists",
         lambda tmp: read_patient_split(_split_folder(tmp, test="1\n")), ValueError,
         "patient '1'", ("cases_train.txt", "cases_test.txt")),
    Case("split-empty", "read_patient_split", "an empty list",
         lambda tmp: read_patient_split(_split_folder(tmp, val="\n")), ValueError,
         "cases_val.txt", ("lists no patient ids",)),
    Case("synthetic-n-patients", "make_idc_patches", "`n_patients=0`",
         lambda tmp: make_idc_patches(n_patients=0), ValueError, "n_patients",
         ("Got 0", "[1, inf)")),
    Case("synthetic-float", "make_idc_patches", "`n_patients=2.5`",
         lambda tmp: make_idc_patches(n_patients=2.5), TypeError, "n_patients",
         ("Got 2.5", "an int")),
    Case("synthetic-patch-size", "make_idc_patches", "`patch_size` below 8",
         lambda tmp: make_idc_patches(patch_size=4), ValueError, "patch_size",
         ("Got 4", "[8, inf)")),
    Case("synthetic-fraction", "make_idc_patches", "`positive_fraction` above 1",
         lambda tmp: make_idc_patches(positive_fraction=1.5), ValueError,
         "positive_fraction", ("Got 1.5", "[0.0, 1.0]")),
    # --- metrics ---
    Case("score-nan", "patient_scores", "`y_score` with a NaN",
         lambda tmp: patient_scores(Y, np.where(Y, np.nan, 0.5), GROUPS), ValueError,
         "y_score", ("NaN or infinity",)),
    Case("score-length", "patient_scores", "`y_score` of another length",
         lambda tmp: patient_scores(Y, SCORE[:-1], GROUPS), ValueError, "y_score",
         ("19 entries", "20")),
    Case("metric-groups-length", "patient_scores", "`groups` of another length",
         lambda tmp: patient_scores(Y, SCORE, GROUPS[:-1]), ValueError, "groups",
         ("19 entries", "20")),
    Case("y-true-labels", "patient_scores", "`y_true` with labels other than 0 and 1",
         lambda tmp: patient_scores(np.arange(N) % 3, SCORE, GROUPS), ValueError,
         "y_true", ("'2'", "0 (no IDC) and 1 (IDC)")),
    Case("threshold", "patient_scores", "`threshold` NaN",
         lambda tmp: patient_scores(Y, SCORE, GROUPS, threshold=np.nan), ValueError,
         "threshold", ("nan", "finite")),
    Case("bootstrap-metric", "paired_bootstrap", "unknown `metric`",
         lambda tmp: paired_bootstrap(Y, LABELS, 1 - LABELS, GROUPS, metric="acc"),
         ValueError, "metric", ("'acc'", "'balanced_accuracy'")),
    Case("bootstrap-scores", "paired_bootstrap", "scores where `metric` needs labels",
         lambda tmp: paired_bootstrap(Y, SCORE, LABELS, GROUPS), ValueError,
         "pred_a", ("'balanced_accuracy'", "labels 0 and 1")),
    Case("bootstrap-n", "paired_bootstrap", "`n_resamples=0`",
         lambda tmp: paired_bootstrap(Y, LABELS, 1 - LABELS, GROUPS, n_resamples=0),
         ValueError, "n_resamples", ("got 0", "at least 1")),
    Case("bootstrap-level", "paired_bootstrap", "`confidence_level` above 1",
         lambda tmp: paired_bootstrap(
             Y, LABELS, 1 - LABELS, GROUPS, confidence_level=1.5),
         ValueError, "confidence_level", ("got 1.5", "(0, 1)")),
    # --- whole slides ---
    Case("slide-missing", "predict_slide", "`slide` that does not exist",
         _slide_call(lambda tmp: tmp / "missing.svs"), FileNotFoundError, "slide",
         ("missing.svs", "does not exist")),
    Case("slide-not-a-slide", "predict_slide", "`slide` a text file",
         _slide_call(_text), ValueError, "slide",
         ("notes.txt", "not a whole-slide image", "OpenSlide"), needs=READERS),
    Case("slide-folder", "predict_slide", "`slide` a folder",
         _slide_call(lambda tmp: tmp), ValueError, "slide",
         ("is a folder", "whole-slide image file")),
    Case("slide-renamed", "predict_slide", "`slide` a PNG renamed `.svs`",
         _slide_call(_renamed_png), ValueError, "slide",
         ("scan.svs", "PNG image of 64 x 64 pixels, not the .svs", "expected a whole"),
         needs=READERS),
    Case("slide-truncated", "predict_slide", "`slide` a copy cut short",
         _slide_call(_truncated), ValueError, "slide",
         ("copied.tif", "cut short", "copy it again"), needs=READERS),
    Case("slide-no-mpp", "predict_slide", "a slide without resolution, no `mpp`",
         _slide_call(_no_resolution), ValueError, "mpp",
         ("records no resolution", "microns per pixel"), needs=READERS),
    Case("slide-no-tissue", "predict_slide", "a blank slide",
         _slide_call(lambda tmp: _slide(tmp, np.full((200, 240, 3), 255, np.uint8))),
         ValueError, "min_tissue", ("no tissue found", "tissue_threshold"),
         needs=READERS),
    Case("slide-tile-size", "predict_slide", "`tile_size` the model does not take",
         _slide_call(tile_size=32), ValueError, "tile_size",
         ("32", "takes 16x16")),
    Case("slide-unfitted", "predict_slide", "an `estimator` not fitted",
         _slide_call(estimator=_mlbn), NotFittedError, "estimator",
         ("not fitted",)),
    Case("slide-mpp", "predict_slide", "`mpp` negative",
         _slide_call(mpp=-1.0), ValueError, "mpp", ("-1.0", "positive number")),
    Case("slide-min-tissue", "predict_slide", "`min_tissue` above 1",
         _slide_call(min_tissue=1.5), ValueError, "min_tissue", ("1.5", "[0, 1]")),
    # --- WSInfer export ---
    Case("wsinfer-handcrafted", "export_wsinfer", "a handcrafted baseline",
         _export(lambda: make_baseline("color-logreg", patch_shape=PATCH).fit(
             _patches(), Y)),
         TypeError, "estimator", ("Pipeline ending in", "no TorchScript form")),
    Case("wsinfer-unfitted", "export_wsinfer", "an `estimator` not fitted",
         _export(_mlbn), NotFittedError, "estimator", ("not fitted",)),
    Case("wsinfer-stain-step", "export_wsinfer", "a pipeline step that transforms "
         "the patches before the network", _export(_stain_pipeline), ValueError,
         "estimator", ("'stain'", "ReinhardNormalizer", "WSInfer runs the network")),
    Case("wsinfer-class-names", "export_wsinfer", "`class_names` of one name for "
         "two classes", _export(class_names=["IDC"]), ValueError, "class_names",
         ("2 classes", "['IDC']")),
    Case("wsinfer-directory", "export_wsinfer", "`directory` in a folder that does "
         "not exist", _export(directory="nowhere/model"), FileNotFoundError,
         "directory", ("nowhere", "does not exist")),
    Case("wsinfer-target-mpp", "export_wsinfer", "`target_mpp` 0",
         _export(target_mpp=0), ValueError, "target_mpp", ("got 0", "positive")),
    Case("slides-empty", "predict_slides", "`slides` empty", _slides_call(()),
         ValueError, "slides", ("is empty", "at least one")),
    Case("slides-one-path", "predict_slides", "`slides` one path, not a list",
         _slides_call("a.svs"), TypeError, "slides", ("[slide]", "got str")),
    Case("slides-same-name", "predict_slides", "two `slides` of one file name",
         _slides_call(("a.svs", "b/a.svs")), ValueError, "slides",
         ("a.svs", "share a file name")),
    Case("slides-output-file", "predict_slides", "`output_dir` a file",
         _slides_call(output=_text), ValueError, "output_dir",
         ("notes.txt", "expected a folder")),
    Case("slides-client", "predict_slides", "`client` an address, not a Client",
         _slides_call(client="tcp://head:8786"), TypeError, "client",
         ("dask.distributed.Client", "got str")),
    Case("slides-option", "predict_slides", "an option `predict_slide` lacks",
         _slides_call(tile=50), TypeError, "predict_slide", ("'tile'", "min_tissue")),
    Case("slides-unfitted", "predict_slides", "an `estimator` not fitted",
         _slides_call(estimator=_mlbn), NotFittedError, "estimator", ("not fitted",)),
    # --- the command line ---
    Case("cli-device", "idc-sklearn compare", "`--device tpu`",
         cli("compare", "--device", "tpu"), 2, "--device", ("'tpu'", "cuda:<index>")),
    Case("cli-cuda-absent", "idc-sklearn compare", "`--device cuda:99` (no such GPU)",
         cli("compare", "--device", "cuda:99"), 2, "--device cuda:99",
         ("CUDA GPU(s)", "cpu")),
    Case("cli-data-missing", "idc-sklearn compare", "`--data` a folder that does not "
         "exist", cli("compare", "--data", "{tmp}/nowhere"), 1, "--data",
         ("nowhere", "does not exist")),
    Case("cli-data-empty", "idc-sklearn compare", "`--data` an empty folder",
         cli("compare", "--data", "{tmp}"), 1, "--data", ("holds no patient folders",)),
    Case("cli-split-missing", "idc-sklearn compare", "`--split` a folder that does "
         "not exist", cli("compare", "--split", "{tmp}/nowhere"), 1, "--split",
         ("nowhere", "cases_train.txt")),
    Case("cli-split-synthetic", "idc-sklearn compare", "`--split` with synthetic data",
         cli("compare", "--data", "synthetic", "--split", "{tmp}"), 2, "--split",
         ("synthetic data",)),
    Case("cli-n-patches", "idc-sklearn compare", "`--n-patches 1`",
         cli("compare", "--n-patches", "1"), 2, "--n-patches", ("at least 2", "got 1")),
    Case("cli-folds", "idc-sklearn compare", "more `--folds` than patients",
         cli("compare", "--n-patients", "2", "--folds", "3"), 2, "--folds 3",
         ("--n-patients is 2",)),
    Case("cli-folds-data", "idc-sklearn compare", "more `--folds` than the patients "
         "`--data` holds", cli("compare", "--data", "sample", "--folds", "200"), 1,
         "--folds 200", ("the 114 patients", "--data sample")),
    Case("cli-model", "idc-sklearn compare", "an unknown `--models` name",
         cli("compare", "--models", "nope"), 2, "--models", ("'nope'", "mlbn")),
    Case("cli-train-data-missing", "idc-sklearn train", "`--data` a folder that does "
         "not exist", cli("train", "--data", "{tmp}/nowhere", "-o", "{tmp}/m"), 1,
         "--data", ("nowhere", "does not exist")),
    Case("cli-train-output", "idc-sklearn train", "`--output` in a folder that does "
         "not exist", cli("train", "-o", "{tmp}/nowhere/m.safetensors"), 1, "--output",
         ("nowhere", "does not exist")),
    Case("cli-model-missing", "idc-sklearn predict", "`MODEL` a file that does not "
         "exist", cli("predict", "{tmp}/nowhere.safetensors", "{tmp}"), 1, "MODEL",
         ("nowhere.safetensors", "does not exist")),
    Case("cli-model-text", "idc-sklearn predict", "`MODEL` a file that is not a model",
         cli("predict", "{tmp}/notes.safetensors", "{tmp}",
             make=_file("notes.safetensors", b"not a model")),
         1, "MODEL", ("notes.safetensors", "not a valid safetensors file")),
    Case("cli-model-pickle", "idc-sklearn predict", "`MODEL` a Python pickle",
         cli("predict", "{tmp}/m.safetensors", "{tmp}",
             make=_file("m.safetensors", pickle.dumps({"weights": [0.5]}))),
         1, "MODEL", ("pickle", "never loaded")),
    Case("cli-path-missing", "idc-sklearn predict", "`PATH` that does not exist",
         cli("predict", "{model}", "{tmp}/nowhere"), 1, "PATH",
         ("nowhere", "does not exist")),
    Case("cli-path-suffix", "idc-sklearn predict", "`PATH` a file that is not .npy",
         cli("predict", "{model}", "{tmp}/data.csv", make=_file("data.csv", b"a,b\n")),
         1, "PATH", (".csv file", "a folder of PNG patches or an .npy array")),
    Case("cli-npy-shape", "idc-sklearn predict", "`PATH` an .npy of the wrong shape",
         cli("predict", "{model}", "{tmp}/flat.npy",
             make=_file("flat.npy", np.zeros((4, 10), np.uint8))),
         1, "PATH", ("10 features per row", "(16, 16, 3)", "768")),
    Case("cli-npy-dtype", "idc-sklearn predict", "`PATH` an .npy of complex numbers",
         cli("predict", "{model}", "{tmp}/complex.npy",
             make=_file("complex.npy", np.zeros((2, 16, 16, 3), complex))),
         1, "PATH", ("complex128", "real numbers")),
    Case("cli-npy-objects", "idc-sklearn predict", "`PATH` an .npy of pickled objects",
         cli("predict", "{model}", "{tmp}/objects.npy",
             make=_file("objects.npy", np.array([{"a": 1}], dtype=object))),
         1, "PATH", ("Python objects", "never loaded", "numbers")),
    Case("cli-npy-fake", "idc-sklearn predict", "`PATH` a text file named .npy",
         cli("predict", "{model}", "{tmp}/fake.npy", make=_file("fake.npy", b"hello")),
         1, "PATH", ("not a NumPy .npy file",)),
    Case("cli-png-none", "idc-sklearn predict", "`PATH` a folder with no patches",
         cli("predict", "{model}", "{tmp}/empty",
             make=lambda tmp: (tmp / "empty").mkdir()),
         1, "PATH", ("holds no PNG patches",)),
    Case("cli-predict-output", "idc-sklearn predict", "`--output` in a folder that "
         "does not exist", cli("predict", "{model}", "{tmp}", "-o", "{tmp}/no/p.csv"),
         1, "--output", ("does not exist",)),
    Case("cli-patient-sample", "idc-sklearn heatmap",
         "an unknown `--patient` of the sample",
         cli("heatmap", "{model}", "--patient", "nobody", "-o", "{tmp}/s.png"),
         1, "--patient", ("nobody", "built-in sample", "114 patients")),
    Case("cli-patient-archive", "idc-sklearn heatmap", "an unknown `--patient` of a "
         "folder", cli("heatmap", "{model}", "--data", "{tmp}/archive", "--patient",
                       "nobody", "-o", "{tmp}/s.png", make=_archive),
         1, "--data", ("['nobody']", "not in the archive", "['7']")),
    Case("cli-heatmap-shape", "idc-sklearn heatmap", "`--data` of larger patches than "
         "the model takes", cli("heatmap", "{model}", "--data", "{tmp}/archive",
                                "--patient", "7", "-o", "{tmp}/s.png", make=_archive),
         1, "--data", ("50x50", "the model takes 16x16")),
    Case("cli-heatmap-png", "idc-sklearn heatmap", "`--output` not a .png",
         cli("heatmap", "{tmp}/m", "--patient", "7", "-o", "{tmp}/s.jpg"), 2,
         "--output", ("s.jpg", "ending in .png")),
    Case("cli-export-target-mpp", "idc-sklearn export", "`--target-mpp 0`",
         cli("export", "mlbn-small", "{tmp}/model", "--target-mpp", "0"), 2,
         "--target-mpp", ("expected a positive number",)),
    Case("cli-info-data", "idc-sklearn info", "`--data` a folder that does not exist",
         cli("info", "--data", "{tmp}/nowhere"), 1, "--data",
         ("nowhere", "does not exist")),
]
# fmt: on


def _marks(case: Case):
    if case.pending is None:
        return ()
    return (pytest.mark.xfail(strict=True, reason=case.pending),)


def names_argument(message: str, argument: str) -> bool:
    """Whether ``argument`` appears in ``message`` as a word, not inside one."""
    return re.search(rf"(?<![\w-]){re.escape(argument)}(?!\w)", message) is not None


TORCH = Path(torch.__file__).resolve().parent


def raised_inside_torch(info: pytest.ExceptionInfo) -> bool:
    """Whether the exception was raised by torch's code rather than a check."""
    return TORCH in Path(str(info.traceback[-1].path)).resolve().parents


# numpy warns while sklearn casts a NaN label; the case is about the error.
@pytest.mark.filterwarnings("ignore:invalid value encountered in cast:RuntimeWarning")
@pytest.mark.parametrize(
    "case", [pytest.param(c, id=c.id, marks=_marks(c)) for c in CASES]
)
def test_bad_input(case: Case, tmp_path):
    if case.needs and not any(importlib.util.find_spec(m) for m in case.needs):
        needs = " or ".join(case.needs)
        pytest.skip(f"needs {needs} (an optional extra); none is installed")
    if isinstance(case.raises, int):
        status, message = case.call(tmp_path)
        assert status == case.raises, message
        if status == 1:  # a fault found while running: one line, no traceback
            command = case.where.removeprefix("idc-sklearn ")
            assert message.startswith(f"idc-sklearn {command}: error: "), message
            assert message.count("\n") == 1, message
    elif issubclass(case.raises, Warning):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            case.call(tmp_path)
        messages = [str(w.message) for w in caught if w.category is case.raises]
        assert len(messages) == 1, [str(w.message) for w in caught]
        message = messages[0]
    else:
        with pytest.raises(case.raises) as info:
            case.call(tmp_path)
        assert not raised_inside_torch(info), info.traceback[-1]
        message = str(info.value)
    assert names_argument(message, case.argument), message
    for part in case.parts:
        assert part in message, message


def test_case_ids_are_unique():
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))


# --- the table in docs/bad_inputs.md --------------------------------------------

BEGIN = "<!-- generated from the cases of tests/{}: python tests/test_bad_inputs.py -->"
END = "<!-- end of the generated table -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _code(text: str) -> str:
    return f"`{text}`" if "`" not in text else f"``{text}``"


def bad_input_table() -> str:
    rows = [
        "| where | bad input | raises | message names | and says | test |",
        "|---|---|---|---|---|---|",
    ]
    for case in CASES:
        says = " … ".join(_code(p) for p in case.parts)
        test = f"`test_bad_input[{case.id}]`"
        if case.pending:
            test += f" (xfail: {case.pending})"
        rows.append(
            "| "
            + " | ".join(
                _cell(c)
                for c in (
                    case.where,
                    case.what,
                    case.raises_text,
                    _code(case.argument),
                    says,
                    test,
                )
            )
            + " |"
        )
    return "\n".join(rows)


def loader_fault_table() -> str:
    from test_loader_faults import FAULTS

    rows = [
        "| fault in a class folder | reason in `skipped` (stable part) | test |",
        "|---|---|---|",
    ]
    rows += [
        f"| {_cell(f.what)} | {_code(f.reason)} | "
        f"`test_each_fault_is_skipped_and_reported[{f.id}]` |"
        for f in FAULTS
    ]
    return "\n".join(rows)


TABLES = {
    "test_bad_inputs.py": bad_input_table,
    "test_loader_faults.py": loader_fault_table,
}


def _render(text: str) -> str:
    """``text`` with each generated block replaced by the table built now."""
    for source, table in TABLES.items():
        begin = BEGIN.format(source)
        pattern = re.compile(re.escape(begin) + r"\n(?:.*?\n)??" + re.escape(END), re.S)
        if not pattern.search(text):
            raise ValueError(f"{DOC} lacks the block that starts with {begin!r}.")
        text = pattern.sub(lambda m, b=begin, t=table: f"{b}\n{t()}\n{END}", text)
    return text


def test_the_docs_table_is_generated_from_the_cases():
    text = DOC.read_text(encoding="utf-8")
    assert _render(text) == text, (
        f"{DOC} is out of date with the cases; run `python tests/test_bad_inputs.py`."
    )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    DOC.write_text(_render(DOC.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote {DOC}")

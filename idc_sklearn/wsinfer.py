"""A fitted CNN of the library as a WSInfer model directory, for WSInfer and QuPath.

WSInfer (``pip install wsinfer``) runs patch classifiers over whole slides from the
command line, and QuPath's WSInfer extension runs the same models inside QuPath.
Both load a folder holding a TorchScript module, ``torchscript_model.pt``, and a
``config.json`` that follows wsinfer-zoo's model-config schema (spec version 1.0):
the patch size and resolution, the class names and the transforms that turn a patch
into the module's input. :func:`export_wsinfer` writes that folder
(:doc:`/wsinfer` shows how to use it).

The transforms are torchvision's ``Resize`` (to the patch size: a tile read at
that size is left as it is) and ``ToTensor`` (RGB, 0-1 floats, channels first);
everything the estimator does to its patches after that lives in the module:
back to the 0-255 scale and the estimator's own layout, its ``prepare_batch``
(normalisation, the Janowczyk network's centre crop), the network in evaluation
form with its BatchNorms folded, and test-time augmentation where the estimator
has it. The module returns logits: WSInfer and QuPath's extension both apply the
softmax to a model's output, which gives ``predict_proba``'s probabilities.
"""

from __future__ import annotations

import contextlib
import copy
import json
import warnings
from pathlib import Path

import torch
from torch import nn

from idc_sklearn._checks import check_output_path, final_step
from idc_sklearn._files import atomic_write
from idc_sklearn._forward import fold_batchnorm, mean_of_views
from idc_sklearn.wholeslide import ARCHIVE_MPP
from idc_sklearn.wholeslide._arguments import check_positive

__all__ = [
    "CONFIG_FILE",
    "MODEL_FILE",
    "WSINFER_SPEC_VERSION",
    "export_wsinfer",
    "torchscript",
    "wsinfer_config",
    "wsinfer_module",
]

MODEL_FILE = "torchscript_model.pt"
CONFIG_FILE = "config.json"
WSINFER_SPEC_VERSION = "1.0"
# The IDC archive's labels, and the names WSInfer's CSV and QuPath show for them.
_IDC_CLASS_NAMES = {0: "non-IDC", 1: "IDC"}


class _WSInferModule(nn.Module):
    """The estimator's forward pass on ``ToTensor``'s batches.

    ``forward`` takes ``(n, 3, height, width)`` RGB floats in [0, 1] and returns
    ``(n, n_classes)`` logits whose softmax is ``predict_proba`` (with ``tta``,
    the log of the mean of the views' probabilities, as
    :func:`~idc_sklearn._forward.forward_batch`). It is traced, never scripted: the
    estimator's ``prepare_batch`` (a Python method of the estimator, not of the
    module) is recorded as the tensor operations it runs in evaluation mode.
    """

    def __init__(self, network: nn.Module, prepare, tta: bool) -> None:
        super().__init__()
        self.network = network
        self._prepare = prepare
        self._tta = tta

    def _logits(self, stored: torch.Tensor) -> torch.Tensor:
        return self.network(self._prepare(stored))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # ToTensor divided the patches' 0-255 values by 255; the estimator reads
        # channels-last patches on the 0-255 scale (prepare_batch divides again
        # where normalize="scale").
        stored = x.permute(0, 2, 3, 1) * 255.0
        if self._tta:
            return mean_of_views(self._logits, stored)
        return self._logits(stored)


def _check_estimator(estimator):
    """The fitted PatchNetClassifier that ``estimator`` is or ends in."""
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    from idc_sklearn.classifier import PatchNetClassifier
    from idc_sklearn.prior_shift import PatientPriorClassifier

    final = final_step(estimator)
    if not isinstance(final, PatchNetClassifier):
        held = (
            f"a {type(estimator).__name__} ending in {type(final).__name__}"
            if final is not estimator
            else f"a {type(estimator).__name__}"
        )
        threshold = hasattr(final, "estimator") and (
            hasattr(final, "threshold") or hasattr(final, "best_threshold_")
        )
        reason = (
            "a decision threshold is not part of a WSInfer model (WSInfer writes "
            "each class's probability; apply the threshold to them): export the "
            "estimator inside it"
            if threshold
            else "a handcrafted baseline or any other model without a torch "
            "network has no TorchScript form"
        )
        if isinstance(final, PatientPriorClassifier):
            reason = (
                "WSInfer scores each tile alone, so the adaptation to each "
                "patient's IDC share and the mixing with each tile's neighbours "
                "are not part of a WSInfer model: export the network inside it, or "
                "the pretrained network mlbn-small"
            )
        raise TypeError(
            "estimator must be a fitted CNN of idc_sklearn (MLBNInceptionClassifier, "
            "JanowczykCNNClassifier, CruzRoaCNNClassifier, a loaded or pretrained "
            f"model) or a Pipeline ending in one; got {held}: {reason}."
        )
    try:
        check_is_fitted(final, "module_")
    except NotFittedError as exc:
        raise NotFittedError(
            f"estimator: this {type(final).__name__} is not fitted yet; fit it, or "
            "load a saved or pretrained model (load_model, load_pretrained), before "
            "export_wsinfer."
        ) from exc
    for name, step in getattr(estimator, "steps", [])[:-1]:
        # Samplers act in fit only; a transformer changes the patches before the
        # network, outside anything TorchScript could hold.
        if step not in (None, "passthrough") and hasattr(step, "transform"):
            raise ValueError(
                f"estimator: its pipeline step {name!r} "
                f"({type(step).__name__}) transforms the patches before the "
                "network, and WSInfer runs the network alone; export a pipeline "
                "whose steps before the network are samplers or 'passthrough', or "
                "the network by itself."
            )
    height, width, channels = (int(side) for side in final.patch_shape)
    if height != width or channels != 3:
        raise ValueError(
            f"estimator takes patches of shape {(height, width, channels)}; WSInfer "
            "reads square RGB patches (height == width, 3 channels)."
        )
    return final


def _class_names(classes, class_names) -> list[str]:
    """``class_names`` checked against ``classes``; by default from the labels."""
    labels = list(classes)
    if class_names is None:
        if sorted(labels) == sorted(_IDC_CLASS_NAMES):
            return [_IDC_CLASS_NAMES[int(label)] for label in labels]
        class_names = [str(label) for label in labels]
    if isinstance(class_names, str) or not all(
        isinstance(name, str) and name for name in class_names
    ):
        raise TypeError(
            "class_names must be None or a list of non-empty str, one per class; "
            f"got {class_names!r}."
        )
    names = list(class_names)
    if len(names) != len(labels) or len(set(names)) != len(names):
        raise ValueError(
            f"class_names must name each of the estimator's {len(labels)} classes "
            f"{labels} once, in that order; got {names!r}."
        )
    return names


def wsinfer_config(final, class_names: list[str], target_mpp: float) -> dict:
    """The ``config.json`` of ``final`` (a fitted PatchNetClassifier)."""
    side = int(final.patch_shape[0])
    return {
        "spec_version": WSINFER_SPEC_VERSION,
        "architecture": type(final.module_).__name__,
        "num_classes": len(class_names),
        "class_names": class_names,
        "patch_size_pixels": side,
        "spacing_um_px": target_mpp,
        "transform": [
            {"name": "Resize", "arguments": {"size": side}},
            {"name": "ToTensor"},
        ],
    }


@contextlib.contextmanager
def torchscript():
    """A block that uses ``torch.jit`` without its deprecation warnings.

    WSInfer and QuPath's WSInfer extension (through Deep Java Library) load
    TorchScript only; they cannot read ``torch.export``'s programs.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message=r"`torch\.jit\.\w+` is deprecated",
            category=DeprecationWarning,
        )
        yield


def wsinfer_module(final) -> torch.jit.ScriptModule:
    """``final``'s prediction as a traced TorchScript module, on the CPU."""
    side = int(final.patch_shape[0])
    # A copy: the estimator's network stays where and as it is.
    network = copy.deepcopy(fold_batchnorm(final.module_)).cpu().eval()
    network.requires_grad_(False)
    module = _WSInferModule(network, final.prepare_batch, bool(final.tta))
    # prepare_batch reads the estimator's module_.training (augmentation only in
    # training); predict_proba sets evaluation mode the same way.
    was_training = final.module_.training
    final.module_.train(False)
    example = torch.rand(2, 3, side, side, generator=torch.Generator().manual_seed(0))
    try:
        with torchscript(), torch.no_grad(), warnings.catch_warnings():
            # The module is traced for one patch side, the one config.json makes
            # WSInfer resize every patch to: values read from the shape (a square
            # patch has 8 dihedral views) are constants of it by design.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            traced = torch.jit.trace(module, example)
    finally:
        final.module_.train(was_training)
    return traced


def export_wsinfer(
    estimator, directory, *, class_names=None, target_mpp: float = ARCHIVE_MPP
) -> Path:
    """Write a fitted CNN as a model directory that WSInfer and QuPath load.

    The directory gets two files: ``torchscript_model.pt``, a TorchScript module
    that takes the RGB patches of torchvision's ``ToTensor`` (``(n, 3, side,
    side)`` floats in [0, 1]) and returns logits, whose softmax (which WSInfer
    and QuPath apply) is ``predict_proba`` on the same patches to float rounding
    (within 1e-5); and ``config.json``, following wsinfer-zoo's model-config schema
    (spec version 1.0): ``patch_size_pixels`` the estimator's patch side (50 for
    the archive's patches) at ``spacing_um_px`` ``target_mpp``, the class names,
    and the transforms ``Resize`` (to the patch side) and ``ToTensor``.

    The module holds everything the estimator does to a batch after that: the
    0-255 scale and channel order it reads, its normalisation and crop
    (``prepare_batch``), the network in evaluation form with each BatchNorm
    folded into the layer before it (its recalibrated statistics), and, where the
    estimator has ``tta=True``, the mean over the 8 dihedral views (8 times the
    cost: ``set_params(tta=False)`` before exporting for the plain network). It
    always runs in float32, whatever the estimator's ``precision``.

    Parameters
    ----------
    estimator : fitted PatchNetClassifier or Pipeline
        A fitted CNN of the library (``MLBNInceptionClassifier``, a CNN baseline,
        a loaded or pretrained model), or a Pipeline ending in one whose other
        steps act in ``fit`` only (samplers). A handcrafted baseline has no
        TorchScript form and is refused.
    directory : str or path-like
        The model directory; created where it does not exist (its parent must).
        The two files in it are replaced, each atomically.
    class_names : list of str, default=None
        One name per class, in ``classes_`` order: WSInfer's CSV columns are
        ``prob_<name>``, and QuPath shows the names. None: ``"non-IDC"`` and
        ``"IDC"`` for the archive's labels 0 and 1, else the labels as text.
    target_mpp : float, default=4.0
        The microns per pixel the model was trained at: ``spacing_um_px``
        (``ARCHIVE_MPP`` for the IDC archive).

    Returns
    -------
    pathlib.Path
        The directory.

    Raises
    ------
    TypeError
        If ``estimator`` is not a CNN of the library or a Pipeline ending in one
        (a handcrafted baseline), or ``class_names`` is not a list of str.
    ValueError
        If a step of the pipeline transforms the patches before the network, the
        patches are not square RGB, or ``class_names`` or ``target_mpp`` are
        invalid.
    sklearn.exceptions.NotFittedError
        If the estimator is not fitted.
    FileNotFoundError
        If ``directory``'s parent does not exist.

    See Also
    --------
    predict_slide : the library's own whole-slide inference.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from idc_sklearn import export_wsinfer, load_pretrained
    >>> folder = pathlib.Path(tempfile.mkdtemp()) / "mlbn-small"
    >>> export_wsinfer(load_pretrained("mlbn-small"), folder) == folder
    True
    >>> sorted(p.name for p in folder.iterdir())
    ['config.json', 'torchscript_model.pt']
    """
    final = _check_estimator(estimator)
    names = _class_names(final.classes_, class_names)
    target_mpp = check_positive(target_mpp, "target_mpp")
    directory = check_output_path(
        directory,
        "directory",
        no_folder="{name}={path!r}: its parent folder {folder!r} does not exist.",
    )
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"directory={str(directory)!r} is a file; expected a folder.")
    config = wsinfer_config(final, names, target_mpp)
    traced = wsinfer_module(final)
    directory.mkdir(exist_ok=True)
    with atomic_write(directory / MODEL_FILE) as file, torchscript():
        torch.jit.save(traced, file)
    with atomic_write(directory / CONFIG_FILE, "w") as file:
        json.dump(config, file, indent=2)
        file.write("\n")
    return directory

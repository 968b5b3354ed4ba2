"""Fitted models saved to one safetensors file and loaded back without pickle.

:func:`save_model` writes a fitted CNN estimator of the library, or a pipeline
ending in one whose other steps are the library's own, to one file: the weights,
the optimizer state and every array-valued fitted attribute as tensors, and the
rest - the class, the parameters, ``classes_``, the training history, the versions
- as a JSON document in the file's header (:func:`idc_sklearn._files.save_tensors`).

:func:`load_model` rebuilds the estimator from that document. Classes are looked up
by name in an allowlist (``MODEL_CLASSES``: the library's estimators, networks and
steps; the pipelines of scikit-learn and imbalanced-learn; torch's optimizers and
losses); nothing in the file is unpickled or imported, so a file from elsewhere
cannot run code. The encoding itself, shared with training checkpoints, is
:mod:`idc_sklearn._serialization`'s; a network estimator
(:class:`~idc_sklearn.PatchNetClassifier` and its subclasses) also keeps its
module's, criterion's and optimizer's ``state_dict`` and ``history_``, and skorch's
other fitted attributes are rebuilt by ``initialize()``.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from idc_sklearn._files import FileFormatError, check_path, load_tensors, save_tensors
from idc_sklearn._serialization import (
    Allowlist,
    Corrupt,
    Decoder,
    Encoder,
    Refused,
    network_components,
)

__all__ = ["FileFormatError", "load_model", "save_model"]

MODEL_FORMAT = "idc_sklearn.model"
MODEL_FORMAT_VERSION = 1

# The library's classes a model file may name, each with the module defining it: the
# estimators, the networks and the objects their parameters hold, and the steps a
# pipeline of them may have. Imported only when a file names one.
MODEL_CLASSES = {
    "PatchNetClassifier": "idc_sklearn.classifier",
    "MLBNInceptionClassifier": "idc_sklearn.classifier",
    "AcceleratedMLBNInceptionClassifier": "idc_sklearn.accelerated",
    "JanowczykCNNClassifier": "idc_sklearn.cnn_baselines",
    "CruzRoaCNNClassifier": "idc_sklearn.cnn_baselines",
    "MLBNInception": "idc_sklearn.network",
    "MLBNBlock": "idc_sklearn.network",
    "JanowczykCNN": "idc_sklearn.cnn_baselines",
    "CruzRoaCNN": "idc_sklearn.cnn_baselines",
    "PatientValidSplit": "idc_sklearn.split",
    "PatchDataLoader": "idc_sklearn.batching",
    "PatchDataset": "idc_sklearn.batching",
    "PatchResampler": "idc_sklearn.resampling",
    "EpochResampler": "idc_sklearn.resampling",
    "ReinhardNormalizer": "idc_sklearn.stain",
    "MacenkoNormalizer": "idc_sklearn.stain",
    "ColorHistogram": "idc_sklearn.handcrafted",
    "ColorMoments": "idc_sklearn.handcrafted",
    "LBPFeatures": "idc_sklearn.handcrafted",
    "GLCMFeatures": "idc_sklearn.handcrafted",
    "HOGFeatures": "idc_sklearn.handcrafted",
}


def _foreign_classes() -> dict[str, type]:
    """The classes from other packages a model file may name, by full name."""
    from imblearn.pipeline import Pipeline as ImbPipeline
    from sklearn.pipeline import Pipeline

    classes: dict[str, type] = {
        "sklearn.pipeline.Pipeline": Pipeline,
        "imblearn.pipeline.Pipeline": ImbPipeline,
    }
    for prefix, namespace, base in (
        ("torch.optim", torch.optim, torch.optim.Optimizer),
        ("torch.nn", torch.nn, torch.nn.modules.loss._Loss),
    ):
        for name in dir(namespace):
            obj = getattr(namespace, name)
            if isinstance(obj, type) and issubclass(obj, base) and obj is not base:
                classes[f"{prefix}.{name}"] = obj
    return classes


MODEL_ALLOWLIST = Allowlist(
    MODEL_CLASSES,
    _foreign_classes,
    refusal=(
        "idc_sklearn's own estimators, networks and steps, the scikit-learn and "
        "imbalanced-learn pipelines, torch's optimizers and losses"
    ),
    file_kind="model file",
)

# skorch's fitted attributes that ``initialize()`` rebuilds or that are saved
# apart (module, criterion and optimizer state, history).
_NET_REBUILT = frozenset(
    {
        "initialized_",
        "virtual_params_",
        "device_",
        "init_context_",
        "callbacks_",
        "cuda_dependent_attributes_",
        "prefixes_",
        "module_",
        "criterion_",
        "optimizer_",
        "grad_scaler_",
        "history_",
    }
)


def _net_state(net) -> list[str]:
    """The components whose state a model file keeps (a checkpoint keeps more)."""
    parts = network_components(net)
    return [*parts["modules"], *parts["optimizers"]]


def _is_net(obj) -> bool:
    from idc_sklearn.classifier import PatchNetClassifier

    return isinstance(obj, PatchNetClassifier)


class _ModelEncoder(Encoder):
    """A model's document: a network's weights and history beside its parameters."""

    def __init__(self) -> None:
        super().__init__(MODEL_ALLOWLIST)

    def extra_state(self, obj, node: str):
        if not (_is_net(obj) and getattr(obj, "initialized_", False)):
            return None
        state = {
            attr: self.value(
                getattr(obj, attr).state_dict(),
                f"{attr}.state_dict()",
                f"{node}.{attr}",
            )
            for attr in _net_state(obj)
        }
        state["history_"] = self.value(
            obj.history_.to_list(), "history_", f"{node}.history_"
        )
        state["device_"] = str(obj.device_)
        return state, _NET_REBUILT


class _ModelDecoder(Decoder):
    """Rebuilds a model; a network is initialised and its weights loaded."""

    def __init__(self, tensors: dict, device, path: str) -> None:
        super().__init__(tensors, path, MODEL_ALLOWLIST)
        self.device = device
        self.warnings: list[str] = []

    def restore_extra(self, net, data: dict, label: str) -> None:
        from skorch.history import History

        if not _is_net(net):
            raise Corrupt(f"has network state for {label}, which is not a network")
        net.set_params(device=self._device(net, label))
        # The weights are overwritten below: initialising them must not draw from
        # the caller's global random state.
        with torch.random.fork_rng(devices=[]):
            net.initialize()
        # The components are known once the net is initialised (skorch registers
        # them there).
        for attr in _net_state(net):
            try:
                state = self.value(data[attr], f"{attr} of {label}")
                getattr(net, attr).load_state_dict(state)
            except (KeyError, RuntimeError, ValueError) as exc:
                if isinstance(exc, Corrupt):
                    raise
                raise Corrupt(
                    f"holds a {attr} state that does not fit {label}: {exc}"
                ) from None
        net.history_ = History(self.value(data["history_"], f"history_ of {label}"))

    def _device(self, net, label: str):
        if self.device is not None:
            return self.device
        saved = net.get_params(deep=False)["device"]
        if saved != "auto" and torch.device(saved).type == "cuda":
            if not torch.cuda.is_available():
                self.warnings.append(
                    f"{self.path} holds {label} with device={saved!r}, and no CUDA "
                    "device is present here; it is loaded on the CPU "
                    '(device="cpu"). Pass load_model(..., device=...) to choose.'
                )
                return "cpu"
        return saved


def _versions() -> dict[str, str]:
    import safetensors
    import sklearn
    import skorch

    import idc_sklearn

    return {
        "idc_sklearn": idc_sklearn.__version__,
        "torch": torch.__version__,
        "skorch": skorch.__version__,
        "sklearn": sklearn.__version__,
        "numpy": np.__version__,
        "safetensors": safetensors.__version__,
    }


def save_model(estimator, path: str | os.PathLike) -> None:
    """Save a fitted estimator to one safetensors file, loadable without pickle.

    Parameters
    ----------
    estimator : estimator
        A fitted CNN estimator of the library (:class:`~idc_sklearn.PatchNetClassifier`
        and its subclasses, with a library module class), or a scikit-learn or
        imbalanced-learn ``Pipeline`` ending in one whose other steps are the
        library's own classes (samplers, stain normalisers, transformers).
    path : str or path-like
        The file to write, conventionally ``*.safetensors``. Written atomically: a
        crash leaves the old file or the new one, and nothing else is touched.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If ``estimator`` is not fitted.
    TypeError
        If something in it cannot be stored without pickle: a class or object
        from outside the library (a custom ``module`` or ``criterion``, a
        callback instance, a scikit-learn step), a parameter or fitted attribute
        that is not JSON-able or an array. The message names the step and the
        parameter or attribute.

    See Also
    --------
    load_model : Load the file back.

    Notes
    -----
    The file holds the module's, criterion's and optimizer's ``state_dict`` and
    every numeric array among the fitted attributes as tensors, and, as JSON in
    the header, the classes by name, ``get_params(deep=False)``, the other fitted
    attributes (``classes_`` with its dtype, ``n_features_in_``), the training
    history, the device the model was trained on and the versions of
    idc_sklearn, torch, skorch, scikit-learn, NumPy and safetensors. Not saved:
    the callbacks' internal state (the learning-rate plateau's counters, early
    stopping's best weights), and the random state.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> from idc_sklearn import MLBNInceptionClassifier, load_model, save_model
    >>> X = np.random.default_rng(0).integers(0, 256, (20, 16, 16, 3), np.uint8)
    >>> y = np.tile(["IDC", "non-IDC"], 10)
    >>> clf = MLBNInceptionClassifier(
    ...     filters=(3, 3), head_units=(4,), patch_shape=(16, 16, 3),
    ...     max_epochs=1, train_split=None, verbose=0, random_state=0,
    ... ).fit(X, y)
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "mlbn.safetensors"
    >>> save_model(clf, path)
    >>> loaded = load_model(path)
    >>> bool((loaded.predict_proba(X) == clf.predict_proba(X)).all())
    True
    >>> loaded.classes_.tolist()
    ['IDC', 'non-IDC']
    """
    path = check_path(path)
    if isinstance(estimator, type) or not hasattr(estimator, "get_params"):
        raise TypeError(
            "estimator must be a fitted estimator instance; got "
            f"{estimator!r} of type {type(estimator).__name__}."
        )
    check_is_fitted(estimator)
    encoder = _ModelEncoder()
    try:
        document = encoder.value(estimator, "the estimator", "model")
    except Refused as exc:
        raise TypeError(
            f"save_model cannot store this {type(estimator).__name__}: {exc}"
        ) from None
    metadata = {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "versions": _versions(),
        "estimator": document,
    }
    save_tensors(path, encoder.tensors, metadata)


def load_model(path: str | os.PathLike, *, device: str | None = None):
    """Load an estimator saved by :func:`save_model`; never runs code from the file.

    Parameters
    ----------
    path : str or path-like
    device : str or torch.device, default=None
        Where the networks are put. None keeps each network's saved ``device``
        parameter (``"auto"`` picks CUDA where present), except that a model
        saved with ``device="cuda"`` loads on the CPU, with a warning, where no
        GPU is present. Any other value replaces the ``device`` parameter.

    Returns
    -------
    estimator
        Fitted, equal to the saved one: the same ``predict_proba`` on the same
        device, ``classes_`` of the same dtype. ``clone``, ``set_params`` and
        ``partial_fit`` (which goes on from the saved optimizer state) work on it.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    FileFormatError
        A :class:`ValueError`: the file is not an idc_sklearn model file (a
        pickle, a ``torch.save`` archive, another safetensors file), it is
        truncated, its header lies about sizes or offsets, its checksum does not
        match (corrupted or modified), or it names a class outside the
        allowlist. The message names the file and the fault.

    See Also
    --------
    save_model : Write the file.
    """
    path = check_path(path)
    tensors, metadata = load_tensors(path)
    where = str(path)
    if not isinstance(metadata, dict) or metadata.get("format") != MODEL_FORMAT:
        found = metadata.get("format") if isinstance(metadata, dict) else None
        raise FileFormatError(
            f"{where!r} is an idc_sklearn tensor file but not a model file: its "
            f"format is {found!r}, expected {MODEL_FORMAT!r}."
        )
    version = metadata.get("format_version")
    if version != MODEL_FORMAT_VERSION:
        raise FileFormatError(
            f"{where!r} is a model file of format version {version!r}; this "
            f"idc_sklearn ({_versions()['idc_sklearn']}) reads version "
            f"{MODEL_FORMAT_VERSION}."
        )
    if device is not None:
        from idc_sklearn._device import check_device

        check_device(device)
    decoder = _ModelDecoder(tensors, device, where)
    try:
        estimator = decoder.value(metadata.get("estimator"), "the estimator")
    except Corrupt as exc:
        raise FileFormatError(
            f"{where!r} is not a valid model file: it {exc}."
        ) from None
    if not hasattr(estimator, "get_params"):
        raise FileFormatError(f"{where!r} holds no estimator.")
    for message in decoder.warnings:
        warnings.warn(message, UserWarning, stacklevel=2)
    return estimator

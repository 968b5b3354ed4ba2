"""Fitted models saved to one safetensors file and loaded back without pickle.

:func:`save_model` writes a fitted CNN estimator of the library, or a pipeline
ending in one whose other steps are the library's own, to one file: the weights,
the optimizer state and every array-valued fitted attribute as tensors, and the
rest - the class, the parameters, ``classes_``, the training history, the versions
- as a JSON document in the file's header (:func:`idc_sklearn._files.save_tensors`).

:func:`load_model` rebuilds the estimator from that document. Classes are looked up
by name in an allowlist (the library's public classes, the pipelines of
scikit-learn and imbalanced-learn, torch's optimizers and losses); nothing in the
file is unpickled or imported, so a file from elsewhere cannot run code.

How an object is stored, by kind:

- JSON scalars, lists and dicts with string keys as themselves; tuples, dicts
  with other keys, classes, library objects, tensors and non-finite floats as
  objects tagged ``{"__kind__": ...}``.
- A library object (estimator, splitter, step) as its class name, the values of
  ``get_params(deep=False)`` (or of its ``__init__`` arguments), and its fitted
  attributes (public names ending in ``_``).
- A network estimator (:class:`~idc_sklearn.PatchNetClassifier` and its
  subclasses) also keeps its module's, criterion's and optimizer's
  ``state_dict`` and ``history_``; skorch's other fitted attributes are rebuilt
  by ``initialize()``.
"""

from __future__ import annotations

import importlib
import inspect
import math
import numbers
import os
import warnings
from functools import cache
from typing import Any

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from idc_sklearn._files import FileFormatError, _check_path, load_tensors, save_tensors

__all__ = ["FileFormatError", "load_model", "save_model"]

MODEL_FORMAT = "idc_sklearn.model"
MODEL_FORMAT_VERSION = 1
KIND = "__kind__"
# Library classes that are not public but are the default value of a parameter.
_LIBRARY_INTERNAL = {
    "PatchDataLoader": "idc_sklearn.batching",
    "PatchDataset": "idc_sklearn.batching",
}
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
_NET_STATE = ("module_", "criterion_", "optimizer_")
_ARRAY_KINDS = "biufUO"


class _Refused(TypeError):
    """An object save_model does not store (a TypeError naming where it is)."""


def _library_class(name: str) -> type | None:
    """The library's class called ``name``, looked up in its own lists only."""
    import idc_sklearn

    if name in idc_sklearn._PUBLIC:
        found = getattr(idc_sklearn, name)
    elif name in _LIBRARY_INTERNAL:
        found = getattr(importlib.import_module(_LIBRARY_INTERNAL[name]), name)
    else:
        return None
    return found if isinstance(found, type) else None


@cache
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


def _class_name(cls: type) -> str | None:
    """The name a model file gives ``cls``, or None if the file may not name it."""
    if _library_class(cls.__name__) is cls:
        return f"idc_sklearn.{cls.__name__}"
    for name, allowed in _foreign_classes().items():
        if allowed is cls:
            return name
    return None


def _named_class(name, where: str) -> type:
    """The class a model file names; never imported from the name itself."""
    found = None
    if isinstance(name, str):
        if name.startswith("idc_sklearn."):
            found = _library_class(name.removeprefix("idc_sklearn."))
        else:
            found = _foreign_classes().get(name)
    if found is None:
        raise _Corrupt(
            f"names class {name!r} at {where}, which is not one a model file may "
            "name (idc_sklearn's own classes, the scikit-learn and imbalanced-learn "
            "pipelines, torch's optimizers and losses)"
        )
    return found


def _is_net(obj) -> bool:
    from idc_sklearn.classifier import PatchNetClassifier

    return isinstance(obj, PatchNetClassifier)


def _is_pipeline(cls: type) -> bool:
    return cls in (
        _foreign_classes()["sklearn.pipeline.Pipeline"],
        _foreign_classes()["imblearn.pipeline.Pipeline"],
    )


def _init_params(obj, where: str) -> dict:
    """``get_params(deep=False)``, or the attributes named like ``__init__``'s."""
    if hasattr(obj, "get_params"):
        return obj.get_params(deep=False)
    names = [
        p.name
        for p in inspect.signature(type(obj).__init__).parameters.values()
        if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    missing = [name for name in names if not hasattr(obj, name)]
    if missing:
        raise _Refused(
            f"{where} does not keep its __init__ argument {missing[0]!r} as an "
            "attribute, so it cannot be rebuilt from its parameters."
        )
    return {name: getattr(obj, name) for name in names}


def _fitted_attributes(obj) -> dict:
    return {
        k: v for k, v in vars(obj).items() if k.endswith("_") and not k.startswith("_")
    }


def _describe(obj) -> str:
    return type(obj).__name__


class _Encoder:
    """Turns an estimator into a JSON document and the tensors it refers to."""

    def __init__(self) -> None:
        self.tensors: dict[str, Any] = {}
        self._objects = 0

    def tensor(self, value, key: str) -> dict:
        if key in self.tensors:  # dotted names of nested dicts can collide
            key = f"{key}#{len(self.tensors)}"
        self.tensors[key] = value
        return {KIND: "tensor", "key": key, "numpy": isinstance(value, np.ndarray)}

    def value(self, value, where: str, key: str, *, fitted: bool = False):
        """Encode ``value``; ``fitted`` stores numeric arrays as tensors."""
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        if isinstance(value, numbers.Integral):
            return int(value)
        if isinstance(value, numbers.Real):
            value = float(value)
            # JSON has no infinity or NaN: they are kept as "inf", "-inf", "nan".
            return (
                value if math.isfinite(value) else {KIND: "float", "value": repr(value)}
            )
        if isinstance(value, torch.Tensor):
            return self.tensor(value, key)
        if isinstance(value, np.ndarray):
            return self.array(value, where, key, fitted=fitted)
        if isinstance(value, (list, tuple)):
            items = [
                self.value(v, f"{where}[{i}]", f"{key}.{i}", fitted=fitted)
                for i, v in enumerate(value)
            ]
            return items if isinstance(value, list) else {KIND: "tuple", "items": items}
        if isinstance(value, dict):
            return self.mapping(value, where, key, fitted=fitted)
        if isinstance(value, type):
            name = _class_name(value)
            if name is None:
                raise _Refused(
                    f"{where} is the class {value.__module__}.{value.__qualname__}, "
                    "which a model file may not name; save_model stores "
                    "idc_sklearn's own classes, the scikit-learn and "
                    "imbalanced-learn pipelines, and torch's optimizers and losses."
                )
            return {KIND: "class", "name": name}
        if isinstance(value, np.generic):
            raise _Refused(f"{where} is a {value.dtype} scalar, which is not stored.")
        return self.object(value, where, key)

    def mapping(self, value: dict, where: str, key: str, *, fitted: bool):
        plain = all(isinstance(k, str) for k in value) and KIND not in value
        encoded = [
            (
                k if plain else self.value(k, f"{where} key {k!r}", f"{key}.k{i}"),
                self.value(
                    v, f"{where}[{k!r}]", f"{key}.{k if plain else i}", fitted=fitted
                ),
            )
            for i, (k, v) in enumerate(value.items())
        ]
        if plain:
            return dict(encoded)
        return {KIND: "dict", "items": [list(item) for item in encoded]}

    def array(self, value: np.ndarray, where: str, key: str, *, fitted: bool):
        if value.dtype.kind not in _ARRAY_KINDS:
            raise _Refused(
                f"{where} is an array of dtype {value.dtype}; save_model stores "
                "arrays of booleans, numbers, strings and Python objects that are "
                "numbers or strings."
            )
        if value.dtype.kind in "biuf" and fitted:
            return self.tensor(value, key)
        items = value.tolist()
        if value.dtype.kind == "O":
            for item in value.ravel():
                if not isinstance(item, (str, bool, int, float)):
                    raise _Refused(
                        f"{where} is an object array holding "
                        f"{type(item).__name__} {item!r}; save_model stores object "
                        "arrays of strings and numbers only."
                    )
        return {
            KIND: "ndarray",
            "dtype": value.dtype.str,
            "shape": list(value.shape),
            "items": items,
        }

    def object(self, obj, where: str, key: str) -> dict:
        if isinstance(obj, torch.nn.Module):
            raise _Refused(
                f"{where} is a {type(obj).__name__} module instance; save_model "
                "stores a network given as its class (module=MLBNInception) with "
                "module__* parameters, whose weights it saves."
            )
        name = _class_name(type(obj))
        if name is None or name.startswith("torch."):
            raise _Refused(
                f"{where} is a {type(obj).__module__}.{type(obj).__qualname__} "
                "object; save_model stores idc_sklearn's own estimators and "
                "objects (and pipelines of them) with JSON-able parameters, torch "
                "classes by name, and no other objects."
            )
        node = f"o{self._objects}"
        self._objects += 1
        label = f"{where} ({_describe(obj)})"
        params = _init_params(obj, label)
        if _is_pipeline(type(obj)):
            params = self.pipeline_params(obj, params, label, node)
        else:
            params = {
                k: self.value(v, f"parameter {k!r} of {label}", f"{node}.params.{k}")
                for k, v in params.items()
            }
        fitted = _fitted_attributes(obj)
        result = {KIND: "object", "class": name, "params": params}
        if _is_net(obj) and getattr(obj, "initialized_", False):
            result["net"] = self.net_state(obj, node)
            fitted = {k: v for k, v in fitted.items() if k not in _NET_REBUILT}
        result["fitted"] = {
            k: self.value(
                v, f"fitted attribute {k!r} of {label}", f"{node}.{k}", fitted=True
            )
            for k, v in fitted.items()
        }
        return result

    def pipeline_params(self, pipeline, params: dict, label: str, node: str):
        if params.get("memory") is not None:
            raise _Refused(
                f"{label} has memory={params['memory']!r}; save_model stores "
                "pipelines without a cache (memory=None)."
            )
        steps = []
        for i, (name, step) in enumerate(params["steps"]):
            where = f"step {name!r} of {label}"
            steps.append(
                {
                    KIND: "tuple",
                    "items": [name, self.value(step, where, f"{node}.steps.{i}")],
                }
            )
        rest = {
            k: self.value(v, f"parameter {k!r} of {label}", f"{node}.params.{k}")
            for k, v in params.items()
            if k != "steps"
        }
        return {"steps": steps, **rest}

    def net_state(self, net, node: str) -> dict:
        state = {}
        for attr in _NET_STATE:
            state_dict = getattr(net, attr).state_dict()
            state[attr] = self.value(
                state_dict, f"{attr}.state_dict()", f"{node}.{attr}"
            )
        state["history_"] = self.value(
            net.history_.to_list(), "history_", f"{node}.history_"
        )
        state["device_"] = str(net.device_)
        return state


class _Corrupt(ValueError):
    """A fault in a model file's document, turned into FileFormatError by load."""


class _Decoder:
    """Rebuilds an estimator from a model file's document and tensors."""

    def __init__(self, tensors: dict, device, path: str) -> None:
        self.tensors = tensors
        self.device = device
        self.path = path
        self.warnings: list[str] = []

    def value(self, data, where: str):
        if data is None or isinstance(data, (bool, int, float, str)):
            return data
        if isinstance(data, list):
            return [self.value(v, f"{where}[{i}]") for i, v in enumerate(data)]
        if not isinstance(data, dict):
            raise _Corrupt(f"holds {data!r} at {where}")
        kind = data.get(KIND)
        if kind is None:
            return {k: self.value(v, f"{where}[{k!r}]") for k, v in data.items()}
        try:
            if kind == "tuple":
                return tuple(self.value(data["items"], where))
            if kind == "dict":
                return {
                    self.value(k, where): self.value(v, f"{where}[{k!r}]")
                    for k, v in data["items"]
                }
            if kind == "float":
                return float(data["value"])
            if kind == "class":
                return _named_class(data["name"], where)
            if kind == "tensor":
                tensor = self.tensors[data["key"]]
                return tensor.numpy() if data["numpy"] else tensor
            if kind == "ndarray":
                return self.array(data, where)
            if kind == "object":
                return self.object(data, where)
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, _Corrupt):
                raise
            raise _Corrupt(
                f"has a malformed {kind!r} entry at {where} "
                f"({type(exc).__name__}: {exc})"
            ) from None
        raise _Corrupt(f"has an entry of unknown kind {kind!r} at {where}")

    def array(self, data: dict, where: str) -> np.ndarray:
        dtype = np.dtype(data["dtype"])
        if dtype.kind not in _ARRAY_KINDS:
            raise _Corrupt(f"has an array of dtype {dtype} at {where}")
        array = np.array(data["items"], dtype=dtype)
        if dtype.kind == "O" and not all(
            isinstance(item, (str, bool, int, float)) for item in array.ravel()
        ):
            raise _Corrupt(f"has an object array holding more than scalars at {where}")
        return array.reshape(data["shape"])

    def object(self, data: dict, where: str):
        cls = _named_class(data["class"], where)
        label = f"{where} ({cls.__name__})"
        params = self.value(data["params"], f"the parameters of {label}")
        if not isinstance(params, dict):
            raise _Corrupt(f"has parameters that are not a mapping at {label}")
        if _is_pipeline(cls) and params.get("memory") is not None:
            raise _Corrupt(f"gives {label} a cache folder (memory), never loaded")
        obj = cls(**params)
        fitted = self.value(data.get("fitted", {}), f"the fitted state of {label}")
        for name, value in fitted.items():
            if not (isinstance(name, str) and name.endswith("_")):
                raise _Corrupt(f"has a fitted attribute named {name!r} at {label}")
            setattr(obj, name, value)
        if "net" in data:
            self.net(obj, data["net"], label)
        return obj

    def net(self, net, data: dict, label: str) -> None:
        from skorch.history import History

        if not _is_net(net):
            raise _Corrupt(f"has network state for {label}, which is not a network")
        state = {
            attr: self.value(data[attr], f"{attr} of {label}") for attr in _NET_STATE
        }
        net.set_params(device=self._device(net, label))
        # The weights are overwritten below: initialising them must not draw from
        # the caller's global random state.
        with torch.random.fork_rng(devices=[]):
            net.initialize()
        for attr in _NET_STATE:
            try:
                getattr(net, attr).load_state_dict(state[attr])
            except (KeyError, RuntimeError, ValueError) as exc:
                raise _Corrupt(
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
    path = _check_path(path)
    if isinstance(estimator, type) or not hasattr(estimator, "get_params"):
        raise TypeError(
            "estimator must be a fitted estimator instance; got "
            f"{estimator!r} of type {type(estimator).__name__}."
        )
    check_is_fitted(estimator)
    encoder = _Encoder()
    try:
        document = encoder.value(estimator, "the estimator", "model")
    except _Refused as exc:
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
    path = _check_path(path)
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
    decoder = _Decoder(tensors, device, where)
    try:
        estimator = decoder.value(metadata.get("estimator"), "the estimator")
    except _Corrupt as exc:
        raise FileFormatError(
            f"{where!r} is not a valid model file: it {exc}."
        ) from None
    if not hasattr(estimator, "get_params"):
        raise FileFormatError(f"{where!r} holds no estimator.")
    for message in decoder.warnings:
        warnings.warn(message, UserWarning, stacklevel=2)
    return estimator

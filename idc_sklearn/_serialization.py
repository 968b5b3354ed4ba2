"""Objects as a JSON document plus tensors, and back, without pickle.

The one encoding shared by saved models (:mod:`idc_sklearn.persistence`) and training
checkpoints (:mod:`idc_sklearn.checkpoint`). It imports no estimator: which classes a
file may name is an :class:`Allowlist` the caller passes in, and what is special about
networks (their weights) lives in the caller's subclass of :class:`Encoder` and
:class:`Decoder` (the ``extra_state`` and ``restore_extra`` hooks).

How an object is stored, by kind:

- JSON scalars, lists and dicts with string keys as themselves; tuples, dicts with
  other keys, classes, objects, tensors and non-finite floats as objects tagged
  ``{"__kind__": ...}``.
- An object (estimator, splitter, step) as its class's allowed name, the values of
  ``get_params(deep=False)`` (or of its ``__init__`` arguments), and its fitted
  attributes (public names ending in ``_``).
"""

from __future__ import annotations

import importlib
import inspect
import math
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

__all__ = [
    "KIND",
    "Allowlist",
    "Corrupt",
    "Decoder",
    "Encoder",
    "Refused",
    "network_components",
]

KIND = "__kind__"
ARRAY_KINDS = "biufUO"


class Refused(TypeError):
    """An object that is not stored (a TypeError naming where it is)."""


class Corrupt(ValueError):
    """A fault in a file's document; the reader turns it into FileFormatError."""


class Allowlist:
    """The classes a file may name, both ways: class to name, name to class.

    Parameters
    ----------
    modules : dict of str to str, default={}
        The library's classes a file may name, by class name, each with the module
        that defines it, imported only when a file names that class (so an
        optional dependency is needed only by the files that use it). A file
        names them ``"idc_sklearn.<name>"``.
    foreign : callable returning dict of str to type, default=dict
        Other packages' classes a file may name, by the full name the file gives
        them; called once, on first use.
    refusal : str, default="none"
        What the allowed classes are, in words, for error messages.
    file_kind : str, default="file"
        What the files are called in error messages ("model file").
    """

    PREFIX = "idc_sklearn."

    def __init__(
        self,
        modules: dict[str, str] | None = None,
        foreign: Callable[[], dict[str, type]] = dict,
        refusal: str = "none",
        file_kind: str = "file",
    ) -> None:
        self.modules = dict(modules or {})
        self._foreign = foreign
        self._foreign_classes: dict[str, type] | None = None
        self.refusal = refusal
        self.file_kind = file_kind

    def _library(self, name: str) -> type | None:
        if name not in self.modules:
            return None
        found = getattr(importlib.import_module(self.modules[name]), name, None)
        return found if isinstance(found, type) else None

    def foreign(self) -> dict[str, type]:
        if self._foreign_classes is None:
            self._foreign_classes = dict(self._foreign())
        return self._foreign_classes

    def name_of(self, cls: type) -> str | None:
        """The name a file gives ``cls``, or None if it may not name it."""
        if self._library(cls.__name__) is cls:
            return self.PREFIX + cls.__name__
        for name, allowed in self.foreign().items():
            if allowed is cls:
                return name
        return None

    def class_named(self, name, where: str) -> type:
        """The class a file names; never imported from the name itself."""
        found = None
        if isinstance(name, str):
            if name.startswith(self.PREFIX):
                found = self._library(name.removeprefix(self.PREFIX))
            else:
                found = self.foreign().get(name)
        if found is None:
            raise Corrupt(
                f"names class {name!r} at {where}, which is not one a "
                f"{self.file_kind} may name ({self.refusal})"
            )
        return found


#: No class at all: documents of plain values, arrays and tensors only.
NO_CLASSES = Allowlist(refusal="none: the file holds values and tensors only")


def network_components(net) -> dict[str, list[str]]:
    """A skorch net's components whose ``state_dict`` is its trained state.

    Read from skorch's own registries, so a net with extra modules, criteria or
    optimizers (``initialize_module`` registering more) is saved whole: the
    fitted attribute names (``module_``, ``criterion_``, ``optimizer_``, ...) of
    ``"modules"`` (modules and criteria) and ``"optimizers"``.
    """
    return {
        "modules": [f"{name}_" for name in [*net._modules, *net._criteria]],
        "optimizers": [f"{name}_" for name in net._optimizers],
    }


def init_params(obj, where: str) -> dict:
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
        raise Refused(
            f"{where} does not keep its __init__ argument {missing[0]!r} as an "
            "attribute, so it cannot be rebuilt from its parameters."
        )
    return {name: getattr(obj, name) for name in names}


def fitted_attributes(obj) -> dict:
    """The public attributes ending in ``_``."""
    return {
        k: v for k, v in vars(obj).items() if k.endswith("_") and not k.startswith("_")
    }


def is_pipeline(obj_or_cls) -> bool:
    """A scikit-learn or imbalanced-learn Pipeline (class or instance)."""
    from sklearn.pipeline import Pipeline

    cls = obj_or_cls if isinstance(obj_or_cls, type) else type(obj_or_cls)
    return issubclass(cls, Pipeline)


class Encoder:
    """Turns an object into a JSON document and the tensors it refers to.

    Subclasses add state to an object's entry with :meth:`extra_state`.
    """

    def __init__(self, allowlist: Allowlist = NO_CLASSES) -> None:
        self.allowlist = allowlist
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
            name = self.allowlist.name_of(value)
            if name is None:
                raise Refused(
                    f"{where} is the class {value.__module__}.{value.__qualname__}, "
                    f"which a {self.allowlist.file_kind} may not name; the classes "
                    f"it may name are {self.allowlist.refusal}."
                )
            return {KIND: "class", "name": name}
        if isinstance(value, np.generic):
            raise Refused(f"{where} is a {value.dtype} scalar, which is not stored.")
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
        if value.dtype.kind not in ARRAY_KINDS:
            raise Refused(
                f"{where} is an array of dtype {value.dtype}; arrays of booleans, "
                "numbers, strings and Python objects that are numbers or strings "
                "are stored."
            )
        if value.dtype.kind in "biuf" and fitted:
            return self.tensor(value, key)
        items = value.tolist()
        if value.dtype.kind == "O":
            for item in value.ravel():
                if not isinstance(item, (str, bool, int, float)):
                    raise Refused(
                        f"{where} is an object array holding "
                        f"{type(item).__name__} {item!r}; object arrays of strings "
                        "and numbers only are stored."
                    )
        return {
            KIND: "ndarray",
            "dtype": value.dtype.str,
            "shape": list(value.shape),
            "items": items,
        }

    def object(self, obj, where: str, key: str) -> dict:
        if isinstance(obj, torch.nn.Module):
            raise Refused(
                f"{where} is a {type(obj).__name__} module instance; a network is "
                "stored given as its class (module=MLBNInception) with module__* "
                "parameters, and its weights."
            )
        name = self.allowlist.name_of(type(obj))
        if name is None or name.startswith("torch."):
            raise Refused(
                f"{where} is a {type(obj).__module__}.{type(obj).__qualname__} "
                f"object; the objects stored are those of {self.allowlist.refusal}, "
                "with JSON-able parameters (torch classes by name only)."
            )
        node = f"o{self._objects}"
        self._objects += 1
        label = f"{where} ({type(obj).__name__})"
        params = init_params(obj, label)
        if is_pipeline(obj):
            params = self.pipeline_params(params, label, node)
        else:
            params = {
                k: self.value(v, f"parameter {k!r} of {label}", f"{node}.params.{k}")
                for k, v in params.items()
            }
        result = {KIND: "object", "class": name, "params": params}
        fitted = fitted_attributes(obj)
        extra = self.extra_state(obj, node)
        if extra is not None:
            state, kept_apart = extra
            result["net"] = state
            fitted = {k: v for k, v in fitted.items() if k not in kept_apart}
        result["fitted"] = {
            k: self.value(
                v, f"fitted attribute {k!r} of {label}", f"{node}.{k}", fitted=True
            )
            for k, v in fitted.items()
        }
        return result

    def extra_state(self, obj, node: str) -> tuple[dict, frozenset] | None:
        """State of ``obj`` stored beside its parameters and fitted attributes.

        Returns None, or the encoded state and the fitted attributes it replaces.
        """
        return None

    def pipeline_params(self, params: dict, label: str, node: str):
        if params.get("memory") is not None:
            raise Refused(
                f"{label} has memory={params['memory']!r}; a "
                f"{self.allowlist.file_kind} stores pipelines without a cache "
                "(memory=None)."
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


class Decoder:
    """Rebuilds objects from a document and its tensors.

    Subclasses restore what :meth:`Encoder.extra_state` stored with
    :meth:`restore_extra`.
    """

    def __init__(
        self, tensors: dict, path: str, allowlist: Allowlist = NO_CLASSES
    ) -> None:
        self.tensors = tensors
        self.path = path
        self.allowlist = allowlist

    def value(self, data, where: str):
        if data is None or isinstance(data, (bool, int, float, str)):
            return data
        if isinstance(data, list):
            return [self.value(v, f"{where}[{i}]") for i, v in enumerate(data)]
        if not isinstance(data, dict):
            raise Corrupt(f"holds {data!r} at {where}")
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
                return self.allowlist.class_named(data["name"], where)
            if kind == "tensor":
                tensor = self.tensors[data["key"]]
                return tensor.numpy() if data["numpy"] else tensor
            if kind == "ndarray":
                return self.array(data, where)
            if kind == "object":
                return self.object(data, where)
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, Corrupt):
                raise
            raise Corrupt(
                f"has a malformed {kind!r} entry at {where} "
                f"({type(exc).__name__}: {exc})"
            ) from None
        raise Corrupt(f"has an entry of unknown kind {kind!r} at {where}")

    def array(self, data: dict, where: str) -> np.ndarray:
        dtype = np.dtype(data["dtype"])
        if dtype.kind not in ARRAY_KINDS:
            raise Corrupt(f"has an array of dtype {dtype} at {where}")
        array = np.array(data["items"], dtype=dtype)
        if dtype.kind == "O" and not all(
            isinstance(item, (str, bool, int, float)) for item in array.ravel()
        ):
            raise Corrupt(f"has an object array holding more than scalars at {where}")
        return array.reshape(data["shape"])

    def object(self, data: dict, where: str):
        cls = self.allowlist.class_named(data["class"], where)
        label = f"{where} ({cls.__name__})"
        params = self.value(data["params"], f"the parameters of {label}")
        if not isinstance(params, dict):
            raise Corrupt(f"has parameters that are not a mapping at {label}")
        if is_pipeline(cls) and params.get("memory") is not None:
            raise Corrupt(f"gives {label} a cache folder (memory), never loaded")
        obj = cls(**params)
        fitted = self.value(data.get("fitted", {}), f"the fitted state of {label}")
        for name, value in fitted.items():
            if not (isinstance(name, str) and name.endswith("_")):
                raise Corrupt(f"has a fitted attribute named {name!r} at {label}")
            setattr(obj, name, value)
        if "net" in data:
            self.restore_extra(obj, data["net"], label)
        return obj

    def restore_extra(self, obj, data: dict, label: str) -> None:
        """Restore what the encoder's ``extra_state`` stored; none by default."""
        raise Corrupt(f"has state for {label} that this file kind does not hold")

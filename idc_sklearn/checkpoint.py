"""Resumable training: the whole state of a fit, written after every epoch.

With ``checkpoint_dir`` set, a CNN estimator of the library writes one file,
``<checkpoint_dir>/checkpoint.safetensors``, at the end of every epoch and again when
training ends. It holds everything the next epoch depends on:

- the weights of every module and the optimiser's state (Adam's moments and steps),
  the float16 loss scaler's state;
- the history, and the state of every callback: the early-stopping counters and the
  best epoch's weights, the learning-rate scheduler, the best scores;
- the random state: torch's generators (dropout, shuffling, augmentation) and the
  per-epoch class-balancing sampler's generator;
- a fingerprint of the parameters and of the data, so that a checkpoint is never
  resumed with other data or another model.

A later ``fit`` with the same ``checkpoint_dir``, parameters and data loads it and
trains only the epochs that are left, so an interrupted fit loses at most the epoch
it was in, and ends (on the CPU, seeded) with the same weights as an uninterrupted
fit. A fit that had finished is loaded and not trained again.

The file is written atomically and carries a checksum (:mod:`idc_sklearn._files`), so
a crash while writing leaves the previous epoch's checkpoint, and a damaged file is
refused with an error that names it; nothing in it is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from idc_sklearn._files import load_tensors, save_tensors

__all__ = ["CHECKPOINT_FILE", "load_checkpoint", "save_checkpoint"]

CHECKPOINT_FILE = "checkpoint.safetensors"
_FORMAT = "idc_sklearn.checkpoint"
_VERSION = 1

# Parameters that may differ between the interrupted fit and the one that resumes it:
# they change how training is watched or where it runs, not what it computes.
_FREE_PARAMS = frozenset(
    {"checkpoint_dir", "verbose", "max_epochs", "callbacks", "device", "tta"}
)
# Rows of X hashed for the data fingerprint: enough to tell datasets apart without
# reading a 2 GB array.
_FINGERPRINT_ROWS = 257


# -- JSON with non-finite floats and numpy scalars --


def _to_json(value):
    if isinstance(value, Mapping):
        return {str(k): _to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return _to_json(value.item())
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"{type(value).__name__} is not stored in a checkpoint")


def _from_json(value):
    if isinstance(value, dict):
        if set(value) == {"__float__"}:
            return float(value["__float__"])
        return {k: _from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value


# -- what is saved --


def _fingerprint(net, X: np.ndarray, y: np.ndarray, groups) -> dict:
    params = {
        name: value
        for name, value in net.get_params(deep=False).items()
        if name not in _FREE_PARAMS and not name.startswith("callbacks__")
    }
    rows = np.unique(np.linspace(0, len(X) - 1, _FINGERPRINT_ROWS).astype(np.int64))
    data = hashlib.sha256()
    data.update(f"{X.shape}{X.dtype}".encode())
    data.update(np.ascontiguousarray(X[rows]).tobytes())
    data.update(np.ascontiguousarray(y).tobytes())
    if groups is not None:
        data.update(repr(np.asarray(groups).tolist()).encode())
    return {
        "params": json.loads(json.dumps(params, default=repr, sort_keys=True)),
        "data": data.hexdigest(),
    }


def _optimizer_state(name: str, optimizer, tensors: dict) -> dict:
    state = optimizer.state_dict()
    per_param = {}
    for index, values in state["state"].items():
        per_param[str(index)] = {}
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{name}.state.{index}.{key}"] = value
                per_param[str(index)][key] = {"__tensor__": True}
            else:
                per_param[str(index)][key] = _to_json(value)
    return {"state": per_param, "param_groups": _to_json(state["param_groups"])}


def _callback_state(name: str, callback, tensors: dict) -> dict:
    """A callback's fitted attributes: numbers, strings, state dicts, schedulers."""
    state = {}
    for attr, value in vars(callback).items():
        if not attr.endswith("_") or attr.startswith("_"):
            continue
        if isinstance(value, Mapping) and value and all(
            isinstance(v, torch.Tensor) for v in value.values()
        ):
            for key, tensor in value.items():
                tensors[f"callbacks.{name}.{attr}.{key}"] = tensor
            state[attr] = {"__state_dict__": list(value)}
        elif isinstance(value, torch.optim.lr_scheduler.LRScheduler) or (
            isinstance(value, torch.optim.lr_scheduler.ReduceLROnPlateau)
        ):
            state[attr] = {"__scheduler__": _to_json(value.state_dict())}
        else:
            try:
                state[attr] = _to_json(value)
            except TypeError:
                continue  # functions, caches and other per-run objects
    return state


def save_checkpoint(net, folder, *, fingerprint: dict, finished: bool) -> Path:
    """Write the training state of ``net`` to ``folder``/checkpoint.safetensors."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors: dict = {}
    for name in [*net._modules, *net._criteria]:
        for key, tensor in getattr(net, name + "_").state_dict().items():
            tensors[f"{name}.{key}"] = tensor
    optimizers = {
        name: _optimizer_state(name, getattr(net, name + "_"), tensors)
        for name in net._optimizers
    }
    tensors["random.torch"] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for index, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"random.cuda.{index}"] = state
    sampler = getattr(net, "_train_sampler", None)
    scaler = getattr(net, "grad_scaler_", None)
    metadata = {
        "format": _FORMAT,
        "version": _VERSION,
        "estimator": type(net).__name__,
        "fingerprint": fingerprint,
        "finished": finished,
        "epochs": len(net.history),
        "history": _to_json(net.history.to_list()),
        "optimizers": optimizers,
        "grad_scaler": None if scaler is None else _to_json(scaler.state_dict()),
        "callbacks": {
            name: _callback_state(name, callback, tensors)
            for name, callback in net.callbacks_
        },
        "sampler": None if sampler is None else _to_json(sampler.rng_state),
    }
    path = folder / CHECKPOINT_FILE
    save_tensors(path, tensors, metadata)
    return path


# -- what is restored --


def load_checkpoint(folder) -> tuple[dict, dict] | None:
    """The tensors and metadata of ``folder``'s checkpoint, or None if it has none.

    Raises
    ------
    idc_sklearn._files.FileFormatError
        The file is damaged (checksum), truncated, or not a checkpoint.
    """
    path = Path(folder) / CHECKPOINT_FILE
    if not path.exists():
        return None
    tensors, metadata = load_tensors(path)
    if metadata.get("format") != _FORMAT or metadata.get("version") != _VERSION:
        raise ValueError(
            f"{str(path)!r} is not a training checkpoint of this idc_sklearn "
            f"(format {metadata.get('format')!r}, version {metadata.get('version')!r})"
            "; delete it or choose another checkpoint_dir."
        )
    return tensors, metadata


def check_fingerprint(path, metadata: dict, fingerprint: dict) -> None:
    """Refuse a checkpoint written for other parameters or other data."""
    saved = metadata["fingerprint"]
    if saved["params"] != fingerprint["params"]:
        differ = sorted(
            name
            for name in set(saved["params"]) | set(fingerprint["params"])
            if saved["params"].get(name) != fingerprint["params"].get(name)
        )
        raise ValueError(
            f"checkpoint_dir holds a checkpoint ({str(path)!r}) of a fit with other "
            f"parameters ({', '.join(differ)}); resume with the same parameters, "
            "or choose another checkpoint_dir."
        )
    if saved["data"] != fingerprint["data"]:
        raise ValueError(
            f"checkpoint_dir holds a checkpoint ({str(path)!r}) of a fit on other "
            "data (X, y or groups differ); resume with the same data, or choose "
            "another checkpoint_dir."
        )


def _tensors_under(tensors: dict, prefix: str) -> dict:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def restore_weights(net, tensors: dict, metadata: dict) -> None:
    """Modules, optimisers, loss scaler and history, before training resumes."""
    from skorch.history import History

    for name in [*net._modules, *net._criteria]:
        getattr(net, name + "_").load_state_dict(_tensors_under(tensors, name + "."))
    for name, saved in metadata["optimizers"].items():
        state = {}
        for index, values in saved["state"].items():
            state[int(index)] = {
                key: tensors[f"{name}.state.{index}.{key}"]
                if value == {"__tensor__": True}
                else _from_json(value)
                for key, value in values.items()
            }
        getattr(net, name + "_").load_state_dict(
            {"state": state, "param_groups": _from_json(saved["param_groups"])}
        )
    if metadata["grad_scaler"] is not None:
        net.grad_scaler_.load_state_dict(_from_json(metadata["grad_scaler"]))
    net.history_ = History(_from_json(metadata["history"]))


def restore_callbacks(net, tensors: dict, metadata: dict) -> None:
    """Callback states, once the callbacks' own ``on_train_begin`` has run."""
    callbacks = dict(net.callbacks_)
    for name, state in metadata["callbacks"].items():
        callback = callbacks.get(name)
        if callback is None:
            continue
        for attr, value in state.items():
            if isinstance(value, dict) and "__state_dict__" in value:
                prefix = f"callbacks.{name}.{attr}."
                weights = _tensors_under(tensors, prefix)
                order = value["__state_dict__"]
                setattr(callback, attr, OrderedDict((k, weights[k]) for k in order))
            elif isinstance(value, dict) and "__scheduler__" in value:
                getattr(callback, attr).load_state_dict(
                    _from_json(value["__scheduler__"])
                )
            else:
                setattr(callback, attr, _from_json(value))


def restore_random_state(net, tensors: dict, metadata: dict) -> None:
    """Generators, at the start of the first resumed epoch."""
    torch.set_rng_state(tensors["random.torch"])
    cuda = _tensors_under(tensors, "random.cuda.")
    if cuda and torch.cuda.is_available():
        for index in range(min(len(cuda), torch.cuda.device_count())):
            torch.cuda.set_rng_state(cuda[str(index)], index)
    sampler = getattr(net, "_train_sampler", None)
    if sampler is not None and metadata["sampler"] is not None:
        sampler.rng_state = _from_json(metadata["sampler"])

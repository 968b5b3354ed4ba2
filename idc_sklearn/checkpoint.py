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
from pathlib import Path

import numpy as np
import torch
from skorch.callbacks import Callback, EarlyStopping

from idc_sklearn._files import FileFormatError, load_tensors, save_tensors
from idc_sklearn._serialization import (
    Corrupt,
    Decoder,
    Encoder,
    Refused,
    network_components,
)

__all__ = [
    "CHECKPOINT_FILE",
    "TrainingCheckpoint",
    "fingerprint",
    "load_checkpoint",
    "place_training_checkpoint",
    "save_checkpoint",
]

CHECKPOINT_FILE = "checkpoint.safetensors"
_FORMAT = "idc_sklearn.checkpoint"
_VERSION = 2

# Parameters that may differ between the interrupted fit and the one that resumes it:
# they change how training is watched, where it runs or how it predicts, not what
# it computes (``inference`` changes validation scores by float rounding at most).
_FREE_PARAMS = frozenset(
    {
        "checkpoint_dir",
        "verbose",
        "max_epochs",
        "callbacks",
        "device",
        "tta",
        "inference",
    }
)
# Rows of X hashed for the data fingerprint: enough to tell datasets apart without
# reading a 2 GB array.
_FINGERPRINT_ROWS = 257


def fingerprint(net, X: np.ndarray, y: np.ndarray, groups) -> dict:
    """What a checkpoint is valid for: ``net``'s parameters and a hash of the data.

    Parameters that change how training is watched, where it runs or how it
    predicts (``_FREE_PARAMS``, and the callbacks) are left out, so a fit may be
    resumed with another ``max_epochs``, device or verbosity.
    """
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


# -- what is saved: encoded as model files are (idc_sklearn.persistence) --


def _callback_state(encoder: Encoder, name: str, callback) -> dict:
    """A callback's fitted attributes that describe training so far.

    Numbers, strings and lists of them, state dicts (early stopping's best
    weights) and schedulers (by their ``state_dict``); caches of tensors (the
    validation predictions of the epoch), functions and other per-run objects
    are left out.
    """
    values, schedulers = {}, {}
    for attr, value in vars(callback).items():
        if not attr.endswith("_") or attr.startswith("_"):
            continue
        key = f"callbacks.{name}.{attr}"
        if not isinstance(value, type) and hasattr(value, "load_state_dict"):
            value, target = value.state_dict(), schedulers
        else:
            target = values
        own = Encoder()
        try:
            encoded = own.value(value, f"callback {name!r} attribute {attr!r}", key)
        except Refused:
            continue
        if own.tensors and not isinstance(value, dict):
            continue  # a list of tensors: a cache of the epoch, not state
        encoder.tensors.update(own.tensors)
        target[attr] = encoded
    return {"values": values, "schedulers": schedulers}


def save_checkpoint(
    net, folder, *, fingerprint: dict, finished: bool, sampler=None
) -> Path:
    """Write the training state of ``net`` to ``folder``/checkpoint.safetensors.

    ``sampler`` is the training part's per-epoch class-balancing sampler
    (:class:`~idc_sklearn.EpochResampler`), whose generator is saved too.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    scaler = getattr(net, "grad_scaler_", None)
    components = network_components(net)
    cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
    state = {
        "modules": {
            attr.removesuffix("_"): getattr(net, attr).state_dict()
            for attr in components["modules"]
        },
        "optimizers": {
            attr.removesuffix("_"): getattr(net, attr).state_dict()
            for attr in components["optimizers"]
        },
        "grad_scaler": None if scaler is None else scaler.state_dict(),
        "history": net.history.to_list(),
        "random": {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if cuda else [],
            "sampler": None if sampler is None else sampler.rng_state,
        },
    }
    encoder = Encoder()
    metadata = {
        "format": _FORMAT,
        "version": _VERSION,
        "estimator": type(net).__name__,
        "fingerprint": fingerprint,
        "finished": finished,
        "epochs": len(net.history),
        "state": encoder.value(state, "the training state", "state"),
        "callbacks": {
            name: _callback_state(encoder, name, callback)
            for name, callback in net.callbacks_
            if not isinstance(callback, TrainingCheckpoint)
        },
    }
    path = folder / CHECKPOINT_FILE
    save_tensors(path, encoder.tensors, metadata)
    return path


# -- what is restored --


def load_checkpoint(folder) -> dict | None:
    """``folder``'s checkpoint, decoded, or None if it has none.

    Returns a dict with the file's ``path``, its ``metadata`` (fingerprint,
    ``finished``, ``epochs``), the training ``state`` and the ``callbacks``'.

    Raises
    ------
    idc_sklearn._files.FileFormatError
        The file is damaged (checksum), truncated, not a checkpoint, or holds
        a document that does not decode.
    """
    path = Path(folder) / CHECKPOINT_FILE
    if not path.exists():
        return None
    tensors, metadata = load_tensors(path)
    if metadata.get("format") != _FORMAT or metadata.get("version") != _VERSION:
        raise FileFormatError(
            f"{str(path)!r} is not a training checkpoint of this idc_sklearn "
            f"(format {metadata.get('format')!r}, version {metadata.get('version')!r})"
            "; delete it or choose another checkpoint_dir."
        )
    decoder = Decoder(tensors, str(path))
    try:
        state = decoder.value(metadata["state"], "the training state")
        callbacks = {
            name: {
                part: decoder.value(entries, f"callback {name!r}")
                for part, entries in saved.items()
            }
            for name, saved in metadata["callbacks"].items()
        }
    except (Corrupt, KeyError, AttributeError) as exc:
        raise FileFormatError(
            f"{str(path)!r} is not a valid training checkpoint: it {exc}."
        ) from None
    return {"path": path, "metadata": metadata, "state": state, "callbacks": callbacks}


def check_fingerprint(found: dict, fingerprint: dict) -> None:
    """Refuse a checkpoint written for other parameters or other data."""
    path, saved = found["path"], found["metadata"]["fingerprint"]
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


def restore_weights(net, found: dict) -> None:
    """Modules, optimisers, loss scaler and history, before training resumes."""
    from skorch.history import History

    state = found["state"]
    for name, weights in state["modules"].items():
        getattr(net, name + "_").load_state_dict(weights)
    for name, optimizer_state in state["optimizers"].items():
        getattr(net, name + "_").load_state_dict(optimizer_state)
    if state["grad_scaler"] is not None:
        net.grad_scaler_.load_state_dict(state["grad_scaler"])
    net.history_ = History(state["history"])


def restore_callbacks(net, found: dict) -> None:
    """Callback states, once the callbacks' own ``on_train_begin`` has run."""
    callbacks = dict(net.callbacks_)
    for name, saved in found["callbacks"].items():
        callback = callbacks.get(name)
        if callback is None:
            continue
        for attr, value in saved["values"].items():
            setattr(callback, attr, value)
        for attr, scheduler_state in saved["schedulers"].items():
            getattr(callback, attr).load_state_dict(scheduler_state)


def restore_random_state(net, found: dict, sampler=None) -> None:
    """Generators, at the start of the first resumed epoch (``sampler``'s too)."""
    random = found["state"]["random"]
    torch.set_rng_state(random["torch"])
    if torch.cuda.is_available():
        for index, cuda_state in enumerate(random["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(cuda_state, index)
    if sampler is not None and random["sampler"] is not None:
        sampler.rng_state = random["sampler"]


class TrainingCheckpoint(Callback):
    """Write the whole training state after every epoch; resume an interrupted fit.

    The callback behind the estimators' ``checkpoint_dir=``, in the style of
    skorch's :class:`~skorch.callbacks.Checkpoint` and
    :class:`~skorch.callbacks.LoadInitState`, with the library's own file format: one
    file, ``<dirname>/checkpoint.safetensors``, written atomically and checksummed,
    never unpickled. It holds the weights, optimiser and loss-scaler states, the
    history, every other callback's state and the random state (see the module's
    description), and a fingerprint of the parameters and data.

    Before training, the estimator hands it the data (:meth:`prepare`): on a fresh
    ``fit``, a checkpoint of the same parameters and data is loaded and only the
    epochs left are trained; one of other parameters or data is refused, never
    overwritten. The callback states and the random state are restored once
    training has begun, after the other callbacks' ``on_train_begin`` (so it must
    come after them in ``callbacks_``, as the estimators place it).

    Parameters
    ----------
    dirname : str or path-like
        The folder of the checkpoint; created when the first epoch ends.

    Attributes
    ----------
    fingerprint_ : dict
        What the checkpoint of the fit in progress is valid for.
    """

    def __init__(self, dirname) -> None:
        self.dirname = dirname

    def initialize(self):
        self.fingerprint_ = None
        self._pending = None
        self._target_epochs = None
        self._sampler = None
        return self

    def prepare(self, net, X, y, groups, epochs: int, *, resume: bool) -> int:
        """Fingerprint the fit; on ``resume``, load a checkpoint. The epochs left."""
        self.fingerprint_ = fingerprint(net, X, y, groups)
        self._pending = None
        found = load_checkpoint(self.dirname) if resume else None
        if found is not None:
            check_fingerprint(found, self.fingerprint_)
            restore_weights(net, found)
            done = len(net.history)
            if found["metadata"]["finished"] or done >= epochs:
                epochs = 0
            else:
                # Restored once training has begun, where the callbacks' own
                # on_train_begin would otherwise reset them.
                self._pending = found
                epochs -= done
        self._target_epochs = len(net.history) + epochs
        return epochs

    def on_train_begin(self, net, **kwargs):
        if self._pending is not None:
            restore_callbacks(net, self._pending)

    def on_epoch_begin(self, net, dataset_train=None, **kwargs):
        # The training part's class-balancing order (training_loader), if any.
        self._sampler = getattr(dataset_train, "epoch_sampler", None)
        if self._pending is not None:
            restore_random_state(net, self._pending, self._sampler)
            self._pending = None

    def on_epoch_end(self, net, **kwargs):
        self._save(net, finished=False)

    def on_train_end(self, net, **kwargs):
        # At the end the weights may be the best epoch's (restored by early
        # stopping); only a finished fit is saved then, never an interrupted one,
        # whose last epoch's checkpoint stays.
        if self._finished(net):
            self._save(net, finished=True)

    def _save(self, net, *, finished: bool) -> None:
        if self.fingerprint_ is None:
            raise RuntimeError(
                "TrainingCheckpoint.prepare was not called before training: the "
                "estimators of idc_sklearn call it in fit and partial_fit."
            )
        save_checkpoint(
            net,
            self.dirname,
            fingerprint=self.fingerprint_,
            finished=finished,
            sampler=self._sampler,
        )

    def end_fit(self) -> None:
        """Forget the fit's sampler: it holds the training labels, which the fitted
        model (and its pickle) has no use for. The estimator calls it however the
        fit ended."""
        self._sampler = None
        self._pending = None

    def _finished(self, net) -> bool:
        """Whether training ended by itself: all its epochs, or early stopping.

        Early stopping ends training by raising KeyboardInterrupt, as a user's
        Ctrl-C does; its counters tell the two apart.
        """
        if len(net.history) >= self._target_epochs:
            return True
        return any(
            isinstance(cb, EarlyStopping) and cb.misses_ >= cb.patience
            for _, cb in net.callbacks_
        )


#: The name of ``checkpoint_dir``'s callback in an estimator's ``callbacks_``.
CALLBACK_NAME = "training_checkpoint"


def place_training_checkpoint(net) -> TrainingCheckpoint | None:
    """Put ``net.checkpoint_dir``'s callback last in ``net.callbacks_``.

    Last, so that its ``on_train_begin`` restores the other callbacks' states
    after they have reset themselves; the callback of an earlier fit to the same
    folder is kept. Returns the last :class:`TrainingCheckpoint` of
    ``callbacks_`` (one passed in ``callbacks`` counts), or None.
    """
    callbacks = [(name, cb) for name, cb in net.callbacks_ if name != CALLBACK_NAME]
    own = dict(net.callbacks_).get(CALLBACK_NAME)
    if net.checkpoint_dir is not None:
        if own is None or own.dirname != net.checkpoint_dir:
            own = TrainingCheckpoint(net.checkpoint_dir).initialize()
        callbacks.append((CALLBACK_NAME, own))
    net.callbacks_ = callbacks
    return next(
        (cb for _, cb in reversed(callbacks) if isinstance(cb, TrainingCheckpoint)),
        None,
    )

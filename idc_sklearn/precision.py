"""Mixed precision for the patch CNNs: autocast in the forward pass, loss scaling.

The ``precision`` parameter of :class:`~idc_sklearn.PatchNetClassifier`:
``"bfloat16"`` and ``"float16"`` run the module's forward pass under
:func:`torch.autocast` (:func:`autocast`; weights, loss and optimiser stay
float32); ``"float16"`` also scales the loss with :class:`torch.amp.GradScaler`
(:func:`grad_scaler`), so small gradients do not vanish; ``"auto"`` is bfloat16
where the device has bfloat16 units. The estimator's ``train_step`` is
:func:`scaled_train_step` where there is a scaler.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
from skorch.dataset import unpack_data
from skorch.utils import TeeGenerator

from idc_sklearn._device import has_bfloat16_units

__all__ = [
    "PRECISIONS",
    "autocast",
    "autocast_dtype",
    "grad_scaler",
    "scaled_train_step",
]

#: The ``precision`` values and the dtype autocast computes in (None: no autocast);
#: ``"auto"`` is bfloat16 where the device has bfloat16 units, else float32.
PRECISIONS = {
    "float32": None,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
    "auto": None,
}


def autocast_dtype(precision: str, device_type: str) -> torch.dtype | None:
    """The dtype ``precision`` computes in on ``device_type`` (None: float32)."""
    if precision == "auto" and has_bfloat16_units(device_type):
        return torch.bfloat16
    return PRECISIONS[precision]


def autocast(precision: str, device):
    """The context of a forward pass in ``precision`` on ``device``."""
    device_type = torch.device(device).type
    dtype = autocast_dtype(precision, device_type)
    if dtype is None:
        return nullcontext()
    return torch.autocast(device_type, dtype=dtype)


def grad_scaler(precision: str, device) -> torch.amp.GradScaler | None:
    """The loss scaler of ``precision`` on ``device``; None where none is needed.

    float16 gradients underflow without loss scaling; bfloat16 has float32's range
    and needs none.
    """
    if precision != "float16":
        return None
    return torch.amp.GradScaler(torch.device(device).type)


def scaled_train_step(net, scaler: torch.amp.GradScaler, batch, **fit_params) -> dict:
    """One training step of skorch ``net`` with its loss scaled by ``scaler``.

    skorch's ``train_step`` (1.4) hands each optimiser the step as a closure,
    which :meth:`torch.amp.GradScaler.step` does not take. Here the step runs
    once: the gradients are zeroed, the scaled loss goes backward, the gradients
    are unscaled before skorch's ``on_grad_computed`` (so gradient callbacks such
    as clipping see the true ones), each optimiser steps (skipped where a
    gradient overflowed) and the scale is updated.
    """
    optimizers = [getattr(net, name + "_") for name in net._optimizers]
    for optimizer in optimizers:
        optimizer.zero_grad()
    net._set_training(True)
    Xi, yi = unpack_data(batch)
    y_pred = net.infer(Xi, **fit_params)
    loss = net.get_loss(y_pred, yi, X=Xi, training=True)
    scaler.scale(loss).backward()
    for optimizer in optimizers:
        scaler.unscale_(optimizer)
    net.notify(
        "on_grad_computed",
        named_parameters=TeeGenerator(net.get_all_learnable_params()),
        batch=batch,
        training=True,
    )
    for optimizer in optimizers:
        scaler.step(optimizer)
    scaler.update()
    return {"loss": loss, "y_pred": y_pred}

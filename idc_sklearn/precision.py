"""Mixed precision for the patch CNNs: autocast in the forward pass, loss scaling.

:class:`MixedPrecisionMixin` gives a skorch net the ``precision`` parameter's
behaviour. ``"bfloat16"`` and ``"float16"`` run the module's forward pass under
:func:`torch.autocast` (weights, loss and optimiser stay float32); ``"float16"``
also scales the loss with :class:`torch.amp.GradScaler`, so small gradients do not
vanish; ``"auto"`` is bfloat16 where the device has bfloat16 units. skorch offers no
hook for the backward pass, so :meth:`~MixedPrecisionMixin.train_step_single` is
skorch's with the scaled backward; the optimiser step goes through skorch's
``_step_optimizer``.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
from skorch.dataset import unpack_data

from idc_sklearn._device import has_bfloat16_units

__all__ = ["PRECISIONS", "MixedPrecisionMixin", "autocast_dtype"]

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


class MixedPrecisionMixin:
    """``precision=`` for a skorch net with ``precision`` and ``device_`` attributes."""

    def autocast(self):
        """The ``precision`` context of the module's forward pass."""
        device_type = torch.device(self.device_).type
        dtype = autocast_dtype(self.precision, device_type)
        if dtype is None:
            return nullcontext()
        return torch.autocast(device_type, dtype=dtype)

    def initialize_optimizer(self, *args, **kwargs):
        super().initialize_optimizer(*args, **kwargs)
        # float16 gradients underflow without loss scaling; bfloat16 has float32's
        # range and needs none.
        self.grad_scaler_ = (
            torch.amp.GradScaler(torch.device(self.device_).type)
            if self.precision == "float16"
            else None
        )
        return self

    def _scaler(self):
        return getattr(self, "grad_scaler_", None)

    def train_step_single(self, batch, **fit_params):
        scaler = self._scaler()
        if scaler is None:
            return super().train_step_single(batch, **fit_params)
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        y_pred = self.infer(Xi, **fit_params)
        loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        scaler.scale(loss).backward()
        # Unscaled before skorch's on_grad_computed, so gradient callbacks (such as
        # clipping) see the true gradients.
        for name in self._optimizers:
            scaler.unscale_(getattr(self, name + "_"))
        return {"loss": loss, "y_pred": y_pred}

    def _step_optimizer(self, step_fn):
        scaler = self._scaler()
        if scaler is None:
            return super()._step_optimizer(step_fn)
        # GradScaler.step takes no closure: the step (loss, backward) is computed
        # once, then each optimiser steps, skipped where a gradient overflowed,
        # and the scale is updated.
        if step_fn is not None:
            step_fn()
        for name in self._optimizers:
            scaler.step(getattr(self, name + "_"))
        scaler.update()
        return None

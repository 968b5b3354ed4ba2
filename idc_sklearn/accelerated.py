"""Data-parallel training on several GPUs (or processes) through Accelerate.

:class:`AcceleratedMLBNInceptionClassifier` is
:class:`~idc_sklearn.MLBNInceptionClassifier` with skorch's
:class:`skorch.hf.AccelerateMixin`: run the same script under ``accelerate launch
--num_processes N`` and each process trains on its shard of every batch, gradients
averaged across processes (DistributedDataParallel), predictions gathered.
:class:`AcceleratePatchNetMixin` puts the same on any
:class:`~idc_sklearn.PatchNetClassifier` (the CNN baselines too). Accelerate is
imported only by this module; see ``docs/scale_out.md``.
"""

from __future__ import annotations

import torch
from skorch.hf import AccelerateMixin
from torch import nn

from idc_sklearn.classifier import MLBNInceptionClassifier, PatchNetClassifier

__all__ = ["AcceleratePatchNetMixin", "AcceleratedMLBNInceptionClassifier"]


def average_batchnorm_statistics(module: nn.Module, accelerator) -> None:
    """Average every BatchNorm's running statistics over the processes.

    Each process measures the statistics on its shard of the batches, as a plain
    average over batches (:func:`~idc_sklearn.callbacks.recalibrate_batchnorm`);
    every shard holds as many batches (Accelerate's ``even_batches``), so the mean
    over processes is the average over all batches, what one process would measure.
    """
    if accelerator.num_processes == 1:
        return
    for norm in module.modules():
        if (
            isinstance(norm, nn.modules.batchnorm._NormBase)
            and norm.track_running_stats
        ):
            for buffer in (norm.running_mean, norm.running_var):
                buffer.copy_(accelerator.reduce(buffer, reduction="mean"))


def _silent(text: str) -> None:
    """The training log's sink on every process but the main one."""


class AcceleratePatchNetMixin(AccelerateMixin):
    """skorch's :class:`~skorch.hf.AccelerateMixin` fitted to the patch estimators.

    Put it first among the bases of a :class:`~idc_sklearn.PatchNetClassifier`
    subclass. It keeps what those estimators do and adds what several processes
    need:

    - ``device="auto"`` means the accelerator's device for this process
      (``device_``); the accelerator moves module, optimiser and batches there.
    - Validation predictions, labels and loss are gathered from every process, so
      the balanced accuracy that early stopping and the learning-rate plateau read
      is the whole validation part's, and every process takes the same decision.
    - BatchNorm statistics re-measured before validation
      (:class:`~idc_sklearn.BatchNormRecalibration`) are averaged over the
      processes, so all of them validate and predict with one model.
    - The best epoch's weights that early stopping restores are loaded before the
      module is unwrapped (skorch unwraps first, which fails under
      DistributedDataParallel).

    Parameters
    ----------
    accelerator : accelerate.Accelerator
        Built once per process, e.g. ``Accelerator()`` under ``accelerate launch``
        or ``Accelerator(cpu=True)``; ``Accelerator(mixed_precision="fp16")``
        trains in float16 with loss scaling.
    device : "auto", default="auto"
        Leave it to the accelerator; another device is refused while the
        accelerator places the model (``device_placement=True``).
    unwrap_after_train : bool, default=True
        As in skorch: give the plain module back after training, so the estimator
        pickles.
    **kwargs
        Every parameter of the estimator it is mixed into.
    """

    def __init__(self, *args, accelerator, device="auto", **kwargs):
        super().__init__(*args, accelerator=accelerator, device=device, **kwargs)

    def _places(self) -> bool:
        """Whether the accelerator places module, optimiser and batches."""
        accelerator = getattr(self, "accelerator", None)  # None inside __init__
        return accelerator is not None and accelerator.device_placement

    @property
    def device(self):
        # skorch.hf (1.4) moves nothing itself where the accelerator places the
        # model, and its _validate_params refuses a device other than None then.
        return None if self._places() else PatchNetClassifier.device.fget(self)

    @device.setter
    def device(self, value):
        if self._places():
            # The accelerator places the model: the parameter is only recorded
            # (checked at the next fit). skorch's load_params sets None and back.
            self._device = "auto" if value is None else value
        else:
            PatchNetClassifier.device.fset(self, value)

    def _resolved_device(self) -> str:
        if self._device == "auto":
            return str(self.accelerator.device)
        return super()._resolved_device()

    def _check_params(self) -> None:
        super()._check_params()
        if self._places() and self._device != "auto":
            raise ValueError(
                'device must be "auto" when the accelerator places the model '
                f"(device_placement=True) on this process's device; got "
                f"{self._device!r}."
            )
        if self.precision == "float16":
            raise ValueError(
                'precision="float16" needs loss scaling, which the accelerator '
                'does: pass Accelerator(mixed_precision="fp16") and keep precision '
                '"float32"; got precision="float16".'
            )
        n_processes = self.accelerator.num_processes
        if n_processes == 1:
            return
        if self.resample is not None and self.random_state is None:
            raise ValueError(
                f"random_state must be set when resample={self.resample!r} trains on "
                f"{n_processes} processes: each process draws the epoch's balanced "
                "order from it and takes its own shard; got None."
            )
        if self.checkpoint_dir is not None:
            raise ValueError(
                f"checkpoint_dir is for one process; got {self.checkpoint_dir!r} "
                f"with {n_processes} processes, which would all write it."
            )

    def initialize(self, *, check_params: bool = True):
        # AccelerateMixin.initialize (skorch 1.4) is NeuralNet.initialize with the
        # accelerator's preparation added, and calls no super(): the patch
        # estimator's own first steps (checks, device_, classes) come before it.
        self._before_initialize(check_params=check_params)
        self._wrapped_with_accelerator = False  # everything is built afresh
        return super().initialize()

    def _initialize_callbacks(self):
        # AccelerateMixin (skorch 1.4) makes the "auto" sink the accelerator's
        # print here, in a private hook that set_params also calls, and PrintLog
        # calls it whatever ``verbose`` says (it spares only ``print`` itself):
        # the main process logs with print, so verbose=0 silences it, the others
        # not at all.
        if self.callbacks__print_log__sink == "auto":
            self.callbacks__print_log__sink = (
                print if self.accelerator.is_main_process else _silent
            )
        return super()._initialize_callbacks()

    def _initialize_accelerator(self):
        # AccelerateMixin's (skorch 1.4; private, no public hook) prepares every
        # loss. One without trainable parameters has nothing to synchronise:
        # Accelerate leaves it out of DistributedDataParallel on GPUs but not on
        # CPU processes, where DDP refuses it; it goes to ``device_`` here.
        criteria = self._criteria
        self._criteria = [
            name
            for name in criteria
            if not isinstance(loss := getattr(self, name + "_"), nn.Module)
            or any(p.requires_grad for p in loss.parameters())
        ]
        for name in set(criteria) - set(self._criteria):
            loss = getattr(self, name + "_")
            if isinstance(loss, nn.Module):
                loss.to(self.device_)
        if self.accelerator.num_processes > 1:
            # Batches are channels-last, so are the convolutions' gradients; DDP's
            # gradient buckets follow the weights' layout, which must match.
            self.module_.to(memory_format=torch.channels_last)
        try:
            return super()._initialize_accelerator()
        finally:
            self._criteria = criteria

    def reduce_batchnorm_statistics(self) -> None:
        """Average the re-measured BatchNorm statistics over the processes.

        :class:`~idc_sklearn.BatchNormRecalibration` calls it after each
        measurement.
        """
        average_batchnorm_statistics(self.module_, self.accelerator)

    def validation_step(self, batch, **fit_params):
        step = super().validation_step(batch, **fit_params)
        if self.accelerator.num_processes > 1:
            step["loss"] = self.accelerator.reduce(step["loss"], reduction="mean")
            step["y_pred"] = self.accelerator.gather_for_metrics(step["y_pred"])
        return step

    def notify(self, method_name, **cb_kwargs):
        if (
            method_name == "on_batch_end"
            and not cb_kwargs["training"]
            and self.accelerator.num_processes > 1
        ):
            # Scoring callbacks cache each validation batch's labels and
            # predictions (validation_step gathers those): the labels of every
            # process's shard, in the same order.
            Xi, yi = cb_kwargs["batch"]
            cb_kwargs["batch"] = (Xi, self.accelerator.gather_for_metrics(yi))
        super().notify(method_name, **cb_kwargs)

    def on_train_end(self, net, X=None, y=None, **kwargs):
        # Not AccelerateMixin's (skorch 1.4), which unwraps the module here, before
        # the callbacks' on_train_end: early stopping's best weights, saved from the
        # wrapped module, would not load into the unwrapped one. _train unwraps
        # once every callback has run.
        self.accelerator.wait_for_everyone()

    def _train(self, *args, **kwargs):
        try:
            return super()._train(*args, **kwargs)
        finally:
            if self.unwrap_after_train:
                self._unwrap_accelerator()


class AcceleratedMLBNInceptionClassifier(
    AcceleratePatchNetMixin, MLBNInceptionClassifier
):
    """:class:`~idc_sklearn.MLBNInceptionClassifier` trained through Accelerate.

    Data-parallel training: under ``accelerate launch --num_processes N
    script.py`` each of the N processes holds a replica of the network, trains on
    its shard of every batch (``batch_size`` patches per process, so N times
    ``batch_size`` per step) and averages gradients with the others
    (DistributedDataParallel). ``predict`` and ``predict_proba`` return every
    patch's result on every process (gathered). Run as a plain script it trains
    in one process, like :class:`~idc_sklearn.MLBNInceptionClassifier`.

    Parameters
    ----------
    accelerator : accelerate.Accelerator
        One per process, e.g. ``Accelerator()``, ``Accelerator(cpu=True)`` or
        ``Accelerator(mixed_precision="fp16")``.
    device : "auto", default="auto"
        The accelerator's device for this process, resolved at fit (``device_``).
    unwrap_after_train : bool, default=True
        Give back the plain module after training (needed to pickle).
    **kwargs
        Every parameter of :class:`~idc_sklearn.MLBNInceptionClassifier`.
        ``random_state`` must be set when several processes train with
        ``resample`` (the default, ``"over"``).

    See Also
    --------
    AcceleratePatchNetMixin : the same for any patch estimator.

    Notes
    -----
    BatchNorm normalises each process's batch with that batch's statistics (no
    ``SyncBatchNorm``): each process sees ``batch_size`` patches, as one GPU does
    in the paper's recipe, and no BatchNorm layer waits on the others. The running
    statistics used to validate and predict are re-measured before validation and
    averaged over the processes.

    Examples
    --------
    >>> import numpy as np
    >>> from accelerate import Accelerator
    >>> from idc_sklearn import AcceleratedMLBNInceptionClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.integers(0, 256, size=(40, 16, 16, 3), dtype=np.uint8)
    >>> y = np.repeat([0, 1], 20)
    >>> clf = AcceleratedMLBNInceptionClassifier(
    ...     accelerator=Accelerator(cpu=True),
    ...     filters=(3, 3), head_units=(8,), patch_shape=(16, 16, 3),
    ...     max_epochs=1, train_split=None, verbose=0, random_state=0,
    ... ).fit(X, y)
    >>> clf.device_, clf.predict_proba(X).shape
    ('cpu', (40, 2))
    """

"""Patch-classifying CNNs as scikit-learn estimators (skorch glue).

:class:`PatchNetClassifier` is a :class:`skorch.NeuralNetClassifier` whose methods
read in the order of skorch's own class: the parameters and the device; the
components built from the data (``initialize_*``, ``initialize``); one training
step (``train_step``) and one evaluation step; an epoch
(``run_single_epoch``); ``partial_fit`` and ``fit``, which check their inputs and
parameters once, on entering; ``predict_proba`` and ``infer``, the forward pass;
the loaders (``get_dataset``, ``get_iterator``); ``get_params`` and
``set_params``. What each concern needs beyond a few lines is a function of the
module named for it: the checks (``_validation``), the forward pass's networks and
views (``_forward``), mixed precision (``precision``), the training loader
(``batching``), the split's routing (``split``), the device names (``_device``);
checkpointing is a callback (``checkpoint``). :class:`MLBNInceptionClassifier` is
the paper's network on top of it; the CNN baselines subclass it the same way.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import clone
from sklearn.utils._param_validation import Interval, StrOptions
from skorch import NeuralNetClassifier
from skorch.dataset import unpack_data
from skorch.utils import to_numpy
from torch import nn
from torch.utils.data import Dataset

from idc_sklearn._device import resolve_device, seeded
from idc_sklearn._forward import INFERENCE_MODES, forward_batch
from idc_sklearn._validation import check_parameters, learn_classes
from idc_sklearn.augmentation import AUGMENT_MODES
from idc_sklearn.batching import (
    NORMALIZE_MODES,
    PatchDataLoader,
    PatchDataset,
    prepare_patches,
    run_epoch,
    training_loader,
)
from idc_sklearn.callbacks import default_callbacks
from idc_sklearn.checkpoint import place_training_checkpoint
from idc_sklearn.network import (
    DEFAULT_FILTERS,
    DEFAULT_HEAD_UNITS,
    INIT_MODES,
    MIN_PATCH_SIZE,
    MLBNInception,
)
from idc_sklearn.patches import (
    DEFAULT_PATCH_SHAPE,
    as_real_array,
    check_groups,
    check_labels,
    check_patch_shape,
    check_patches,
    encode_labels,
    warn_if_scaled,
)
from idc_sklearn.precision import PRECISIONS, grad_scaler, scaled_train_step
from idc_sklearn.resampling import RESAMPLE_MODES
from idc_sklearn.split import PatientValidSplit, route_to_split

__all__ = ["PatchNetClassifier", "MLBNInceptionClassifier", "PRECISIONS"]


def _options(modes) -> list:
    """sklearn constraints for a tuple of string modes that may include None."""
    names = {mode for mode in modes if mode is not None}
    return [StrOptions(names), None] if None in modes else [StrOptions(names)]


class PatchNetClassifier(NeuralNetClassifier):
    """A CNN on image patches as a scikit-learn classifier.

    A :class:`skorch.NeuralNetClassifier` that takes patch arrays, as images are
    stored, and keeps sklearn's contract: any labels, ``classes_``,
    ``n_features_in_``, ``clone``, pipelines and grouped cross-validation. Every
    skorch parameter (``lr``, ``batch_size``, ``max_epochs``, ``optimizer__*``,
    ``callbacks__<name>__*``, ...) works as in skorch.

    The ``module`` is built with ``n_classes``, ``in_channels`` and ``patch_size``
    taken from the data and ``patch_shape``, plus any ``module__*`` parameters.

    Parameters
    ----------
    module : torch module class or instance
        The network; it gets ``(n, channels, height, width)`` float batches and
        returns logits.
    patch_shape : tuple of int, default=(50, 50, 3)
        ``(height, width, channels)`` of the patches. 4-D input must have it; 2-D
        input ``(n, height * width * channels)`` is read through it.
    normalize : {"scale", "zscore"} or None, default="scale"
        ``"scale"`` divides by 255 (uint8 and float input are both read on the 0-255
        scale); ``"zscore"`` standardises each patch's channels (the authors'
        option); ``None`` feeds the raw values. Applied per batch on the device.
    class_weight : None, "balanced" or dict, default=None
        Weights of the classes in the cross-entropy loss, as in sklearn; dict keys
        are the original labels (unlisted classes weigh 1).
    resample : {None, "over", "under"}, default=None
        Balance the classes of the training part of the internal validation split
        by random over-sampling of the minority class (the MLBN paper's recipe) or
        under-sampling of the majority, with imbalanced-learn's samplers on the
        patch *indices*: no patch is copied, each epoch is a fresh draw (seeded by
        ``random_state``), and the validation part and ``groups`` are left as they
        are. Use this rather than a sampler in a ``Pipeline``, which cannot
        resample ``groups``.
    augment : {None, "dihedral", "hed", "all"}, default=None
        Training-time augmentation per batch on the device (see
        :mod:`idc_sklearn.augmentation`): the 8 dihedral views (flips and
        90-degree rotations), HED colour jitter (stain variation), or both.
        Seeded by ``random_state``; never applied when predicting.
    hed_sigma : float in [0, 1), default=0.05
        The strength of the HED jitter (``augment="hed"`` or ``"all"``): each
        stain's concentration is scaled by a factor in ``[1 - hed_sigma, 1 +
        hed_sigma]`` and shifted by up to ``hed_sigma`` (see
        :func:`idc_sklearn.hed_jitter`).
    tta : bool, default=False
        Test-time augmentation: ``predict_proba`` (and ``predict``) average the
        probabilities of the 8 dihedral views of each patch (flips and 90-degree
        rotations; 4 for non-square patches), at 8 times the network's cost. The
        views are taken per batch on the device, so the data is read once. The
        validation passes of training do not use it; ``forward`` returns the
        logarithm of the averaged probabilities in place of logits.
    precision : {"float32", "bfloat16", "float16", "auto"}, default="float32"
        The arithmetic of the network's forward pass, in training and prediction:
        ``"bfloat16"`` and ``"float16"`` run it under :func:`torch.autocast`
        (weights, loss and optimiser stay float32; ``"float16"`` scales the loss
        with :class:`torch.amp.GradScaler` so small gradients do not vanish).
        Faster on GPUs and on CPUs with bfloat16 units (AMX, AVX-512 BF16: the
        paper network trains and predicts 2x faster on an AMX Xeon);
        probabilities agree with float32 to a few parts in a thousand. Without
        those units bfloat16 is emulated and slower (4x on an AMD EPYC).
        ``"auto"`` is ``"bfloat16"`` where the device has them (a CUDA GPU that
        supports it, a CPU with AMX or AVX-512 BF16), else ``"float32"``.
    inference : {"fold", "eager", "compile"}, default="fold"
        The form of the trained network that predictions and validation passes
        run. ``"fold"``: a copy with each BatchNorm folded into the convolution or
        dense layer before it (the same probabilities to float rounding, one pass
        over the activations less per BatchNorm), rebuilt whenever a weight or
        statistic changes in place (a write through a tensor's ``.data`` is not
        seen). ``"eager"``: the network as trained (hooks on its BatchNorm layers
        run only here). ``"compile"``: ``predict_proba`` runs the folded network
        compiled by :func:`torch.compile` with frozen weights, for large
        predictions: about 1.4 times as fast on a 2-core CPU, after a compile of
        about a minute per fitted model (``fit``'s validation passes use
        ``"fold"``; on the CPU, Inductor needs a C++ compiler). Ignored with
        skorch's ``compile=True``, which compiles the network for everything.
    data_on_device : bool, default=False
        Copy ``X`` (in its stored dtype: 2.1 GB for the full archive as uint8)
        and ``y`` to the training device once per ``fit`` or ``predict_proba``,
        and gather each batch there by index, so no patch crosses from host to
        device per batch. For GPUs with the memory to spare; on the CPU it changes
        nothing but the copy.
    checkpoint_dir : str, path-like or None, default=None
        Write the whole training state (weights, optimiser, scheduler and
        early-stopping state, history, random state, the class-balancing
        sampler) to ``<checkpoint_dir>/checkpoint.safetensors`` after every epoch,
        atomically (see :mod:`idc_sklearn.checkpoint`). A later ``fit`` with the
        same ``checkpoint_dir``, parameters and data resumes after the last
        complete epoch and, seeded on the CPU, ends with the same weights as an
        uninterrupted fit; a finished fit is loaded, not repeated. A checkpoint
        of other parameters or data is refused, never overwritten.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, batch shuffling and dropout: the same seed
        gives the same fitted model and probabilities on CPU, and torch's global
        random state is left as it was. Seeded fits repeat one at a time per
        process (joblib's default, process-based backend), not when several run
        at once in threads of one process, which share torch's generator.
    device : str or torch.device, default="auto"
        ``"auto"`` uses CUDA where present, else the CPU, resolved at fit (the
        resolved device is ``device_``). ``"cpu"``, ``"cuda"``, ``"cuda:1"`` work.
    criterion : torch loss class, default=torch.nn.CrossEntropyLoss
        Gets logits.
    optimizer : torch optimizer class, default=torch.optim.Adam
    lr : float, default=1e-3
    batch_size : int, default=32
    max_epochs : int, default=100
        Early stopping normally ends training sooner.
    train_split : callable or None, default=PatientValidSplit(0.2)
        The internal validation split used by early stopping. Gets ``groups``
        where ``fit`` got them, so whole patients are held out. ``None`` trains on
        everything, without the validation callbacks (there is nothing to stop on).
    **kwargs
        Any other skorch parameter. ``iterator_train__shuffle`` defaults to True
        (skorch's default, False, does not learn on data sorted by patient and
        class).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels seen in ``fit``, sorted; ``predict`` returns them.
    n_features_in_ : int
        ``height * width * channels`` of a patch.
    device_ : str
        The device the model was trained on.
    class_weight_ : ndarray of shape (n_classes,) or None
        The loss weights in ``classes_`` order.
    module_, criterion_, optimizer_, history_ : skorch's fitted attributes.

    Notes
    -----
    What ``fit`` does: validate ``X``, ``y`` and ``groups``; learn ``classes_`` and
    the class weights; build the network, loss and optimiser (seeded); split off
    whole validation patients (``train_split``); train, each epoch on a fresh
    class-balanced draw of the training part where ``resample`` is set, with the
    BatchNorm statistics re-measured before each validation pass; stop early and
    restore the best epoch's weights.

    Default callbacks (:func:`idc_sklearn.callbacks.default_callbacks`), each named
    so ``set_params(callbacks__<name>__<param>=...)`` tunes it and
    ``set_params(callbacks__<name>=None)`` disables it: ``valid_bacc`` (balanced
    accuracy on the validation split), ``lr_scheduler`` (ReduceLROnPlateau halving
    the learning rate after 3 epochs without a gain of 0.005 in ``valid_bacc``),
    ``bn_recalibration`` (:class:`~idc_sklearn.callbacks.BatchNormRecalibration`:
    BatchNorm statistics measured on the training patches with the epoch's
    weights before validating, and at the end without validation),
    ``early_stopping`` (patience 10, threshold 0.005, restores the best epoch's
    weights at the end), plus skorch's ``epoch_timer``, ``train_loss``,
    ``valid_loss`` and ``print_log``.
    """

    def __init__(
        self,
        module,
        *,
        patch_shape=DEFAULT_PATCH_SHAPE,
        normalize="scale",
        class_weight=None,
        resample=None,
        augment=None,
        hed_sigma=0.05,
        tta=False,
        precision="float32",
        inference="fold",
        data_on_device=False,
        checkpoint_dir=None,
        random_state=None,
        device="auto",
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=1e-3,
        batch_size=32,
        max_epochs=100,
        train_split=PatientValidSplit(0.2),  # noqa: B008 - immutable, like skorch's
        iterator_train=PatchDataLoader,
        iterator_valid=PatchDataLoader,
        dataset=PatchDataset,
        **kwargs,
    ):
        self.patch_shape = patch_shape
        self.normalize = normalize
        self.class_weight = class_weight
        self.resample = resample
        self.augment = augment
        self.hed_sigma = hed_sigma
        self.tta = tta
        self.precision = precision
        self.inference = inference
        self.data_on_device = data_on_device
        self.checkpoint_dir = checkpoint_dir
        self.random_state = random_state
        kwargs.setdefault("iterator_train__shuffle", True)
        super().__init__(
            module,
            criterion=criterion,
            optimizer=optimizer,
            lr=lr,
            batch_size=batch_size,
            max_epochs=max_epochs,
            train_split=train_split,
            iterator_train=iterator_train,
            iterator_valid=iterator_valid,
            dataset=dataset,
            device=device,
            **kwargs,
        )

    # -- the parameters --

    # sklearn's parameter validation (InvalidParameterError, a ValueError naming the
    # parameter, the value received and what is accepted), run once per fit and
    # partial_fit. ``patch_shape`` and ``device`` need more than a type or option
    # list and get their own checkers.
    _parameter_constraints: dict = {
        "patch_shape": "no_validation",  # check_patch_shape
        "device": "no_validation",  # check_device
        "normalize": _options(NORMALIZE_MODES),
        "class_weight": [StrOptions({"balanced"}), dict, None],
        "resample": _options(RESAMPLE_MODES),
        "augment": _options(AUGMENT_MODES),
        "hed_sigma": [Interval(Real, 0, 1, closed="left")],
        "tta": ["boolean"],
        "precision": [StrOptions(set(PRECISIONS))],
        "inference": [StrOptions(set(INFERENCE_MODES))],
        "data_on_device": ["boolean"],
        "checkpoint_dir": [str, os.PathLike, None],
        "random_state": ["random_state"],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_epochs": [Interval(Integral, 0, None, closed="left")],
    }
    # The smallest patch side the network accepts (None: not checked).
    _min_patch_size: int | None = None

    # ``groups`` is requested by fit and partial_fit, as by sklearn's group
    # splitters, and routed on to ``train_split`` (get_metadata_routing).
    __metadata_request__fit = {"groups": True}
    __metadata_request__partial_fit = {"groups": True}

    @property
    def device(self):
        """Where skorch puts modules and tensors: ``device_`` once initialised.

        The parameter as given (``"auto"`` stays ``"auto"``) is
        ``get_params()["device"]``, and this before the net is initialised."""
        return getattr(self, "device_", self._device)

    @device.setter
    def device(self, value):
        self._device = value
        if getattr(self, "initialized_", False):
            self.device_ = self._resolved_device()
            self.module_.to(self.device_)
            self.criterion_.to(self.device_)
        elif hasattr(self, "device_"):
            del self.device_

    def _resolved_device(self) -> str:  # "auto": CUDA where present
        return resolve_device(self._device)

    def _check_params(self) -> None:
        """Check the parameters: first in ``fit`` and ``partial_fit``."""
        check_parameters(
            self, self._parameter_constraints, min_patch_size=self._min_patch_size
        )

    def _seeded(self):
        # random_state's seed on torch's generators, restored after.
        device = getattr(self, "device_", None) or self._resolved_device()
        return seeded(self.random_state, device)

    # -- the components, built from the data --

    @property
    def _default_callbacks(self):
        # skorch 1.4's get_params lists the callbacks of this private property, not
        # of the public get_default_callbacks, so the recipe's are defined here.
        return default_callbacks(validation=self.train_split is not None)

    def initialize_callbacks(self):
        super().initialize_callbacks()
        place_training_checkpoint(self)
        # Callbacks can hold device tensors (the learning-rate scheduler holds the
        # optimizer). skorch pickles the attributes listed here through its
        # map_location-aware path, so a model fitted on a GPU loads on a CPU.
        if "callbacks_" not in self.cuda_dependent_attributes_:
            self.cuda_dependent_attributes_ = [
                *self.cuda_dependent_attributes_,
                "callbacks_",
            ]
        return self

    def initialize_criterion(self):
        kwargs = self.get_params_for("criterion")
        if self.class_weight_ is not None:
            if "weight" in kwargs:
                raise ValueError(
                    "class_weight and criterion__weight both set the loss weights; "
                    "use one of them."
                )
            kwargs["weight"] = torch.as_tensor(self.class_weight_, dtype=torch.float32)
        self.criterion_ = self.initialized_instance(self.criterion, kwargs)
        return self

    def _module_kwargs(self) -> dict:
        """Keyword arguments the module class is built with, before module__*."""
        height, width, channels = check_patch_shape(self.patch_shape)
        return {
            "n_classes": len(self.classes_),
            "in_channels": channels,
            "patch_size": (height, width),
        }

    def initialize_module(self):
        kwargs = self.get_params_for("module")
        if not isinstance(self.module, nn.Module):
            own = self._module_kwargs()
            clash = sorted(set(own) & set(kwargs))
            if clash:
                raise ValueError(
                    f"module__{clash[0]} conflicts with the value "
                    f"{type(self).__name__} derives or takes as its own parameter "
                    f"({own[clash[0]]!r}); "
                    "set it there instead."
                )
            kwargs = {**own, **kwargs}
        module = self.initialized_instance(self.module, kwargs)
        if torch.device(self.device_).type == "cuda":
            # Batches arrive channels-last (prepare_patches); on GPUs, convolution
            # weights in the same layout pick the NHWC kernels that tensor cores
            # prefer. On the CPU it did not pay: 8% slower inference at 2 threads,
            # training equal (benchmarks/bench_cpu_efficiency.py, AMD EPYC).
            module = module.to(memory_format=torch.channels_last)
        self.module_ = module
        return self

    def initialize_optimizer(self, *args, **kwargs):
        super().initialize_optimizer(*args, **kwargs)
        self.grad_scaler_ = grad_scaler(self.precision, self.device_)
        return self

    def initialize(self, *, check_params: bool = True):
        """Build module, loss, optimiser and callbacks (skorch's ``initialize``).

        The parameters are checked first unless ``check_params`` is False, which
        ``fit`` and ``partial_fit`` pass, having checked them on entering.
        """
        self._before_initialize(check_params=check_params)
        return super().initialize()

    def _before_initialize(self, *, check_params: bool) -> None:
        """What ``initialize`` does before skorch builds the components."""
        if check_params:
            self._check_params()
        self.device_ = self._resolved_device()
        if not hasattr(self, "classes_inferred_") and self.classes is None:
            # Initialised before any fit (e.g. to load saved parameters): the
            # dataset's two classes.
            self.classes_inferred_ = np.array([0, 1])
            self.class_weight_ = None

    def prepare_batch(self, x: torch.Tensor) -> torch.Tensor:
        """Turn a batch of stored patches into the module's input, on the device.

        Subclasses add crops or augmentation here; ``self.module_.training`` tells
        training from prediction.
        """
        return prepare_patches(x, self.normalize)

    def check_data(self, X, y):
        # NeuralNetClassifier's (skorch 1.4) infers classes_ again, from the labels
        # that fit has encoded; inputs are checked where they enter.
        pass

    # -- one step --

    def train_step(self, batch, **fit_params):
        if self.grad_scaler_ is None:
            return super().train_step(batch, **fit_params)
        # skorch's passes the step to each optimiser as a closure, which the loss
        # scaler's step does not take.
        return scaled_train_step(self, self.grad_scaler_, batch, **fit_params)

    def evaluation_step(self, batch, training=False):
        # skorch's forward_iter (predict_proba) comes here, a validation pass goes
        # through validation_step to infer: a pass without training is a
        # prediction (tta, the compiled network).
        self.check_is_fitted()
        Xi, _ = unpack_data(batch)
        with torch.set_grad_enabled(training):
            self._set_training(training)
            return forward_batch(self, Xi, predicting=not training)

    # -- one epoch --

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        # skorch's (1.4; there is no public hook for it) reads each batch's loss
        # with loss.item(), a wait for the GPU after every step: run_epoch reads
        # them in one transfer at the end of the pass.
        run_epoch(self, iterator, training, prefix, step_fn, **fit_params)

    # -- training: inputs and parameters checked once, on entering --

    def partial_fit(self, X, y, classes=None, groups=None, **fit_params):
        """Train for ``max_epochs`` more epochs, keeping the current weights.

        Parameters as in :meth:`fit`; ``classes`` lists every label when the
        first call's ``y`` does not hold them all.
        """
        self._check_params()
        X = self._check_X(X)
        y = check_labels(y, len(X), owner=self)
        groups = check_groups(groups, len(X))
        if not getattr(self, "initialized_", False):
            self._learn_classes(y, classes)
            self._learn_input_statistics(X)
            with self._seeded():
                self.initialize(check_params=False)
        return self._train(X, y, groups, **fit_params)

    def fit(self, X, y, groups=None, **fit_params):
        """Train on patches ``X`` with labels ``y``.

        Parameters
        ----------
        X : array-like of shape (n, height, width, channels) or (n, h * w * c)
            Patches, uint8 0-255 or float; never copied as a whole.
        y : array-like of shape (n,)
            Labels of any type sklearn classifiers accept, at least two classes.
        groups : array-like of shape (n,), default=None
            Patient of each patch. The internal validation split then holds out
            whole patients.
        **fit_params
            Passed on to skorch.

        Returns
        -------
        self
        """
        self._check_params()
        X = as_real_array(X)
        y = check_labels(y, len(X), owner=self)
        groups = check_groups(groups, len(X))
        fresh = not self.warm_start or not getattr(self, "initialized_", False)
        if fresh:
            # Labels first: a label problem is reported as such whatever X's shape.
            self._learn_classes(y)
        X = self._check_X(X, check_finite=False)
        if fresh:
            self._learn_input_statistics(X)
            with self._seeded():
                self.initialize(check_params=False)
        return self._train(X, y, groups, resume=fresh, **fit_params)

    def _check_X(self, X, *, check_finite: bool = True) -> np.ndarray:
        """Patches of ``patch_shape`` (4-D, or 2-D rows), as a view."""
        X = check_patches(X, self.patch_shape, check_finite=check_finite)
        if self.normalize == "scale":
            warn_if_scaled(X)
        return X

    def _learn_classes(self, y: np.ndarray, classes=None) -> None:
        """``classes_`` (from ``classes``, the parameter, or ``y``) and the loss
        weights, which "balanced" computes from ``y``."""
        self.classes_inferred_, self.class_weight_ = learn_classes(
            y,
            self.classes if classes is None else classes,
            self.class_weight,
            owner=type(self).__name__,
        )

    def _learn_input_statistics(self, X: np.ndarray) -> None:
        """What the network needs of the training patches, learned before it is
        built: nothing here; baselines that subtract a training mean override it."""

    def _train(
        self, X: np.ndarray, y: np.ndarray, groups, *, resume=False, **fit_params
    ):
        """skorch's ``partial_fit`` (its ``fit_loop``) on validated inputs.

        With ``checkpoint_dir`` set, its :class:`TrainingCheckpoint` fingerprints
        the fit; on ``resume`` (a fresh ``fit``) it loads a checkpoint of the same
        parameters and data, and only the epochs that are left are trained.
        """
        y = encode_labels(y, self.classes_)
        if groups is not None:
            fit_params["groups"] = groups
        self.n_features_in_ = int(np.prod(self.patch_shape))
        epochs = fit_params.pop("epochs", self.max_epochs)
        checkpoint = place_training_checkpoint(self)
        if checkpoint is not None:
            epochs = checkpoint.prepare(self, X, y, groups, epochs, resume=resume)
            if epochs == 0:
                return self
        with self._seeded():
            try:
                return super().partial_fit(X, y, epochs=epochs, **fit_params)
            finally:
                if checkpoint is not None:
                    checkpoint.end_fit()

    def get_metadata_routing(self):
        return route_to_split(super().get_metadata_routing(), self.train_split)

    # -- prediction and the forward pass --

    def predict_proba(self, X):
        """Class probabilities, columns in ``classes_`` order.

        Parameters
        ----------
        X : array-like of shape (n, height, width, channels) or (n, h * w * c)

        Returns
        -------
        ndarray of shape (n, n_classes), float32
        """
        self.check_is_fitted()
        if not isinstance(X, Dataset):
            X = self._check_X(X)
        # skorch's, but each batch's probabilities stay on the device and are read
        # in one transfer at the end: one host synchronisation per call, not one
        # per batch, so a GPU is not left idle while the next batch is queued.
        nonlin = self._get_predict_nonlinearity()
        probas = [
            nonlin(yp[0] if isinstance(yp, tuple) else yp)
            for yp in self.forward_iter(X, training=False, device=self.device_)
        ]
        return to_numpy(torch.cat(probas))

    def predict(self, X):
        """Predicted labels, in the type of the labels ``fit`` saw.

        Parameters
        ----------
        X : array-like of shape (n, height, width, channels) or (n, h * w * c)

        Returns
        -------
        ndarray of shape (n,)
        """
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]

    def infer(self, x, **fit_params):
        # skorch calls it for training and validation batches; predictions come
        # through evaluation_step.
        return forward_batch(self, x, predicting=False, fit_params=fit_params)

    # -- the loaders --

    def get_dataset(self, X, y=None):
        if self.data_on_device and not isinstance(X, Dataset):
            # Copied to the device once per fit or predict_proba; each batch is
            # gathered there by index.
            X = torch.from_numpy(np.ascontiguousarray(X)).to(self.device_)
            if y is not None:
                y = torch.as_tensor(y, dtype=torch.int64, device=self.device_)
        return super().get_dataset(X, y)

    def get_iterator(self, dataset, training=False):
        if not training:
            return super().get_iterator(dataset, training=False)
        kwargs = self.get_params_for("iterator_train")
        kwargs.setdefault("batch_size", self.batch_size)
        return training_loader(
            self.iterator_train, dataset, kwargs, resample=self.resample
        )

    def get_params_for(self, prefix):
        params = super().get_params_for(prefix)
        device = getattr(self, "device_", None)
        if (
            prefix in ("iterator_train", "iterator_valid")
            and device is not None
            and torch.device(device).type == "cuda"
            and not self.data_on_device
        ):
            # Pinned host batches copy to the GPU asynchronously.
            params.setdefault("pin_memory", True)
        return params

    # -- parameters and state --

    def get_params(self, deep=True, **kwargs):
        # skorch (1.4) counts every attribute not ending in "_" as a parameter: its
        # private bookkeeping (``_params_to_validate``) and the store of the
        # ``device`` property are left out, and ``device`` is the parameter.
        params = super().get_params(deep=deep, **kwargs)
        params = {k: v for k, v in params.items() if not k.startswith("_")}
        params["device"] = self._device
        return params

    def set_params(self, **params):
        # ``train_split__<param>`` is set on a copy of the split (the default split
        # is one object shared by every estimator); skorch would keep it as a
        # stray attribute.
        split = {
            key.removeprefix("train_split__"): params.pop(key)
            for key in list(params)
            if key.startswith("train_split__")
        }
        super().set_params(**params)
        if split:
            self.train_split = clone(self.train_split).set_params(**split)
        return self

    def __setstate__(self, state):
        # skorch (1.4) unpickles the tensors onto state["device"] (the CPU, with a
        # DeviceWarning, where no GPU is present), writes there the device it used
        # and keeps it as an attribute the property hides; device_ is that device.
        state.setdefault("_device", state.get("device"))  # a pickle of before issue 25
        state["device"] = state.get("device_") or resolve_device(state["_device"])
        super().__setstate__(state)
        self.device_ = str(state["device"])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.target_tags.required = True
        tags.classifier_tags.multi_class = True
        tags.non_deterministic = self.random_state is None
        # A CNN trained for a few epochs on sklearn's 2-feature toy sets does not
        # reach the accuracy those checks demand.
        tags.classifier_tags.poor_score = True
        return tags


class MLBNInceptionClassifier(PatchNetClassifier):
    """The MLBN Inception network (Perdigón Romero et al., ISBI 2019) as an estimator.

    Defaults follow the authors' recipe: their best network (about 33.8 M
    parameters), Adam with learning rate 1e-3, batch size 32, cross-entropy on
    logits, shuffled training batches, early stopping on validation balanced
    accuracy (patience 10, threshold 0.005) with the best epoch's weights
    restored, and the learning rate halved on a 3-epoch plateau.

    Parameters
    ----------
    filters : sequence of int, default=(64, 64, 128, 128, 256, 256, 512, 512)
        Filters per branch of each MLBN module; ``(16, 16, 32, 32, 64, 64, 128,
        128)`` is the authors' smaller sibling model (about 5.7 M parameters).
    head_units : sequence of int, default=(256, 256)
        Widths of the dense layers before the output layer.
    dropout : float, default=0.4
        Dropout in the dense head.
    multilevel_bn : bool, default=True
        ``False`` is the paper's ablation, Inception without multi-level BN.
    init : {"glorot", "he", "torch"}, default="glorot"
        Weight initialisation (biases zero): Glorot-uniform, the Keras default
        of the authors' code; He-normal; or PyTorch's defaults.
    resample : {None, "over", "under"}, default="over"
        As in :class:`PatchNetClassifier`; the default is the paper's recipe,
        random over-sampling of the minority class in the training set.
    **kwargs
        Every parameter of :class:`PatchNetClassifier` (``patch_shape``,
        ``normalize``, ``class_weight``, ``augment``, ``tta``, ``precision``,
        ``random_state``, ``device``) and of
        skorch (``lr``, ``batch_size``, ``max_epochs``, ``optimizer__*``,
        ``callbacks__<name>__*``, ...).

    See Also
    --------
    idc_sklearn.MLBNInception : the torch network.
    idc_sklearn.PatchResampler : class balancing for 4-D patch arrays.

    Examples
    --------
    >>> import numpy as np
    >>> from idc_sklearn import MLBNInceptionClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.integers(0, 256, size=(40, 16, 16, 3), dtype=np.uint8)
    >>> y = np.repeat(["non-IDC", "IDC"], 20)
    >>> clf = MLBNInceptionClassifier(
    ...     filters=(3, 3), head_units=(8,), patch_shape=(16, 16, 3),
    ...     max_epochs=1, train_split=None, verbose=0, random_state=0,
    ... ).fit(X, y)
    >>> clf.classes_.tolist()
    ['IDC', 'non-IDC']
    >>> clf.predict_proba(X).shape
    (40, 2)
    """

    def __init__(
        self,
        filters: Sequence[int] = DEFAULT_FILTERS,
        head_units: Sequence[int] = DEFAULT_HEAD_UNITS,
        dropout: float = 0.4,
        multilevel_bn: bool = True,
        init: str = "glorot",
        *,
        module=MLBNInception,
        resample="over",
        **kwargs,
    ):
        self.filters = filters
        self.head_units = head_units
        self.dropout = dropout
        self.multilevel_bn = multilevel_bn
        self.init = init
        super().__init__(module, resample=resample, **kwargs)

    _min_patch_size = MIN_PATCH_SIZE

    _parameter_constraints: dict = {
        **PatchNetClassifier._parameter_constraints,
        # sequences of positive ints, checked with a precise message by the
        # network when it is built
        "filters": ["array-like"],
        "head_units": ["array-like"],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "multilevel_bn": ["boolean"],
        "init": [StrOptions(set(INIT_MODES))],
    }

    def _module_kwargs(self) -> dict:
        return {
            **super()._module_kwargs(),
            "filters": self.filters,
            "head_units": self.head_units,
            "dropout": self.dropout,
            "multilevel_bn": self.multilevel_bn,
            "init": self.init,
        }

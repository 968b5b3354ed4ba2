"""The training callbacks of the patch CNNs, and the recipe's default set.

:func:`default_callbacks` is the list every :class:`~idc_sklearn.PatchNetClassifier`
trains with, each named so ``set_params(callbacks__<name>__<param>=...)`` tunes it
and ``callbacks__<name>=None`` removes it. :class:`BatchNormRecalibration` is this
library's own: BatchNorm statistics measured on the final weights.
:class:`WeightAveraging` (off by default) validates and keeps an exponential or
stochastic average of the weights.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch
from sklearn.metrics import balanced_accuracy_score
from skorch.callbacks import (
    Callback,
    EarlyStopping,
    EpochScoring,
    EpochTimer,
    LRScheduler,
    PassthroughScoring,
    PrintLog,
)
from torch import nn
from torch.optim.lr_scheduler import ReduceLROnPlateau
from torch.optim.swa_utils import get_ema_multi_avg_fn, get_swa_multi_avg_fn
from torch.utils.data import Subset

from idc_sklearn.batching import dataset_labels

__all__ = [
    "BatchNormRecalibration",
    "WeightAveraging",
    "default_callbacks",
    "recalibrate_batchnorm",
]

# Early stopping and the learning-rate plateau follow the authors' Keras recipe:
# min_delta 0.005 on validation accuracy (here balanced accuracy), patience 10 and 3.
MIN_DELTA = 0.005
# Callbacks that only make sense with a validation split.
VALIDATION_CALLBACKS = ("valid_loss", "valid_bacc", "lr_scheduler", "early_stopping")


def _valid_balanced_accuracy(net, X, y):
    """Balanced accuracy on the internal validation set, on encoded labels."""
    if y is None:
        # skorch passes no labels with use_caching=False; the dataset has them.
        y = dataset_labels(X)
    return balanced_accuracy_score(y, net.predict_proba(X).argmax(axis=1))


def recalibrate_batchnorm(module: nn.Module, batches) -> bool:
    """Re-estimate every BatchNorm layer's running statistics on ``batches``.

    The running mean and variance become plain averages over the batches, taken
    with the current weights, in inference mode for every other layer (dropout
    off), so they describe the activations ``eval()`` will see. This is what
    :func:`torch.optim.swa_utils.update_bn` does, except that update_bn leaves
    dropout on, which shifts the statistics of a BatchNorm that follows it.

    Parameters
    ----------
    module : torch.nn.Module
    batches : iterable of tensors
        Inputs of the module. Batches of one patch are skipped (a BatchNorm
        cannot measure a variance on them).

    Returns
    -------
    bool
        Whether the module has BatchNorm layers (False: nothing was done).

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    >>> recalibrate_batchnorm(net, [torch.ones(4, 2) * 3, torch.ones(4, 2) * 5])
    True
    >>> bool(torch.allclose(net[1].running_mean, net[0](torch.ones(1, 2) * 4)))
    True
    """
    norms = [
        m for m in module.modules() if isinstance(m, nn.modules.batchnorm._NormBase)
    ]
    norms = [m for m in norms if m.track_running_stats]
    if not norms:
        return False
    was_training = module.training
    momenta = [m.momentum for m in norms]
    module.eval()
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average over the batches
        norm.train()
    try:
        with torch.no_grad():
            for x in batches:
                if len(x) > 1:
                    module(x)
    finally:
        for norm, momentum in zip(norms, momenta, strict=True):
            norm.momentum = momentum
        module.train(was_training)
    return True


def _recalibrate_on(net, dataset, max_patches: int | None) -> None:
    """:func:`recalibrate_batchnorm` of ``net.module_`` on (a draw of) ``dataset``."""
    if dataset is None:
        return
    if max_patches is not None and len(dataset) > max_patches:
        # Drawn from torch's generator, which the estimator seeds.
        chosen = torch.randperm(len(dataset))[:max_patches]
        dataset = Subset(dataset, np.sort(chosen.numpy()))
    iterator = net.get_iterator(dataset, training=False)
    # ``net.device`` is the resolved device once the net is initialised.
    batches = (
        net.prepare_batch(x.to(net.device, non_blocking=True)) for x, _ in iterator
    )
    recalibrate_batchnorm(net.module_, batches)
    # Data-parallel estimators average the statistics over their processes.
    reduce = getattr(net, "reduce_batchnorm_statistics", None)
    if reduce is not None:
        reduce()


class BatchNormRecalibration(Callback):
    """Recompute BatchNorm statistics on the training patches before validating.

    During training a BatchNorm layer keeps a running average of batch statistics
    taken while the weights move. Where activations vary little across patches
    (the paper's ablation, Inception without multi-level BN, whose features vary by
    a few parts in 10^5 under PyTorch's default initialisation), that lagging
    average does not describe the final weights at all, and in ``eval()`` mode
    every patch gets the same class. This callback measures the statistics afresh
    with the epoch's weights, in one inference pass over the training patches
    (:func:`recalibrate_batchnorm`), just before each validation pass, so the
    scores early stopping and the learning-rate schedule see, and the weights they
    keep, are those of the network as it will predict. Without a validation split
    it runs once, at the end of training. A network without BatchNorm is left
    untouched at no cost.

    The pass is an inference pass over the training patches
    (``benchmarks/bench_bn_recalibration.py``: epochs 24% longer with the small
    preset on 640 training patches, 1 CPU thread, AMD EPYC; 38% on a loaded
    machine). ``max_patches`` bounds it on large training sets: 4,096 patches
    are about 2% of the paper's training set, so the pass then costs under 1%
    of an epoch.

    Parameters
    ----------
    max_patches : int or None, default=4096
        Measure on at most this many training patches (a random subset drawn
        each time, seeded by the estimator's ``random_state``); None uses all.

    Examples
    --------
    >>> from idc_sklearn import MLBNInceptionClassifier
    >>> clf = MLBNInceptionClassifier(callbacks__bn_recalibration__max_patches=2048)
    >>> clf = MLBNInceptionClassifier(callbacks__bn_recalibration=None)  # off
    """

    def __init__(self, max_patches: int | None = 4096) -> None:
        self.max_patches = max_patches

    def initialize(self):
        if self.max_patches is not None and not (
            isinstance(self.max_patches, numbers.Integral) and self.max_patches >= 2
        ):
            raise ValueError(
                "callbacks__bn_recalibration__max_patches must be None or an int "
                f">= 2; got {self.max_patches!r}."
            )
        self._dataset = None
        self._done = True
        return self

    def on_epoch_begin(self, net, dataset_train=None, **kwargs):
        self._dataset = dataset_train
        self._done = False

    def on_batch_begin(self, net, batch=None, training=None, **kwargs):
        if not training and not self._done:
            self.recalibrate(net)

    def on_train_end(self, net, **kwargs):
        # Without a validation pass in the last epoch, the final weights were never
        # measured; with one, they were (and early stopping restores measured ones).
        if self._dataset is not None and not self._done:
            self.recalibrate(net)
        self._dataset = None

    def recalibrate(self, net) -> None:
        """Measure the statistics on the current epoch's training patches."""
        self._done = True
        _recalibrate_on(net, self._dataset, self.max_patches)

    def __getstate__(self):
        # Never pickle the training data with a fitted model.
        state = self.__dict__.copy()
        state["_dataset"] = None
        return state


WEIGHT_AVERAGING_METHODS = ("ema", "swa")


class WeightAveraging(Callback):
    """Validate, early-stop on and keep an average of the weights along training.

    Two averages of :mod:`torch.optim.swa_utils`:

    - ``"ema"``: an exponential moving average updated after every optimiser step
      (:func:`~torch.optim.swa_utils.get_ema_multi_avg_fn`). Its decay warms up as
      ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates, so the random
      initial weights do not linger in a short fit.
    - ``"swa"``: stochastic weight averaging, the plain mean of the weights at
      the end of each training epoch from ``start_epoch`` on
      (:func:`~torch.optim.swa_utils.get_swa_multi_avg_fn`).

    Before each validation pass the averaged weights take the network's place, and
    the training weights are set aside; BatchNorm statistics are then measured on
    the averaged weights (by ``bn_recalibration``, or by this callback where that
    one is off or ran first). So the validation scores, the learning-rate plateau,
    early stopping and the weights it restores all see the average, and the fitted
    network is the average. The next epoch trains on from the set-aside weights.
    Its state is kept in checkpoints (``checkpoint_dir``), so an interrupted fit
    resumes exactly. Without a validation split the average replaces the weights
    once, at the end.

    It is one of the estimators' named default callbacks, off (``None``) unless
    set, so it takes its place before ``bn_recalibration``.

    Parameters
    ----------
    method : {"ema", "swa"}, default="ema"
    decay : float in (0, 1), default=0.999
        The EMA's decay per optimiser step (``method="ema"``).
    start_epoch : int >= 1, default=1
        The first epoch whose weights enter the average.

    Examples
    --------
    >>> from idc_sklearn import MLBNInceptionClassifier, WeightAveraging
    >>> clf = MLBNInceptionClassifier(callbacks__weight_averaging=WeightAveraging())
    >>> clf = clf.set_params(callbacks__weight_averaging__decay=0.99)
    """

    def __init__(
        self, method: str = "ema", decay: float = 0.999, start_epoch: int = 1
    ) -> None:
        self.method = method
        self.decay = decay
        self.start_epoch = start_epoch

    def initialize(self):
        name = "callbacks__weight_averaging"
        if self.method not in WEIGHT_AVERAGING_METHODS:
            raise ValueError(
                f"{name}__method must be one of {WEIGHT_AVERAGING_METHODS}; got "
                f"{self.method!r}."
            )
        if not (
            isinstance(self.decay, numbers.Real)
            and not isinstance(self.decay, bool)
            and 0.0 < self.decay < 1.0
        ):
            raise ValueError(
                f"{name}__decay must be a float in (0, 1); got {self.decay!r}."
            )
        if not (
            isinstance(self.start_epoch, numbers.Integral)
            and not isinstance(self.start_epoch, bool)
            and self.start_epoch >= 1
        ):
            raise ValueError(
                f"{name}__start_epoch must be an int >= 1; got {self.start_epoch!r}."
            )
        # Names ending in "_" are what a training checkpoint keeps.
        self.averaged_ = None  # parameter name -> averaged tensor
        self.n_averaged_ = 0
        self.set_aside_ = None  # the training weights while the average is in place
        self._dataset = None
        self._swapped = self._epoch_averaged = False
        return self

    def on_epoch_begin(self, net, dataset_train=None, **kwargs):
        self._dataset = dataset_train
        self._swapped = self._epoch_averaged = False
        if self.set_aside_ is not None:
            self._load(net, self.set_aside_)
            self.set_aside_ = None

    def on_batch_end(self, net, training=None, **kwargs):
        if training and self.method == "ema" and self._averaging(net):
            n = self.n_averaged_
            self._update(net, get_ema_multi_avg_fn(min(self.decay, (1 + n) / (10 + n))))

    def on_batch_begin(self, net, training=None, **kwargs):
        if not training and not self._swapped:
            self._swapped = True
            self._average_epoch(net)
            self._place_average(net)

    def on_epoch_end(self, net, **kwargs):
        self._average_epoch(net)  # an epoch without a validation pass

    def on_train_end(self, net, **kwargs):
        # Without a validation pass in the last epoch, the average is not in place.
        if not self._swapped and self._dataset is not None:
            self._place_average(net)
        self.set_aside_ = None
        self._dataset = None

    def _averaging(self, net) -> bool:
        return len(net.history) >= self.start_epoch

    def _average_epoch(self, net) -> None:
        """SWA's one update per epoch, with the epoch's final training weights."""
        if self.method == "swa" and not self._epoch_averaged and self._averaging(net):
            self._update(net, get_swa_multi_avg_fn())
        self._epoch_averaged = True

    def _update(self, net, average) -> None:
        params = dict(net.module_.named_parameters())
        if self.averaged_ is None or self.n_averaged_ == 0:
            self.averaged_ = {k: p.detach().clone() for k, p in params.items()}
        else:
            average(
                list(self.averaged_.values()),
                [params[k].detach() for k in self.averaged_],
                torch.tensor(self.n_averaged_),
            )
        self.n_averaged_ += 1

    def _place_average(self, net) -> None:
        """The average in the network's place, its BatchNorm statistics measured."""
        if self.averaged_ is None:
            return  # before start_epoch: the weights are validated as they are
        self.set_aside_ = {
            k: p.detach().clone() for k, p in net.module_.named_parameters()
        }
        self._load(net, self.averaged_)
        recalibration = dict(net.callbacks_).get("bn_recalibration")
        if recalibration is None or recalibration._done:
            # No later callback measures the statistics of the averaged weights.
            max_patches = getattr(recalibration, "max_patches", 4096)
            _recalibrate_on(net, self._dataset, max_patches)

    @staticmethod
    def _load(net, weights: dict) -> None:
        with torch.no_grad():
            for k, p in net.module_.named_parameters():
                p.copy_(weights[k])

    def __getstate__(self):
        # Never pickle the training data with a fitted model.
        state = self.__dict__.copy()
        state["_dataset"] = None
        return state


def default_callbacks(*, validation: bool = True) -> list[tuple[str, Callback]]:
    """The named callbacks of the paper's recipe, freshly built.

    ``epoch_timer``, ``train_loss``, ``valid_loss``, ``valid_bacc`` (balanced
    accuracy on the validation split), ``lr_scheduler`` (ReduceLROnPlateau halving
    the learning rate after 3 epochs without a gain of 0.005 in ``valid_bacc``),
    ``weight_averaging`` (``None``: off; set it to a :class:`WeightAveraging`),
    ``bn_recalibration`` (:class:`BatchNormRecalibration`), ``early_stopping``
    (patience 10, threshold 0.005, the best epoch's weights restored at the end)
    and ``print_log``.

    Parameters
    ----------
    validation : bool, default=True
        False leaves out the callbacks that need a validation split.
    """
    callbacks = [
        ("epoch_timer", EpochTimer()),
        ("train_loss", PassthroughScoring(name="train_loss", on_train=True)),
        ("valid_loss", PassthroughScoring(name="valid_loss")),
        (
            "valid_bacc",
            EpochScoring(
                _valid_balanced_accuracy, name="valid_bacc", lower_is_better=False
            ),
        ),
        (
            "lr_scheduler",
            LRScheduler(
                policy=ReduceLROnPlateau,
                monitor="valid_bacc",
                mode="max",
                factor=0.5,
                patience=3,
                threshold=MIN_DELTA,
                threshold_mode="abs",
            ),
        ),
        # Off unless set; before bn_recalibration, which then measures the average.
        ("weight_averaging", None),
        ("bn_recalibration", BatchNormRecalibration()),
        (
            "early_stopping",
            EarlyStopping(
                monitor="valid_bacc",
                lower_is_better=False,
                patience=10,
                threshold=MIN_DELTA,
                threshold_mode="abs",
                load_best=True,
            ),
        ),
        ("print_log", PrintLog()),
    ]
    if not validation:
        callbacks = [cb for cb in callbacks if cb[0] not in VALIDATION_CALLBACKS]
    return callbacks

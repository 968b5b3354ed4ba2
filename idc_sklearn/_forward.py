"""The forward pass of the patch estimators: what their ``infer`` runs on a batch.

:func:`forward_batch` is what the estimator's ``infer`` and ``evaluation_step``
(:class:`~idc_sklearn.PatchNetClassifier`) run: a batch of stored patches moved to
the device, augmented when training (:func:`augment_stored`), converted by the
estimator's ``prepare_batch`` and run under its ``precision``; a prediction with
test-time augmentation averages the dihedral views of each patch
(:func:`mean_of_views`).

A trained network in evaluation mode computes each BatchNorm as a fixed affine map
of its input, so one that directly follows a convolution or a linear layer can be
folded into that layer's weights (:func:`torch.nn.utils.fusion.fuse_conv_bn_eval`):
one pass over the activations less per BatchNorm, the same outputs to float
rounding. :class:`InferenceNetwork` keeps the folded copy (and, on request, a
:func:`torch.compile`-d one with frozen weights) for as long as the trained
network's weights stay as they were, and builds it again once they change; forward
passes without gradients run it (``inference=``).
"""

from __future__ import annotations

import copy
import threading
import weakref

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

from idc_sklearn.augmentation import augment_batch, dihedral_views
from idc_sklearn.precision import autocast

__all__ = [
    "INFERENCE_MODES",
    "InferenceNetwork",
    "augment_stored",
    "evaluation_network",
    "fold_batchnorm",
    "forward_batch",
    "inference_network",
    "mean_of_views",
]

INFERENCE_MODES = ("fold", "eager", "compile")

_FOLDABLE = (
    (nn.Conv2d, nn.BatchNorm2d, fuse_conv_bn_eval),
    (nn.Linear, nn.BatchNorm1d, fuse_linear_bn_eval),
)

# One network is built at a time: two threads predicting at once must not compile
# the same network twice.
_BUILD_LOCK = threading.Lock()
# The evaluation forms of each trained network, by mode; an entry goes with its
# network, and nothing of it is on the estimator (so nothing to leave out of a
# pickle).
_NETWORKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _fuser(layer: nn.Module, norm: nn.Module):
    for layer_type, norm_type, fuse in _FOLDABLE:
        if (
            type(layer) is layer_type
            and type(norm) is norm_type
            and norm.running_mean is not None
            and norm.affine
        ):
            return fuse
    return None


def _foldable_pairs(module: nn.Module) -> list[tuple[nn.Sequential, int, object]]:
    """(sequential, index of the layer, its fusing function) of each foldable pair."""
    return [
        (seq, i, fuse)
        for seq in module.modules()
        if isinstance(seq, nn.Sequential)
        for i in range(len(seq) - 1)
        if (fuse := _fuser(seq[i], seq[i + 1])) is not None
    ]


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """An evaluation-mode copy of ``module`` with its BatchNorms folded.

    Each BatchNorm (with running statistics) that directly follows a convolution
    or a linear layer inside an :class:`torch.nn.Sequential` is folded into that
    layer and replaced by :class:`torch.nn.Identity`. ``module`` itself is left
    untouched; where nothing can be folded it is returned as it is.

    Parameters
    ----------
    module : torch.nn.Module

    Returns
    -------
    torch.nn.Module
        The folded copy, in evaluation mode, without gradients.

    Examples
    --------
    >>> import torch
    >>> from idc_sklearn import MLBNInception
    >>> net = MLBNInception(filters=(3, 3), head_units=(4,), patch_size=16).eval()
    >>> folded = fold_batchnorm(net)
    >>> sum(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    0
    >>> x = torch.rand(2, 3, 16, 16)
    >>> torch.allclose(net(x), folded(x), atol=1e-5)
    True
    """
    if isinstance(module, nn.parallel.DistributedDataParallel):
        module = module.module
    if not _foldable_pairs(module):
        return module
    folded = copy.deepcopy(module).eval().requires_grad_(False)
    for seq, i, fuse in _foldable_pairs(folded):
        seq[i] = fuse(seq[i], seq[i + 1])
        seq[i + 1] = nn.Identity()
    return folded


def _weights_key(module: nn.Module) -> tuple:
    # Every in-place change of a tensor (an optimiser step, load_state_dict, the
    # BatchNorm recalibration) bumps its version; moving it elsewhere changes its
    # storage.
    return (id(module),) + tuple(
        (t._version, t.data_ptr(), t.dtype)
        for t in (*module.parameters(), *module.buffers())
    )


class InferenceNetwork:
    """The form of a trained network that evaluation-mode forward passes use.

    Parameters
    ----------
    mode : {"fold", "eager", "compile"}
        ``"eager"``: the trained network itself. ``"fold"``: :func:`fold_batchnorm`
        of it. ``"compile"``: the folded network compiled by :func:`torch.compile`
        with frozen weights (Inductor's ``freezing``), for batches of one fixed
        size (smaller batches are padded to it, so nothing recompiles).
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self._key = None
        self._network = None
        self._batch_size = None

    def __call__(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """The forward pass of ``module``'s evaluation form on ``x``."""
        if self.mode == "eager":
            return module(x)
        network, batch_size = self._get(module, len(x))
        if batch_size is None or len(x) == batch_size:
            return network(x)
        # Without batch statistics, patches do not see each other: zero padding
        # changes nothing but the cost of the last batch.
        padding = x.new_zeros((batch_size - len(x), *x.shape[1:]))
        return network(torch.cat([x, padding]))[: len(x)]

    def _get(self, module: nn.Module, batch_size: int):
        key = _weights_key(module)
        with _BUILD_LOCK:
            size = self._batch_size
            if self._key != key or (size is not None and batch_size > size):
                network, size = fold_batchnorm(module), None
                if self.mode == "compile":
                    if network is module:  # a copy: the cache must not hold module
                        network = copy.deepcopy(module).eval().requires_grad_(False)
                    network = torch.compile(
                        network, dynamic=False, options={"freezing": True}
                    )
                    size = batch_size
                # Nothing to fold: the network itself, which is not kept here (the
                # cache must not hold on to the network it is kept for).
                kept = None if network is module else network
                self._network, self._key, self._batch_size = kept, key, size
            network = module if self._network is None else self._network
            return network, size


def inference_network(module: nn.Module, mode: str) -> InferenceNetwork:
    """The :class:`InferenceNetwork` of ``mode`` kept for ``module``."""
    with _BUILD_LOCK:
        forms = _NETWORKS.setdefault(module, {})
        if mode not in forms:
            forms[mode] = InferenceNetwork(mode)
        return forms[mode]


def forward_batch(
    net, x: torch.Tensor, *, predicting: bool, fit_params: dict | None = None
) -> torch.Tensor:
    """The logits (float32) of ``net``'s module on a batch of stored patches.

    The estimator's ``infer`` (training and validation batches) and
    ``evaluation_step`` (``predicting`` when not training) run it: the batch goes
    to ``net.device_``, is augmented when training (``augment``, ``hed_sigma``),
    converted by ``net.prepare_batch`` and run under ``precision``; a prediction
    with ``tta`` is the mean of the dihedral views' probabilities, as its
    logarithm.
    """
    fit_params = dict(fit_params or {})
    # ``groups`` reaches here as a fit parameter meant for the train split.
    fit_params.pop("groups", None)
    x = x.to(net.device_, non_blocking=True)
    if net.augment is not None and net.module_.training:
        x = augment_stored(x, net.augment, net.hed_sigma)
    if predicting and net.tta:
        return mean_of_views(lambda view: _logits(net, view, predicting, fit_params), x)
    return _logits(net, x, predicting, fit_params)


def _logits(net, x: torch.Tensor, predicting: bool, fit_params: dict) -> torch.Tensor:
    """The module's logits of stored-layout patches ``x`` on the device."""
    x = net.prepare_batch(x)
    module = net.module_
    with autocast(net.precision, net.device_):
        if module.training or torch.is_grad_enabled() or fit_params or net.compile:
            logits = module(x, **fit_params)
        else:
            network = evaluation_network(module, net.inference, predicting=predicting)
            logits = network(module, x)
    # The loss, softmax and scores work in float32 whatever the precision.
    return logits.float()


def augment_stored(x: torch.Tensor, augment: str, hed_sigma: float) -> torch.Tensor:
    """``augment`` applied to a batch of stored-layout patches ``(n, H, W, C)``.

    Augmentation works on float ``(n, C, H, W)`` patches on the 0-255 scale; the
    channels-last view it returns goes on to ``prepare_batch`` like stored patches.
    """
    views = augment_batch(x.permute(0, 3, 1, 2).float(), augment, hed_sigma=hed_sigma)
    return views.permute(0, 2, 3, 1)


def mean_of_views(forward, x: torch.Tensor) -> torch.Tensor:
    """The logarithm of the mean probability of ``forward`` over ``x``'s dihedral
    views (height and width are dims 1 and 2), taken on the device.

    The softmax of ``predict_proba`` gives the mean back.
    """
    views = [forward(view).softmax(dim=1) for view in dihedral_views(x, dims=(1, 2))]
    return torch.stack(views).mean(dim=0).log()


def evaluation_network(module: nn.Module, inference: str, *, predicting: bool):
    """The :class:`InferenceNetwork` that a pass without gradients runs.

    ``"compile"`` is for predictions only: validation passes during ``fit`` run
    the folded network, so a fit never waits for a compile.
    """
    mode = "fold" if inference == "compile" and not predicting else inference
    return inference_network(module, mode)

"""Batches of patches for torch: a dataset that never holds a float copy of X.

``PatchDataset`` wraps the caller's 4-D patch array (uint8, float, or a read-only
memory map) and hands the data loader whole batches by fancy indexing; conversion to
float and normalisation happen per batch on the training device
(:func:`prepare_patches`), so the full dataset stays in its stored dtype.
:func:`training_loader` makes the estimators' training loader (per-epoch class
balance); :func:`run_epoch` is their pass over a loader, batch losses read once
per epoch.
"""

from __future__ import annotations

import numpy as np
import torch
from skorch.dataset import get_len
from torch.utils.data import DataLoader, Dataset, Subset

from idc_sklearn.resampling import EpochResampler

__all__ = [
    "NORMALIZE_MODES",
    "PatchDataLoader",
    "PatchDataset",
    "dataset_labels",
    "prepare_patches",
    "run_epoch",
    "training_loader",
]

NORMALIZE_MODES = ("scale", "zscore", None)
_ZSCORE_EPS = 1e-6


class PatchDataset(Dataset):
    """Patches ``(n, height, width, channels)`` and optional integer labels.

    Indexing with a list of indices (``__getitems__``, used by torch's data loader
    for a whole batch at once) returns one ``(X, y)`` pair of stacked tensors, in the
    array's own dtype. ``y`` is a zero tensor where no labels were given, so skorch's
    prediction loop sees the same batch structure as training.
    """

    def __init__(
        self, X: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor | None = None
    ) -> None:
        self.X = X
        self.y = y

    def __len__(self) -> int:
        return len(self.X)

    def _batch(self, index) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(self.X, torch.Tensor):
            # Patches resident on the training device (``data_on_device=True``):
            # the batch is gathered there; only the indices cross over.
            index = torch.as_tensor(index, device=self.X.device)
            patches = self.X[index]
            labels = (
                torch.zeros(len(index), dtype=torch.int64, device=self.X.device)
                if self.y is None
                else self.y[index]
            )
            return patches, labels
        patches = self.X[index]
        if not patches.dtype.isnative or patches.dtype == np.longdouble:
            # Big-endian data, and long doubles, which torch has no type for: the
            # batch (never the whole array) in the native float64 or same-size type.
            native = np.float64 if patches.dtype == np.longdouble else None
            patches = patches.astype(native or patches.dtype.newbyteorder("="))
        patches = torch.from_numpy(np.ascontiguousarray(patches))
        if self.y is None:
            labels = torch.zeros(patches.shape[0], dtype=torch.int64)
        else:
            labels = torch.from_numpy(np.asarray(self.y[index], dtype=np.int64))
        return patches, labels

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        patches, labels = self._batch([i])
        return patches[0], labels[0]

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        # Sorted indices read a memory-mapped array front to back; the order inside
        # the batch is restored so shuffling keeps its meaning.
        indices = np.asarray(indices)
        order = np.argsort(indices, kind="stable")
        patches, labels = self._batch(indices[order])
        inverse = torch.from_numpy(np.argsort(order, kind="stable"))
        return patches[inverse], labels[inverse]


def _identity(batch):
    return batch


def _root(dataset, index: np.ndarray | None = None):
    """The dataset under any (nested) Subsets, and the indices the Subsets pick."""
    while isinstance(dataset, Subset):
        picked = np.asarray(dataset.indices)
        index = picked if index is None else picked[index]
        dataset = dataset.dataset
    return dataset, index


def _yields_batches(dataset) -> bool:
    return isinstance(_root(dataset)[0], PatchDataset)


def dataset_labels(dataset) -> np.ndarray:
    """The encoded labels of a dataset with a ``y`` or of a (nested) Subset of one."""
    root, index = _root(dataset)
    y = getattr(root, "y", None)
    if y is None:
        raise ValueError(
            f"the dataset {type(root).__name__} holds no labels (its y is None)."
        )
    if isinstance(y, torch.Tensor):
        y = y.cpu().numpy()
    y = np.asarray(y)
    return y if index is None else y[index]


class PatchDataLoader(DataLoader):
    """A :class:`~torch.utils.data.DataLoader` that takes ready batches.

    With a :class:`PatchDataset` (or a ``Subset`` of one), each batch comes out of
    ``__getitems__`` already stacked, so no per-sample collation runs; other
    datasets collate as usual.
    """

    def __init__(self, dataset, *args, collate_fn=None, **kwargs) -> None:
        if collate_fn is None and _yields_batches(dataset):
            collate_fn = _identity
        super().__init__(dataset, *args, collate_fn=collate_fn, **kwargs)


def prepare_patches(
    x: torch.Tensor, normalize: str | None = "scale", dtype=torch.float32
) -> torch.Tensor:
    """Turn a batch of channels-last patches into normalised ``(n, C, H, W)`` floats.

    The permuted tensor keeps the channels-last memory layout, which convolution
    kernels on both CPU and GPU prefer; no copy to channels-first is made.

    Parameters
    ----------
    x : tensor of shape (n, height, width, channels)
        Patches in any real dtype; uint8 and float are read on the 0-255 scale.
    normalize : {"scale", "zscore", None}, default="scale"
        ``"scale"`` divides by 255; ``"zscore"`` standardises each patch's channels
        to zero mean and unit variance (the authors' option); ``None`` keeps 0-255.
    dtype : torch.dtype, default=torch.float32

    Returns
    -------
    tensor of shape (n, channels, height, width)
    """
    x = x.permute(0, 3, 1, 2).to(dtype)
    if normalize == "scale":
        return x / 255.0
    if normalize == "zscore":
        mean = x.mean(dim=(2, 3), keepdim=True)
        std = x.std(dim=(2, 3), keepdim=True, unbiased=False)
        return (x - mean) / (std + _ZSCORE_EPS)
    if normalize is None:
        return x
    raise ValueError(f"normalize must be one of {NORMALIZE_MODES}; got {normalize!r}.")


def training_loader(loader, dataset, kwargs: dict, *, resample: str | None):
    """The loader of the training part, ``loader(dataset, **kwargs)``.

    ``kwargs`` are the estimator's ``iterator_train__*`` with its ``batch_size``.
    Where ``resample`` is set, a fresh class-balanced order is drawn each epoch
    (:class:`~idc_sklearn.EpochResampler`, by index; the validation part is never
    resampled), seeded from torch's generator, which ``random_state`` seeds. A
    last batch of one patch is dropped: BatchNorm cannot train on it.
    """
    kwargs = dict(kwargs)
    if kwargs["batch_size"] == -1:
        kwargs["batch_size"] = len(dataset)
    n_patches = len(dataset)
    if resample is not None:
        seed = int(torch.randint(np.iinfo(np.int32).max, (1,)).item())
        sampler = EpochResampler(
            dataset_labels(dataset),
            resample,
            shuffle=kwargs.pop("shuffle", True),
            random_state=seed,
        )
        kwargs["sampler"] = sampler
        n_patches = len(sampler)
    # The order the training part is drawn in goes with it, so a training
    # checkpoint can save (and a resumed fit restore) its generator.
    dataset.epoch_sampler = kwargs.get("sampler")
    if n_patches % kwargs["batch_size"] == 1:
        # Dropping it skips one (shuffled, so random) patch per epoch.
        kwargs.setdefault("drop_last", True)
    return loader(dataset, **kwargs)


def run_epoch(net, iterator, training, prefix, step_fn, **fit_params) -> None:
    """One pass of skorch ``net`` over ``iterator``, with one host sync per epoch.

    skorch's ``run_single_epoch`` (1.4) records each batch's loss with
    ``loss.item()``, which waits for the GPU after every step. Here the losses
    stay on the device and are read in one transfer when the pass ends, before
    any ``on_epoch_end`` callback reads them; a callback reading a batch loss
    during the pass gets a 0-d tensor (formatting it, as skorch's progress bar
    does, works). The history is otherwise skorch's.
    """
    if iterator is None:
        return
    key = prefix + "_loss"
    recorded = []
    for batch in iterator:
        net.notify("on_batch_begin", batch=batch, training=training)
        step = step_fn(batch, **fit_params)
        loss = step["loss"].detach()
        net.history.record_batch(key, loss)
        recorded.append((net.history[-1]["batches"][-1], loss))
        size = get_len(batch[0] if isinstance(batch, (tuple, list)) else batch)
        net.history.record_batch(prefix + "_batch_size", size)
        net.notify("on_batch_end", batch=batch, training=training, **step)
    if recorded:
        values = torch.stack([loss for _, loss in recorded]).float().tolist()
        for (entry, _), value in zip(recorded, values, strict=True):
            entry[key] = value
    net.history.record(prefix + "_batch_count", len(recorded))

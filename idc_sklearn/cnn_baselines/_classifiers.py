"""The paper's CNN baselines as estimators on the MLBN classifier's machinery.

Both subclass :class:`~idc_sklearn.PatchNetClassifier`, so input handling, the
"auto" device, class weights, seeding, the patient-held-out validation split and
the named callbacks (early stopping on validation balanced accuracy, learning rate
halved on a plateau) are exactly those of :class:`~idc_sklearn.MLBNInceptionClassifier`.
That training control is ours, not the sources': it makes the comparison fair.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch

from idc_sklearn.batching import prepare_patches
from idc_sklearn.classifier import PatchNetClassifier
from idc_sklearn.cnn_baselines._networks import RGB_TO_YUV, CruzRoaCNN, JanowczykCNN
from idc_sklearn.patches import check_patch_shape

__all__ = ["JanowczykCNNClassifier", "CruzRoaCNNClassifier"]

# Statistics of the training patches are accumulated over slices of this many
# patches, so no float copy of the training set is made.
_CHUNK = 1024


def _random_mask(n: int, device) -> torch.Tensor:
    return (torch.rand(n, device=device) < 0.5).view(n, 1, 1, 1)


class JanowczykCNNClassifier(PatchNetClassifier):
    """Janowczyk & Madabhushi (J Pathol Inform 2016) IDC CNN, as an estimator.

    The "AlexNet" row of the MLBN paper's table. The network is the released Caffe
    definition layer by layer (:class:`JanowczykCNN`; it has no batch
    normalisation, whatever the MLBN table's "with BN" says). The data pipeline
    follows the released scripts: the central ``crop_size`` x ``crop_size`` of each
    patch (rows and columns 8..39 of a 50x50 patch), raw 0-255 values minus the
    training set's mean image, random horizontal mirroring while training, and
    the 0 and 90 degree rotations that doubled the training set, drawn here per
    patch and epoch (``rotate``); the mean image is that of the doubled set.

    Where the sources are silent or do not match (the IDC solver), we chose the
    released solver template: AdaGrad, learning rate 1e-3, weight decay 4e-3, batch
    size 128. Epochs are governed by the shared early stopping, not Caffe's
    600,000 iterations.

    Parameters
    ----------
    crop_size : int, default=32
        Side of the central crop fed to the network.
    rotate : bool, default=True
        Random 0/90 degree rotation of training patches.
    mirror : bool, default=True
        Random horizontal mirroring of training patches.
    **kwargs
        Every parameter of :class:`~idc_sklearn.PatchNetClassifier` and skorch.
        Defaults differ: ``normalize=None``, ``optimizer=torch.optim.Adagrad``,
        ``batch_size=128``, ``optimizer__weight_decay=4e-3``, and
        ``resample="over"``: the released pipeline balanced nothing (no class
        weights, no resampling), but every model of a comparison here trains
        balanced; ``resample=None`` restores the source's choice.

    Attributes
    ----------
    mean_image_ : ndarray of shape (crop_size, crop_size, channels)
        Mean training crop, subtracted from every input.

    Examples
    --------
    >>> import numpy as np
    >>> from idc_sklearn import JanowczykCNNClassifier
    >>> X = np.random.default_rng(0).integers(0, 256, (40, 20, 20, 3), np.uint8)
    >>> y = np.tile([0, 1], 20)
    >>> clf = JanowczykCNNClassifier(
    ...     crop_size=16, patch_shape=(20, 20, 3), max_epochs=1,
    ...     train_split=None, verbose=0, random_state=0,
    ... ).fit(X, y)
    >>> clf.mean_image_.shape
    (16, 16, 3)
    """

    def __init__(
        self,
        crop_size: int = 32,
        rotate: bool = True,
        mirror: bool = True,
        *,
        module=JanowczykCNN,
        normalize=None,
        optimizer=torch.optim.Adagrad,
        batch_size=128,
        resample="over",
        **kwargs,
    ):
        self.crop_size = crop_size
        self.rotate = rotate
        self.mirror = mirror
        kwargs.setdefault("optimizer__weight_decay", 4e-3)
        super().__init__(
            module,
            normalize=normalize,
            optimizer=optimizer,
            batch_size=batch_size,
            resample=resample,
            **kwargs,
        )

    def _crop_window(self) -> tuple[int, int, int]:
        """The crop's side, top and left; ``crop_size`` is checked here."""
        height, width, _ = check_patch_shape(self.patch_shape)
        crop = self.crop_size
        if (
            isinstance(crop, bool)
            or not isinstance(crop, numbers.Integral)
            or not 16 <= crop <= min(height, width)
        ):
            raise ValueError(
                f"crop_size must be an int from 16 to the patch side "
                f"{min(height, width)}; got {crop!r}."
            )
        crop = int(crop)
        # The released MATLAB script's centre: rows 8..39 of a 50-pixel side.
        return crop, max((height - crop - 1) // 2, 0), max((width - crop - 1) // 2, 0)

    def _crop(self, x):
        crop, top, left = self._crop_window()
        return x[:, top : top + crop, left : left + crop]

    def _learn_input_statistics(self, X: np.ndarray) -> None:
        crop, _, _ = self._crop_window()
        total = np.zeros((crop, crop, X.shape[3]))
        for start in range(0, len(X), _CHUNK):
            total += self._crop(X[start : start + _CHUNK]).sum(axis=0, dtype=np.float64)
        mean = total / len(X)
        if self.rotate:
            mean = (mean + np.rot90(mean, axes=(0, 1))) / 2
        self.mean_image_ = mean.astype(np.float32)

    def _module_kwargs(self) -> dict:
        crop, _, _ = self._crop_window()
        return {**super()._module_kwargs(), "patch_size": (crop, crop)}

    def initialize_module(self):
        super().initialize_module()
        mean = getattr(self, "mean_image_", None)
        if mean is not None and hasattr(self.module_, "input_mean"):
            self.module_.input_mean.copy_(torch.from_numpy(mean).permute(2, 0, 1))
        return self

    def prepare_batch(self, x: torch.Tensor) -> torch.Tensor:
        x = self._crop(x)
        if self.module_.training:
            if self.rotate:
                x = torch.where(_random_mask(len(x), x.device), x.rot90(1, (1, 2)), x)
            if self.mirror:
                x = torch.where(_random_mask(len(x), x.device), x.flip(2), x)
        return prepare_patches(x, self.normalize)


class CruzRoaCNNClassifier(PatchNetClassifier):
    """A "Cruz-Roa-style" 3-layer CNN (stand-in for Cruz-Roa et al. 2014).

    The "2D-CNN" row of the MLBN paper's table. Its architecture could not be
    recovered from any source; this estimator trains the stand-in proposed in the
    project's BASELINES notes (:class:`CruzRoaCNN`: two 5x5 convolution + tanh +
    max-pooling stages, a 128-unit tanh layer) on YUV input standardised per
    channel with the training set's statistics, with random flips while training,
    SGD with momentum 0.9, learning rate 1e-2 and batch size 128. Report it as
    "Cruz-Roa-style", never as a reproduction.

    Parameters
    ----------
    flips : bool, default=True
        Random horizontal and vertical flips of training patches.
    **kwargs
        Every parameter of :class:`~idc_sklearn.PatchNetClassifier` and skorch.
        Defaults differ: ``normalize=None`` (the network standardises YUV),
        ``optimizer=torch.optim.SGD``, ``lr=1e-2``, ``batch_size=128``,
        ``optimizer__momentum=0.9``, and ``resample="over"`` (the source's
        class balancing is unknown; over-sampling is the MLBN recipe's).

    Attributes
    ----------
    channel_mean_, channel_std_ : ndarray of shape (3,)
        YUV channel statistics of the training patches (0-255 scale).
    """

    # two 5x5 convolutions and 2x2 poolings leave nothing of smaller patches
    _min_patch_size = 16

    def __init__(
        self,
        flips: bool = True,
        *,
        module=CruzRoaCNN,
        normalize=None,
        optimizer=torch.optim.SGD,
        lr=1e-2,
        batch_size=128,
        resample="over",
        **kwargs,
    ):
        self.flips = flips
        kwargs.setdefault("optimizer__momentum", 0.9)
        super().__init__(
            module,
            normalize=normalize,
            optimizer=optimizer,
            lr=lr,
            batch_size=batch_size,
            resample=resample,
            **kwargs,
        )

    def _learn_input_statistics(self, X: np.ndarray) -> None:
        matrix = np.asarray(RGB_TO_YUV)
        total, total_sq = np.zeros(3), np.zeros(3)
        for start in range(0, len(X), _CHUNK):
            yuv = X[start : start + _CHUNK].reshape(-1, 3) @ matrix.T
            total += yuv.sum(axis=0)
            total_sq += (yuv**2).sum(axis=0)
        count = X.shape[0] * X.shape[1] * X.shape[2]
        mean = total / count
        self.channel_mean_ = mean
        self.channel_std_ = np.sqrt(np.maximum(total_sq / count - mean**2, 1e-12))

    def initialize_module(self):
        super().initialize_module()
        if hasattr(self, "channel_mean_") and hasattr(self.module_, "channel_mean"):
            self.module_.channel_mean.copy_(
                torch.as_tensor(self.channel_mean_, dtype=torch.float32).view(3, 1, 1)
            )
            self.module_.channel_std.copy_(
                torch.as_tensor(self.channel_std_, dtype=torch.float32).view(3, 1, 1)
            )
        return self

    def prepare_batch(self, x: torch.Tensor) -> torch.Tensor:
        if self.module_.training and self.flips:
            x = torch.where(_random_mask(len(x), x.device), x.flip(2), x)
            x = torch.where(_random_mask(len(x), x.device), x.flip(1), x)
        return prepare_patches(x, self.normalize)

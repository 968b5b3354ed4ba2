"""Torch networks of the paper's two CNN baselines (torch only)."""

from __future__ import annotations

import math
import numbers

import torch
from torch import nn

__all__ = ["JanowczykCNN", "CruzRoaCNN", "RGB_TO_YUV"]

# ITU-R BT.601 RGB -> YUV, as in Cruz-Roa et al.'s (unverified) colour space.
RGB_TO_YUV = (
    (0.299, 0.587, 0.114),
    (-0.14713, -0.28886, 0.436),
    (0.615, -0.51499, -0.10001),
)


def _caffe_pool_size(size: int) -> int:
    """Output size of Caffe's 3x3 / stride 2 pooling, which rounds up."""
    return math.ceil((size - 3) / 2) + 1


def _pair(size) -> tuple[int, int]:
    if isinstance(size, numbers.Integral) and not isinstance(size, bool):
        return int(size), int(size)
    return tuple(size)


class JanowczykCNN(nn.Module):
    """Janowczyk & Madabhushi (2016) IDC network, layer by layer from its Caffe file.

    Caffe's "CIFAR10_quick" layout with two outputs (``BASE-alexnet_traing_32w_db``):
    conv5x5(32, pad 2) -> maxpool3x3/2 -> ReLU -> conv5x5(32, pad 2) -> ReLU ->
    avgpool3x3/2 -> conv5x5(64, pad 2) -> ReLU -> avgpool3x3/2 -> FC(64) -> FC(2).
    No batch normalisation, dropout or activation between the two dense layers, as
    in the source. Pools round up (``ceil_mode``), so 32x32 input gives 32-16-8-4
    and 1,024 features (145,058 parameters). Weights are Gaussian (std 1e-4, 0.01,
    0.01, 0.1, 0.1 layer by layer) with zero biases, as in the Caffe file.

    The network subtracts ``input_mean``, a buffer the estimator fills with the
    training set's mean image (Caffe's mean file), before the first layer.

    Parameters
    ----------
    n_classes : int, default=2
    in_channels : int, default=3
    patch_size : int or (int, int), default=32
        Size of the (cropped) input.
    """

    def __init__(self, n_classes: int = 2, in_channels: int = 3, patch_size=32) -> None:
        super().__init__()
        height, width = _pair(patch_size)
        self.register_buffer("input_mean", torch.zeros(in_channels, height, width))
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 5, padding=2),
            nn.MaxPool2d(3, stride=2, ceil_mode=True),
            nn.ReLU(inplace=True),
            nn.Conv2d(32, 32, 5, padding=2),
            nn.ReLU(inplace=True),
            nn.AvgPool2d(3, stride=2, ceil_mode=True),
            nn.Conv2d(32, 64, 5, padding=2),
            nn.ReLU(inplace=True),
            nn.AvgPool2d(3, stride=2, ceil_mode=True),
        )
        for _ in range(3):
            height, width = _caffe_pool_size(height), _caffe_pool_size(width)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(64 * height * width, 64), nn.Linear(64, n_classes)
        )
        stds = {0: 1e-4, 3: 0.01, 6: 0.01}
        layers = [(self.features[i], std) for i, std in stds.items()]
        layers += [(self.classifier[1], 0.1), (self.classifier[2], 0.1)]
        for layer, std in layers:
            nn.init.normal_(layer.weight, std=std)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x - self.input_mean))


class CruzRoaCNN(nn.Module):
    """A "Cruz-Roa-style" 3-layer CNN: a stand-in, not a reproduction.

    The architecture of Cruz-Roa et al. (SPIE Medical Imaging 2014) could not be
    recovered (see the project's BASELINES notes). This is the stand-in proposed
    there: conv5x5(16) -> tanh -> maxpool2 -> conv5x5(32) -> tanh -> maxpool2 ->
    FC(128) -> tanh -> FC(n_classes), on YUV input standardised per channel. Where
    the proposal is silent we chose: unpadded ("valid") convolutions, PyTorch's
    default initialisation.

    The network converts RGB (0-255) to YUV and standardises each channel with the
    buffers ``channel_mean`` / ``channel_std``, which the estimator fills with the
    training set's YUV statistics.

    Parameters
    ----------
    n_classes : int, default=2
    in_channels : int, default=3
        Must be 3 (RGB).
    patch_size : int or (int, int), default=50
    """

    def __init__(self, n_classes: int = 2, in_channels: int = 3, patch_size=50) -> None:
        super().__init__()
        if in_channels != 3:
            raise ValueError(
                f"in_channels must be 3 (RGB, converted to YUV); got {in_channels!r}."
            )
        height, width = _pair(patch_size)
        self.register_buffer("rgb_to_yuv", torch.tensor(RGB_TO_YUV))
        self.register_buffer("channel_mean", torch.zeros(3, 1, 1))
        self.register_buffer("channel_std", torch.ones(3, 1, 1))
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 5),
            nn.Tanh(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 5),
            nn.Tanh(),
            nn.MaxPool2d(2),
        )
        for _ in range(2):
            height, width = (height - 4) // 2, (width - 4) // 2
        if min(height, width) < 1:
            raise ValueError(
                f"patch_size must be at least 16 for two 5x5 convolutions and "
                f"poolings; got {patch_size!r}."
            )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(32 * height * width, 128),
            nn.Tanh(),
            nn.Linear(128, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        yuv = torch.einsum("oc,nchw->nohw", self.rgb_to_yuv, x)
        return self.classifier(
            self.features((yuv - self.channel_mean) / self.channel_std)
        )

"""The MLBN Inception network of Perdigón Romero, Tang and Kadoury (ISBI 2019).

Torch only: this module imports neither sklearn, pandas nor matplotlib, so the network
can be used, exported or benchmarked as plain PyTorch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from idc_sklearn._presets import DEFAULT_FILTERS, DEFAULT_HEAD_UNITS, PRESETS

__all__ = ["MLBNBlock", "MLBNInception", "INIT_MODES", "PRESETS"]

MIN_PATCH_SIZE = 16
INIT_MODES = ("glorot", "he", "torch")


def initialize_weights(module: nn.Module, init: str) -> None:
    """Initialise every convolution and linear layer of ``module`` in place.

    ``"glorot"``: Glorot-uniform weights and zero biases, the Keras default the
    authors trained with. ``"he"``: He-normal (fan-in, ReLU gain) and zero biases.
    ``"torch"``: PyTorch's own defaults, left as built. Without multi-level BN the
    choice decides how much the features vary across patches: PyTorch's default
    shrinks the signal through each unnormalised layer (a feature spread of about
    3e-5 after the eight modules, against 3e-3 with Glorot and 0.14 with He).
    """
    if init not in INIT_MODES:
        raise ValueError(f"init must be one of {INIT_MODES}; got {init!r}.")
    if init == "torch":
        return
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            if init == "glorot":
                nn.init.xavier_uniform_(layer.weight)
            else:
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


def _conv_unit(
    in_channels: int, out_channels: int, kernel_size: int, batch_norm: bool
) -> nn.Sequential:
    """Convolution (stride 1, "same" padding, bias), optional BatchNorm, ReLU."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
    ]
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_channels))
    layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def _check_positive_ints(value, name: str, *, allow_empty: bool = False) -> tuple:
    if isinstance(value, (int, str)) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be a sequence of positive ints; got {value!r}.")
    values = tuple(value)
    if (not values and not allow_empty) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values
    ):
        raise ValueError(
            f"{name} must be a {'possibly empty ' if allow_empty else 'non-empty '}"
            f"sequence of positive ints; got {value!r}."
        )
    return values


class MLBNBlock(nn.Module):
    """Inception module with multi-level batch normalization.

    Four parallel branches on the same input, concatenated along channels; with
    ``fpb = filters_per_branch``, ``a = fpb // 3`` and ``b = fpb // 2``:

    1. conv1x1(a) -> BN -> ReLU -> conv5x5(fpb) -> BN -> ReLU
    2. conv1x1(b) -> BN -> ReLU -> conv3x3(fpb) -> BN -> ReLU
    3. conv1x1(fpb) -> BN -> ReLU
    4. maxpool3x3(stride 1, same) -> conv1x1(fpb) -> BN -> ReLU

    Parameters
    ----------
    in_channels : int
        Channels of the input.
    filters_per_branch : int
        Output channels of each branch; the block outputs ``4 * filters_per_branch``.
        At least 3, so that the 5x5 branch's 1x1 reduction keeps a channel.
    multilevel_bn : bool, default=True
        BatchNorm after every convolution, the 1x1 reductions included. ``False`` is
        the paper's ablation ("Inception without multi-level BN"): the same module
        with no BatchNorm inside the branches.

    Examples
    --------
    >>> import torch
    >>> block = MLBNBlock(3, 8)
    >>> block(torch.zeros(2, 3, 16, 16)).shape
    torch.Size([2, 32, 16, 16])
    """

    def __init__(
        self, in_channels: int, filters_per_branch: int, multilevel_bn: bool = True
    ) -> None:
        super().__init__()
        if not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(f"in_channels must be an int >= 1; got {in_channels!r}.")
        if not isinstance(filters_per_branch, int) or filters_per_branch < 3:
            raise ValueError(
                "filters_per_branch must be an int >= 3 (the 5x5 branch reduces to "
                f"filters_per_branch // 3 channels); got {filters_per_branch!r}."
            )
        fpb, bn = filters_per_branch, bool(multilevel_bn)
        self.in_channels = in_channels
        self.filters_per_branch = fpb
        self.multilevel_bn = bn
        self.branch5x5 = nn.Sequential(
            _conv_unit(in_channels, fpb // 3, 1, bn), _conv_unit(fpb // 3, fpb, 5, bn)
        )
        self.branch3x3 = nn.Sequential(
            _conv_unit(in_channels, fpb // 2, 1, bn), _conv_unit(fpb // 2, fpb, 3, bn)
        )
        self.branch1x1 = _conv_unit(in_channels, fpb, 1, bn)
        self.branch_pool = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1), _conv_unit(in_channels, fpb, 1, bn)
        )

    @property
    def out_channels(self) -> int:
        return 4 * self.filters_per_branch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                self.branch5x5(x),
                self.branch3x3(x),
                self.branch1x1(x),
                self.branch_pool(x),
            ],
            dim=1,
        )


class MLBNInception(nn.Module):
    """The MLBN Inception network for IDC vs non-IDC patches.

    ``len(filters)`` MLBN modules, a 2x2 max-pooling after every second module but the
    last pair (after modules 2, 4 and 6 for the default eight), then the dense head
    ``FC -> BN -> Dropout -> ReLU`` per entry of ``head_units`` and a final linear
    layer. Returns logits; the softmax lives in the loss and in ``predict_proba``.

    The default is the model the authors marked as their best (``filters`` read as
    filters per branch: about 33.8 M parameters). The sibling reading, where the
    numbers are module outputs, is ``filters=(16, 16, 32, 32, 64, 64, 128, 128)``.
    :data:`PRESETS` names smaller widths: ``MLBNInception(**PRESETS["small"])``.

    Parameters
    ----------
    n_classes : int, default=2
        Number of output logits.
    filters : sequence of int, default=(64, 64, 128, 128, 256, 256, 512, 512)
        Filters per branch of each MLBN module.
    head_units : sequence of int, default=(256, 256)
        Widths of the hidden dense layers; may be empty.
    dropout : float, default=0.4
        Dropout probability in the dense head.
    multilevel_bn : bool, default=True
        ``False`` drops the BatchNorm inside the modules (the paper's ablation).
    in_channels : int, default=3
        Channels of the input patches.
    patch_size : int or (int, int), default=50
        Height and width of the input patches, at least 16. The flatten size is
        computed from it.
    init : {"glorot", "he", "torch"}, default="glorot"
        Initialisation of the convolution and dense weights (biases zero):
        Glorot-uniform as in the authors' Keras code, He-normal, or PyTorch's
        defaults.

    Examples
    --------
    >>> import torch
    >>> net = MLBNInception(filters=(4, 4, 8, 8), head_units=(16,), patch_size=16)
    >>> net(torch.zeros(2, 3, 16, 16)).shape
    torch.Size([2, 2])
    """

    def __init__(
        self,
        n_classes: int = 2,
        filters: Sequence[int] = DEFAULT_FILTERS,
        head_units: Sequence[int] = DEFAULT_HEAD_UNITS,
        dropout: float = 0.4,
        multilevel_bn: bool = True,
        in_channels: int = 3,
        patch_size: int | tuple[int, int] = 50,
        init: str = "glorot",
    ) -> None:
        super().__init__()
        if init not in INIT_MODES:
            raise ValueError(f"init must be one of {INIT_MODES}; got {init!r}.")
        if not isinstance(n_classes, int) or n_classes < 2:
            raise ValueError(f"n_classes must be an int >= 2; got {n_classes!r}.")
        filters = _check_positive_ints(filters, "filters")
        if min(filters) < 3:
            raise ValueError(
                "filters must be ints >= 3 (each module's 5x5 branch reduces to "
                f"filters // 3 channels); got {filters!r}."
            )
        head_units = _check_positive_ints(head_units, "head_units", allow_empty=True)
        if not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be a float in [0, 1); got {dropout!r}.")
        height, width = (
            (patch_size, patch_size) if isinstance(patch_size, int) else patch_size
        )
        if min(height, width) < MIN_PATCH_SIZE:
            raise ValueError(
                f"patch_size must be at least {MIN_PATCH_SIZE}; got {patch_size!r}."
            )

        layers: list[nn.Module] = []
        channels = in_channels
        for index, fpb in enumerate(filters, start=1):
            block = MLBNBlock(channels, fpb, multilevel_bn)
            layers.append(block)
            channels = block.out_channels
            if index % 2 == 0 and index < len(filters):
                layers.append(nn.MaxPool2d(2))
                height, width = height // 2, width // 2
        self.features = nn.Sequential(*layers)
        self.flatten = nn.Flatten()

        head: list[nn.Module] = []
        in_units = channels * height * width
        for units in head_units:
            head += [
                nn.Linear(in_units, units),
                nn.BatchNorm1d(units),
                nn.Dropout(dropout),
                nn.ReLU(inplace=True),
            ]
            in_units = units
        head.append(nn.Linear(in_units, n_classes))
        self.head = nn.Sequential(*head)
        initialize_weights(self, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.flatten(self.features(x)))

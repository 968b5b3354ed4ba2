"""Training-time augmentation of whole batches of patches, on their device.

Torch only: the functions take the float ``(n, C, H, W)`` batches that
:func:`~idc_sklearn.batching.prepare_patches` makes (before normalisation, so RGB on
the 0-255 scale) and draw one transform per patch, vectorised over the batch. Every
random draw comes from the ``generator`` argument, so a seeded
:class:`torch.Generator` replays the same augmentation; draws are made on the
generator's own device, so a CPU generator gives the same views and stain shifts to a
CPU and to a CUDA batch.

- :func:`dihedral`: one of the 8 rotations and mirror images of a square patch (4
  for a non-square one). IDC patches have no preferred orientation.
- :func:`hed_jitter`: random scale and shift of each stain's optical density in
  haematoxylin-eosin-DAB space (Tellez et al., IEEE TMI 2018), which imitates the
  colour differences between laboratories and scanners.
- :func:`augment_batch`: either, both or neither, by name.
"""

from __future__ import annotations

import functools
import math
from numbers import Real

import numpy as np
import torch

__all__ = [
    "AUGMENT_MODES",
    "augment_batch",
    "dihedral",
    "dihedral_views",
    "hed_jitter",
]

AUGMENT_MODES = (None, "dihedral", "hed", "all")

# scikit-image's floor on RGB in [0, 1] before the logarithm (``separate_stains``);
# dividing by its log puts optical densities on the scale ``rgb2hed`` reports.
_RGB_FLOOR = 1e-6
_LOG_RGB_FLOOR = math.log(_RGB_FLOOR)


def _check_sigma(sigma, name: str) -> float:
    if (
        not isinstance(sigma, Real)
        or isinstance(sigma, bool)
        or not 0.0 <= float(sigma) < 1.0
    ):
        raise ValueError(f"{name} must be a float in [0, 1); got {sigma!r}.")
    return float(sigma)


def _check_batch(x, name: str = "x", *, rgb_float: bool = False) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(
            f"{name} must be a 4-D tensor (n, channels, height, width); got {got}."
        )
    if rgb_float and (x.shape[1] != 3 or not x.is_floating_point()):
        raise ValueError(
            f"{name} must be a float RGB batch (n, 3, height, width); got shape "
            f"{tuple(x.shape)} and dtype {x.dtype}."
        )


def _uniform(shape: tuple[int, ...], generator, like: torch.Tensor) -> torch.Tensor:
    """U[0, 1) draws from ``generator`` (on its device), moved to ``like``'s device."""
    device = generator.device if generator is not None else like.device
    u = torch.rand(shape, generator=generator, device=device)
    return u.to(device=like.device)


@functools.lru_cache(maxsize=16)
def _stain_matrices(
    dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    # Imported here so that importing this module stays torch-only; scikit-image is
    # the source of the matrices, so the numbers are never copied by hand. Cached so
    # a training loop does not send them to the GPU for every batch.
    from skimage.color import hed_from_rgb, rgb_from_hed

    return (
        torch.as_tensor(np.asarray(hed_from_rgb), dtype=dtype, device=device),
        torch.as_tensor(np.asarray(rgb_from_hed), dtype=dtype, device=device),
    )


def dihedral_views(x: torch.Tensor, dims: tuple[int, int] = (2, 3)):
    """Every dihedral view of a batch, in a fixed order: 8, or 4 for non-square.

    The deterministic counterpart of :func:`dihedral`, for test-time augmentation:
    the products of transposing (square patches only), flipping the rows and
    flipping the columns.

    Parameters
    ----------
    x : tensor
        A batch whose spatial axes are ``dims``: ``(2, 3)`` for
        ``(n, channels, height, width)``, ``(1, 2)`` for channels-last
        ``(n, height, width, channels)``.
    dims : (int, int), default=(2, 3)

    Yields
    ------
    tensor
        Each view; the second is ``x`` itself.

    Examples
    --------
    >>> import torch
    >>> x = torch.arange(4.0).reshape(1, 1, 2, 2)
    >>> views = list(dihedral_views(x))
    >>> len(views), bool(torch.equal(views[1], x))
    (8, True)
    """
    rows, cols = dims
    square = x.shape[rows] == x.shape[cols]
    for transposed in (False, True) if square else (False,):
        base = x.transpose(rows, cols) if transposed else x
        for flip_rows in (False, True):
            flipped = base.flip(rows) if flip_rows else base
            yield flipped.flip(cols)
            yield flipped


def dihedral(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Give each patch one of its dihedral views, drawn uniformly.

    A square patch gets one of 8 views: itself, its rotations by 90, 180 and 270
    degrees, and the mirror images of these four. A non-square patch gets one of the
    4 views that keep its shape: itself, its horizontal and vertical mirror images
    and its rotation by 180 degrees.

    Parameters
    ----------
    x : tensor of shape (n, channels, height, width)
        A batch on any device, in any dtype and memory format.
    generator : torch.Generator, optional
        Source of the draws; the global generator of ``x``'s device if None.

    Returns
    -------
    tensor of the shape, dtype, device and memory format of x

    Examples
    --------
    >>> import torch
    >>> x = torch.arange(8.0).reshape(2, 1, 2, 2)
    >>> y = dihedral(x, generator=torch.Generator().manual_seed(0))
    >>> y.shape
    torch.Size([2, 1, 2, 2])
    >>> sorted(y[0].flatten().tolist()) == sorted(x[0].flatten().tolist())
    True
    """
    _check_batch(x)
    n, _, height, width = x.shape
    # The 8 views are the products of three independent fair coins: transpose,
    # flip rows, flip columns. Without the transpose they are the 4 shape-keeping
    # views, so a non-square patch simply skips that coin.
    n_coins = 3 if height == width else 2
    coins = (_uniform((n, n_coins), generator, x) < 0.5).view(n, n_coins, 1, 1, 1)
    if n_coins == 3:
        # Writing into ``empty_like`` keeps x's memory format, which the
        # transposed view of a channels-last tensor would otherwise lose.
        x = torch.where(coins[:, 2], x.transpose(2, 3), x, out=torch.empty_like(x))
    x = torch.where(coins[:, 0], x.flip(2), x)
    return torch.where(coins[:, 1], x.flip(3), x)


def hed_jitter(
    x: torch.Tensor, sigma: float = 0.05, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Scale and shift each patch's stain concentrations at random.

    Each patch is taken to haematoxylin, eosin and DAB optical densities as
    :func:`skimage.color.rgb2hed` does, each stain channel ``s`` becomes
    ``alpha * s + beta`` with ``alpha ~ U(1 - sigma, 1 + sigma)`` and
    ``beta ~ U(-sigma, sigma)`` drawn per patch and stain (Tellez et al. 2018), and
    the result goes back to RGB as :func:`skimage.color.hed2rgb` does. With
    ``sigma=0`` the result is scikit-image's own round trip, which equals the input
    wherever every stain density is non-negative (``rgb2hed`` clips negative ones).

    Parameters
    ----------
    x : float tensor of shape (n, 3, height, width)
        RGB on the 0-255 scale, on any device and in any memory format.
    sigma : float in [0, 1), default=0.05
        Strength of the jitter; Tellez et al. use 0.05 ("HED-light") and 0.2
        ("HED-strong").
    generator : torch.Generator, optional
        Source of the draws; the global generator of ``x``'s device if None.

    Returns
    -------
    tensor of the shape, dtype and device of x
        RGB on the 0-255 scale, within [0, 255], in channels-last memory format
        (the layout :func:`~idc_sklearn.batching.prepare_patches` gives).

    References
    ----------
    D. Tellez et al., "Whole-slide mitosis detection in H&E breast histology using
    PHH3 as a reference to train distilled stain-invariant convolutional networks",
    IEEE Transactions on Medical Imaging 37(9), 2018.

    Examples
    --------
    >>> import torch
    >>> x = torch.full((2, 3, 4, 4), 200.0)
    >>> y = hed_jitter(x, sigma=0.1, generator=torch.Generator().manual_seed(0))
    >>> y.shape, y.dtype
    (torch.Size([2, 3, 4, 4]), torch.float32)
    >>> bool(((y >= 0) & (y <= 255)).all())
    True
    """
    sigma = _check_sigma(sigma, "sigma")
    _check_batch(x, rgb_float=True)
    # Half precision loses the small optical densities of pale pixels.
    work = torch.promote_types(x.dtype, torch.float32)
    hed_from_rgb, rgb_from_hed = _stain_matrices(work, x.device)
    n = x.shape[0]
    alpha = 1.0 + sigma * (2.0 * _uniform((n, 1, 1, 3), generator, x) - 1.0)
    beta = sigma * (2.0 * _uniform((n, 1, 1, 3), generator, x) - 1.0)

    # Channels last, so the colour conversions are matrix products over the last
    # axis, exactly as scikit-image writes them.
    rgb = x.permute(0, 2, 3, 1).to(work) / 255.0
    density = torch.log(rgb.clamp(min=_RGB_FLOOR)) / _LOG_RGB_FLOOR
    stains = (density @ hed_from_rgb).clamp(min=0.0)
    stains = alpha.to(work) * stains + beta.to(work)
    rgb = torch.exp((stains @ rgb_from_hed) * _LOG_RGB_FLOOR).clamp(0.0, 1.0)
    return (rgb * 255.0).to(x.dtype).permute(0, 3, 1, 2)


def augment_batch(
    x: torch.Tensor,
    mode: str | None,
    generator: torch.Generator | None = None,
    hed_sigma: float = 0.05,
) -> torch.Tensor:
    """Augment a batch of RGB patches by name.

    Parameters
    ----------
    x : float tensor of shape (n, 3, height, width)
        RGB on the 0-255 scale (before normalisation).
    mode : {None, "dihedral", "hed", "all"}
        ``None`` returns ``x`` itself; ``"dihedral"`` applies :func:`dihedral`,
        ``"hed"`` :func:`hed_jitter`, and ``"all"`` the stain jitter then the
        dihedral view.
    generator : torch.Generator, optional
        Source of every draw; the global generator of ``x``'s device if None.
    hed_sigma : float in [0, 1), default=0.05
        ``sigma`` of :func:`hed_jitter`; checked whatever the mode, so a bad value
        is caught before a search reaches a mode that uses it.

    Returns
    -------
    tensor of the shape, dtype and device of x

    Examples
    --------
    >>> import torch
    >>> x = torch.full((2, 3, 4, 4), 128.0)
    >>> augment_batch(x, None) is x
    True
    >>> augment_batch(x, "all", generator=torch.Generator().manual_seed(0)).shape
    torch.Size([2, 3, 4, 4])
    """
    if not (mode is None or (isinstance(mode, str) and mode in AUGMENT_MODES)):
        raise ValueError(f"mode must be one of {AUGMENT_MODES}; got {mode!r}.")
    hed_sigma = _check_sigma(hed_sigma, "hed_sigma")
    if mode is None:
        return x
    if mode in ("hed", "all"):
        x = hed_jitter(x, sigma=hed_sigma, generator=generator)
    if mode in ("dihedral", "all"):
        x = dihedral(x, generator=generator)
    return x

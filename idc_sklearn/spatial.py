"""Each patch's neighbours on its slide in its prediction.

A patch classifier scores every 50x50 patch alone, but IDC is a region: a patch
whose neighbours are carcinoma is likely carcinoma, and a lone doubtful patch in
benign tissue likely not. Where the patches' positions on their slide are known
(the IDC archive's file names give them, ``..._x1001_y1401_class0.png``; a
whole-slide run has its tile grid), each probability can be mixed with the
weighted mean of its neighbours': a Gaussian smoothing of the probability map, as
whole-slide pipelines smooth their heatmaps before reading them.

:func:`smooth_neighbours` does it on probabilities, per patient or slide;
:class:`~idc_sklearn.PatientPriorClassifier` applies it before the per-patient
prior when given ``coords`` and a ``neighbour_weight`` above 0. No label is read:
the neighbours' probabilities are the model's own.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np

from idc_sklearn._checks import check_fraction
from idc_sklearn.patches import check_groups

__all__ = ["smooth_neighbours"]


def check_neighbour_weight(weight) -> float:
    return check_fraction(weight, "neighbour_weight")


def check_stride(stride) -> float:
    if (
        isinstance(stride, bool)
        or not isinstance(stride, numbers.Real)
        or not 0 < stride < np.inf
    ):
        raise ValueError(
            "stride must be the distance between the positions of two adjacent "
            "patches, in the units of coords (50 pixels in the IDC archive), a "
            f"float > 0; got {stride!r}."
        )
    return float(stride)


def check_coords(coords, n: int) -> np.ndarray:
    """``coords`` as a float (n, 2) array of finite positions, or a clear error."""
    try:
        array = np.asarray(coords, dtype=float)
    except (TypeError, ValueError):
        if _has_missing(coords):
            raise ValueError(
                "coords must be finite positions; got missing values (None or "
                "pandas' NA): every patch needs its x and y."
            ) from None
        raise ValueError(
            f"coords must be each patch's (x, y) position on its slide, an array of "
            f"shape ({n}, 2) of numbers; got {type(coords).__name__} that is not "
            "numeric."
        ) from None
    if array.shape != (n, 2):
        raise ValueError(
            f"coords must be each patch's (x, y) position on its slide, shape "
            f"({n}, 2); got shape {array.shape}."
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(
            f"coords must be finite positions; got {int((~np.isfinite(array)).sum())} "
            "NaN or infinite values."
        )
    return array


def _has_missing(coords) -> bool:
    """Whether ``coords`` holds None or pandas' NA (which no float array takes)."""
    try:
        import pandas as pd

        return bool(np.asarray(pd.isna(coords)).any())
    except (TypeError, ValueError):
        return False


def smooth_neighbours(
    proba,
    coords,
    groups=None,
    *,
    weight: float = 0.75,
    stride: float = 50.0,
    radius: int = 2,
):
    """Mix each patch's IDC probability with its neighbours' on the same slide.

    The neighbours of a patch are the patches of the same group (patient or slide)
    whose positions lie within ``radius`` steps of ``stride`` in x and in y, each
    weighted by a Gaussian of one step (``exp(-(dx**2 + dy**2) / 2)`` in steps);
    patches at the very same position count with weight 1. The result is
    ``(1 - weight) * proba + weight * neighbours' mean``; a patch without
    neighbours keeps its own probability.

    Parameters
    ----------
    proba : array-like of shape (n_patches,)
        The probability of IDC of each patch.
    coords : array-like of shape (n_patches, 2)
        Each patch's (x, y) position on its slide: the archive's ``x`` and ``y``
        (``load_idc(...).frame[["x", "y"]]``), or a tile's column and row times
        ``stride``. Positions are rounded to the nearest step of ``stride``.
    groups : array-like of shape (n_patches,), default=None
        The patient or slide of each patch: only patches of the same group are
        neighbours. None takes every patch from one slide.
    weight : float, default=0.75
        The share of the neighbours' mean, in [0, 1]: 0 returns ``proba``; 1
        replaces each probability by its neighbours' mean. 0.75 was chosen by
        cross-validation by patient on the IDC archive (``docs/results.md``).
    stride : float, default=50
        The distance between two adjacent patches' positions, in the units of
        ``coords``: 50 pixels in the IDC archive.
    radius : int, default=2
        How many steps away a neighbour may lie (2: a 5x5 window).

    Returns
    -------
    ndarray of shape (n_patches,)
        The smoothed probabilities, float64.

    Raises
    ------
    ValueError
        If ``proba`` is not one probability in [0, 1] per patch, ``coords`` not
        one finite (x, y) per patch, ``groups`` not one id per patch, or a
        parameter is out of its range.

    Warns
    -----
    UserWarning
        Where ``weight`` is above 0 and no patch has a neighbour though some
        group holds several: most likely ``coords`` are in other units than
        ``stride``.

    Examples
    --------
    >>> import numpy as np
    >>> from idc_sklearn import smooth_neighbours
    >>> proba = np.array([0.9, 0.8, 0.4, 0.1])
    >>> coords = np.array([[0, 0], [50, 0], [100, 0], [1000, 1000]])
    >>> smooth_neighbours(proba, coords, weight=0.5).round(3)
    array([0.814, 0.725, 0.609, 0.1  ])

    The doubtful 0.4 patch beside two IDC patches rises above 0.5; the lone patch
    far away keeps its own probability.
    """
    proba = np.asarray(proba, dtype=float)
    if proba.ndim != 1 or not np.all((proba >= 0) & (proba <= 1)):
        raise ValueError(
            "proba must be one probability of IDC in [0, 1] per patch, a 1-D "
            f"array; got shape {proba.shape}"
            + ("" if proba.ndim != 1 else " with values outside [0, 1] or NaN")
            + "."
        )
    n = len(proba)
    coords = check_coords(coords, n)
    groups = check_groups(groups, n)
    weight = check_neighbour_weight(weight)
    stride = check_stride(stride)
    if (
        isinstance(radius, bool)
        or not isinstance(radius, numbers.Integral)
        or not 1 <= radius <= 10
    ):
        raise ValueError(
            f"radius must be the window's reach in steps, an int in [1, 10]; got "
            f"{radius!r}."
        )
    if weight == 0 or n == 0:
        return proba.copy()
    group = (
        np.zeros(n, dtype=np.int64)
        if groups is None
        else np.unique(groups, return_inverse=True)[1].astype(np.int64)
    )
    # Halves round up, every one alike (np.rint's ties-to-even would merge
    # positions 25 and 75 into one step and leave a gap after them).
    grid = np.floor(coords / stride + 0.5).astype(np.int64)
    grid -= grid.min(axis=0)
    # One int64 key per (group, row, column), with room for the window on every
    # side, so that a neighbour's key is the patch's key plus a fixed offset.
    width = int(grid[:, 0].max()) + 2 * radius + 1
    height = int(grid[:, 1].max()) + 2 * radius + 1
    if (int(group.max()) + 1) * height * width >= 2**62:
        raise ValueError(
            f"coords span {width} x {height} steps of stride={stride:g} over "
            f"{int(group.max()) + 1} groups: too wide a grid; is stride in the "
            "units of coords?"
        )
    keys = (group * height + grid[:, 1] + radius) * width + grid[:, 0] + radius
    positions, index = np.unique(keys, return_inverse=True)
    sums = np.bincount(index, proba, len(positions))
    counts = np.bincount(index, minlength=len(positions)).astype(float)
    # Other patches at the very same position, at weight 1.
    total = sums[index] - proba
    mass = counts[index] - 1
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dx == dy == 0:
                continue
            w = np.exp(-(dx * dx + dy * dy) / 2)
            wanted = keys + dy * width + dx
            at = np.minimum(np.searchsorted(positions, wanted), len(positions) - 1)
            found = positions[at] == wanted
            total[found] += w * sums[at[found]]
            mass[found] += w * counts[at[found]]
    smoothed = proba.copy()
    has = mass > 0
    # Warned where some group has two patches or more, none of them neighbours.
    if n > int(group.max()) + 1 and not has.any():
        warnings.warn(
            f"smooth_neighbours: none of the {n} patches has a neighbour within "
            f"{radius} steps of stride={stride:g} in coords, so nothing is mixed; "
            "are coords in the units of stride (adjacent patches stride apart: 50 "
            "in the archive's pixels, 1 on a tile grid)?",
            UserWarning,
            stacklevel=2,
        )
    smoothed[has] = (1 - weight) * proba[has] + weight * total[has] / mass[has]
    return smoothed

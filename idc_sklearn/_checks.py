"""The checks that several modules share, each written once.

A fraction in [0, 1], a path argument, a file to write, a pipeline's last step (and
the networks inside a wrapper or an ensemble), the
patches a patch transformer is given, and patches read as float64 a chunk at a time.
Every check raises where the bad value enters, with a message that names the
argument, what was received and what was expected. Where callers word a fault
differently (the figures' ``path``, the tensor files'), they pass their wording as
a template, as :func:`sklearn.utils.validation.check_is_fitted` takes ``msg``, so
each keeps its message and the rule itself lives here.

numpy, scikit-learn and ``patches.py`` only: no torch.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from idc_sklearn.patches import check_patch_range, check_patches, check_rgb_patch_shape

__all__ = [
    "FLOAT64_CHUNK_ROWS",
    "check_fraction",
    "check_output_path",
    "check_path",
    "check_rgb_patches",
    "final_step",
    "patch_networks",
    "float64_chunks",
]

# Patches converted to float64 at a time: 512 patches of 50x50x3 are 31 MB, and the
# stain normalisers hold a few arrays of that size per chunk. It bounds memory and
# changes no feature (each is computed patch by patch); ReinhardNormalizer sums its
# moments a chunk at a time, in float64, and returns the same patches at 2 (tests).
FLOAT64_CHUNK_ROWS = 512


def check_fraction(value, name: str, *, also: str = "") -> float:
    """``value`` as a float in [0, 1], or a ValueError naming ``name``.

    Parameters
    ----------
    value : object
        A real number (not a bool).
    name : str
        The argument's name, for the message.
    also : str, default=""
        Other forms the argument takes, said before "a number" in the message,
        e.g. ``"'auto' or "``.

    Returns
    -------
    float
    """
    if isinstance(value, bool) or not (
        isinstance(value, (int, float, np.integer, np.floating)) and 0 <= value <= 1
    ):
        raise ValueError(f"{name} must be {also}a number in [0, 1]; got {value!r}.")
    return float(value)


def check_path(
    path, name: str = "path", *, expected: str = "a str or path-like"
) -> Path:
    """``path`` as a :class:`~pathlib.Path` with ``~`` expanded, or a TypeError.

    Parameters
    ----------
    path : str or path-like
    name : str, default="path"
        The argument's name, for the message.
    expected : str, default="a str or path-like"
        What the message says ``name`` must be.

    Returns
    -------
    pathlib.Path
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be {expected}; got {type(path).__name__}.")
    return Path(os.path.expanduser(os.fspath(path)))


def check_output_path(
    path,
    name: str = "path",
    suffixes: tuple[str, ...] | None = None,
    *,
    optional: bool = False,
    expected: str = "a path",
    wrong_suffix: str = "{name}={path!r}: expected a file name ending in {suffixes}.",
    no_folder: str = "{name}={path!r}: its folder {folder!r} does not exist.",
) -> Path | None:
    """A file to write, checked before any work: its type, suffix and folder.

    Parameters
    ----------
    path : str, path-like or None
        The file to write. Its folder must exist; the file need not.
    name : str, default="path"
        The argument's name, for the messages.
    suffixes : tuple of str, optional
        The suffixes allowed, lower case (``""`` for none); any when None.
    optional : bool, default=False
        Accept None, and return it.
    expected : str, default="a path"
        What the TypeError says ``name`` must be.
    wrong_suffix, no_folder : str
        The messages of a suffix not in ``suffixes`` (ValueError) and of a missing
        folder (FileNotFoundError), as :meth:`str.format` templates of ``name``,
        ``path`` (the expanded path), ``folder`` (its folder) and ``suffixes``
        (joined by " or ").

    Returns
    -------
    pathlib.Path or None
    """
    if path is None and optional:
        return None
    path = check_path(path, name, expected=expected)
    fields = {
        "name": name,
        "path": str(path),
        "folder": str(path.parent),
        "suffixes": " or ".join(suffixes or ()),
    }
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise ValueError(wrong_suffix.format(**fields))
    if not path.parent.is_dir():
        raise FileNotFoundError(no_folder.format(**fields))
    return path


def final_step(estimator):
    """The estimator itself, or the last step of a pipeline.

    Anything with a non-empty list of ``(name, step)`` pairs as ``steps`` is a
    pipeline (scikit-learn's or imbalanced-learn's).
    """
    steps = getattr(estimator, "steps", None)
    return steps[-1][1] if isinstance(steps, list) and steps else estimator


def patch_networks(estimator) -> list:
    """The library's fitted networks inside ``estimator``, in order.

    The estimator itself or a pipeline's last step where it is one (it has its
    own ``module_``); else, looked into: a wrapper's fitted or frozen ``estimator_`` /
    ``estimator`` (:class:`~sklearn.model_selection.FixedThresholdClassifier`,
    :class:`~sklearn.frozen.FrozenEstimator`) and an ensemble's ``estimators_``.
    """
    found, pending = [], [estimator]
    while pending:
        model = final_step(pending.pop(0))
        # Its own attribute, not one a FrozenEstimator passes on from inside.
        if "module_" in getattr(model, "__dict__", {}):
            found.append(model)
            continue
        members = getattr(model, "estimators_", None)
        if isinstance(members, list):
            pending[:0] = members
            continue
        inner = getattr(model, "estimator_", getattr(model, "estimator", None))
        if inner is not None:
            pending.insert(0, inner)
    return found


def check_rgb_patches(X, patch_shape, owner: object) -> np.ndarray:
    """The input of a patch transformer: RGB patches on the 0-255 scale.

    ``owner``'s ``patch_shape`` must be ``(height, width, 3)`` (its error names
    ``owner``'s class, as sklearn's parameter validation does); ``X`` is 4-D, or
    2-D flattened patches of that shape, with values in [0, 255].

    Returns
    -------
    patches : ndarray of shape (n, height, width, 3)
        A view of ``X``, in its own dtype (as
        :func:`~idc_sklearn.patches.check_patches` returns it).
    """
    shape = check_rgb_patch_shape(patch_shape, owner)
    patches = check_patches(X, shape, name="X")
    check_patch_range(patches)
    return patches


def float64_chunks(
    patches: np.ndarray, rows: int | None = None
) -> Iterator[tuple[slice, np.ndarray]]:
    """Yield ``(rows, chunk)``: consecutive slices of ``patches`` and them as float64.

    Each chunk is a new array (callers may change it in place) with the patches'
    shape and values. At most ``rows`` patches (default :data:`FLOAT64_CHUNK_ROWS`,
    read on each call) are converted at a time, so a float copy of all of
    ``patches`` is never made.
    """
    step = FLOAT64_CHUNK_ROWS if rows is None else rows
    for start in range(0, len(patches), step):
        chunk = patches[start : start + step]
        yield slice(start, start + len(chunk)), chunk.astype(np.float64)

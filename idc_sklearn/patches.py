"""Validation of patch arrays at the library's boundary (numpy only).

Estimators and feature transformers take patches either as 4-D image arrays
``(n, height, width, channels)`` - channels last, as images are stored - or as the
2-D ``(n, height * width * channels)`` form that imbalanced-learn samplers and sklearn
transformers hand on. Both are returned as a 4-D *view* of the caller's memory: the
dtype is kept (uint8 stays uint8) so that no float copy of a full dataset is ever made.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from sklearn.exceptions import DataConversionWarning
from sklearn.utils.multiclass import check_classification_targets, type_of_target

DEFAULT_PATCH_SHAPE = (50, 50, 3)

# Float patches whose first rows all lie in [0, 1] were most likely scaled already;
# normalize="scale" divides by 255 again. Only this many rows are looked at.
_SCALED_CHECK_ROWS = 4096
# Large float arrays are checked for NaN/inf in slices, so the check never allocates
# a boolean mask the size of the data.
_FINITE_CHECK_ROWS = 4096


def check_patch_shape(
    patch_shape, *, name: str = "patch_shape"
) -> tuple[int, int, int]:
    """Validate a ``(height, width, channels)`` triple of positive ints."""
    if (
        not isinstance(patch_shape, Sequence)
        or isinstance(patch_shape, str)
        or len(patch_shape) != 3
        or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool)
            for v in patch_shape
        )
        or not all(v > 0 for v in patch_shape)
    ):
        raise ValueError(
            f"{name} must be a tuple (height, width, channels) of 3 positive ints; "
            f"got {patch_shape!r}."
        )
    return tuple(int(v) for v in patch_shape)


def check_rgb_patch_shape(patch_shape, owner: object) -> tuple[int, int, int]:
    """:func:`check_patch_shape` for estimators that read RGB patches only.

    The error names ``owner``'s class, as sklearn's parameter validation does.
    """
    shape = check_patch_shape(patch_shape)
    if shape[2] != 3:
        raise ValueError(
            f"The 'patch_shape' parameter of {type(owner).__name__} must be "
            f"(height, width, 3): RGB patches; got {patch_shape!r}."
        )
    return shape


def as_real_array(X, *, name: str = "X", check_finite: bool = True) -> np.ndarray:
    """Return ``X`` as a numpy array of real numbers, without copying an ndarray.

    The shape-independent half of :func:`check_patches`: rejects sparse matrices,
    non-arrays, boolean, complex, object and string dtypes, and (for floats, when
    ``check_finite``) NaN and infinity. Estimators call it before validating the
    labels, then :func:`check_patches` for the shape.
    """
    if hasattr(X, "tocsr") or hasattr(X, "todense"):
        raise TypeError(
            f"{name} is a sparse {type(X).__name__}; sparse input is not supported: "
            "patches must be a dense array."
        )
    if not isinstance(X, np.ndarray):
        if hasattr(X, "__array__") or isinstance(X, (list, tuple)):
            try:
                X = np.asarray(X)
            except ValueError as exc:
                raise ValueError(
                    f"{name} must be an array of patches of one shape; numpy could "
                    f"not stack the {type(X).__name__} given ({exc})."
                ) from None
        else:
            raise TypeError(
                f"{name} must be a numpy array of patches; got {type(X).__name__}."
            )
    # Unsigned and signed integers, floats: not booleans, complex numbers, time
    # differences (which numpy counts as integers), objects or strings.
    if X.dtype.kind not in "uif":
        # ValueError, as sklearn's check_array raises for complex and object data.
        complex_hint = (
            " Complex data not supported."
            if np.issubdtype(X.dtype, np.complexfloating)
            else ""
        )
        raise ValueError(
            f"{name} must hold real numbers (uint8 0-255 or float); "
            f"got dtype {X.dtype}.{complex_hint}"
        )
    if X.ndim == 0:
        raise ValueError(
            f"{name} must be an array of patches, 4-D (n, height, width, channels) "
            f"or 2-D (n, height*width*channels); got a 0-D array (a scalar)."
        )
    if X.shape[0] == 0:
        raise ValueError(
            f"{name} has 0 samples (shape {X.shape}); at least 1 patch is required."
        )
    if check_finite and np.issubdtype(X.dtype, np.floating):
        for start in range(0, len(X), _FINITE_CHECK_ROWS):
            if not np.isfinite(X[start : start + _FINITE_CHECK_ROWS]).all():
                raise ValueError(f"{name} contains NaN or infinity.")
    return X


def check_patches(
    X,
    patch_shape=DEFAULT_PATCH_SHAPE,
    *,
    name: str = "X",
    check_finite: bool = True,
) -> np.ndarray:
    """Return ``X`` as a 4-D ``(n, height, width, channels)`` array without copying.

    Parameters
    ----------
    X : array-like of shape (n, height, width, channels) or (n, height*width*channels)
        Patches, uint8 in 0-255 or float (or any real numeric dtype). A 2-D array is
        read as flattened patches of ``patch_shape`` (C order, channels last).
    patch_shape : tuple of int, default=(50, 50, 3)
        ``(height, width, channels)`` the patches must have.
    name : str, default="X"
        The argument's name, used in error messages.
    check_finite : bool, default=True
        Reject NaN and infinity in float input.

    Returns
    -------
    patches : ndarray of shape (n, height, width, channels)
        A view of ``X`` where ``X`` is a numpy array; its dtype is unchanged.

    Raises
    ------
    ValueError
        Bad shape, dtype or values (TypeError for something that is not an
        array), with the argument's name, what was received and what was expected.
    """
    height, width, channels = check_patch_shape(patch_shape)
    n_features = height * width * channels
    X = as_real_array(X, name=name, check_finite=check_finite)
    if X.ndim == 4:
        if X.shape[1:] != (height, width, channels):
            hint = ""
            if X.shape[1] == channels and X.shape[2:] == (height, width):
                hint = " It looks channels-first; pass X.transpose(0, 2, 3, 1)."
            raise ValueError(
                f"{name} has patches of shape {X.shape[1:]}; expected patch_shape "
                f"(height, width, channels) = {(height, width, channels)}.{hint}"
            )
        patches = X
    elif X.ndim == 2:
        if X.shape[1] == 0:
            raise ValueError(
                f"{name} has 0 feature(s) (shape={X.shape}) while a minimum of 1 is "
                f"required; flattened patches of patch_shape "
                f"{(height, width, channels)} have {n_features}."
            )
        if X.shape[1] != n_features:
            raise ValueError(
                f"{name} is 2-D with {X.shape[1]} features per row; flattened patches "
                f"of patch_shape {(height, width, channels)} have {n_features}. "
                "Set patch_shape to the patches' (height, width, channels)."
            )
        patches = X.reshape(X.shape[0], height, width, channels)
    else:
        raise ValueError(
            f"{name} must be 4-D (n, height, width, channels) or 2-D "
            f"(n, height*width*channels); got a {X.ndim}-D array of shape {X.shape}."
            + (" For a single patch use X[None]." if X.ndim == 3 else "")
        )
    return patches


def check_patch_range(patches: np.ndarray, *, name: str = "X") -> None:
    """Reject values off the 0-255 scale, a slice at a time (uint8 passes at once)."""
    if patches.dtype == np.uint8:
        return
    for start in range(0, patches.shape[0], _FINITE_CHECK_ROWS):
        chunk = patches[start : start + _FINITE_CHECK_ROWS]
        low, high = chunk.min(), chunk.max()
        if low < 0 or high > 255:
            raise ValueError(
                f"{name} holds values in [{low}, {high}]; patches are read on the "
                "0-255 scale (uint8, or float holding 0-255 values)."
            )


def check_class_labels(y, *, name: str = "y") -> None:
    """Raise a ValueError naming ``name`` unless ``y`` holds class labels.

    sklearn's :func:`~sklearn.utils.multiclass.check_classification_targets`, with
    the argument named: continuous or multi-output targets are refused.
    """
    try:
        check_classification_targets(y)
    except ValueError as exc:
        try:
            kind = f"{type_of_target(y)} values"
        except ValueError:  # NaN or infinity, which type_of_target refuses too
            kind = "values that are not labels"
        raise ValueError(
            f"{name} must hold class labels (e.g. 0/1 or 'IDC'/'non-IDC'); got "
            f"{kind}. {exc}"
        ) from None


def check_labels(y, n_samples: int, *, owner: object) -> np.ndarray:
    """``y`` as a 1-D array of ``n_samples`` class labels, or a ValueError.

    A column vector ``(n, 1)`` is raveled, with sklearn's DataConversionWarning;
    ``owner``'s class names the estimator
    that requires ``y``.
    """
    if y is None:
        raise ValueError(
            f"{type(owner).__name__} requires y to be passed, but the target y "
            "is None; pass the label of each patch."
        )
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        warnings.warn(
            "A column-vector y was passed when a 1d array was expected (one label "
            f"per patch; got shape {y.shape}); it is read raveled.",
            DataConversionWarning,
            stacklevel=3,
        )
        y = y.ravel()
    if y.ndim != 1:
        raise ValueError(
            f"y must be 1-D, one label per patch; got an array of shape {y.shape}."
        )
    if len(y) != n_samples:
        raise ValueError(
            f"X and y have different lengths: X has {n_samples} patches, "
            f"y has {len(y)} labels."
        )
    check_class_labels(y)
    return y


def encode_labels(y: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Each label's index in the sorted ``classes``; unknown labels are refused."""
    encoded = np.clip(np.searchsorted(classes, y), 0, len(classes) - 1)
    unknown = classes[encoded] != y
    if unknown.any():
        raise ValueError(
            f"y contains labels not in classes_ {classes.tolist()}: "
            f"{np.unique(y[unknown]).tolist()}."
        )
    return encoded.astype(np.int64)


def check_groups(groups, n_samples: int):
    """``groups`` as one patient id per patch (None stays None), or a ValueError."""
    if groups is None:
        return None
    groups = np.asarray(groups)
    if groups.shape != (n_samples,):
        hint = (
            " A sampler before this estimator in a Pipeline resamples X and y "
            "but not groups; balance the classes with this estimator's "
            'resample="over" or "under" instead, which resamples inside the '
            "training split and keeps the patients whole."
            if groups.ndim == 1
            else ""
        )
        raise ValueError(
            f"groups must hold one patient id per patch, shape ({n_samples},); "
            f"got shape {groups.shape}.{hint}"
        )
    missing = _missing(groups)
    if missing.any():
        count = int(missing.sum())
        raise ValueError(
            f"groups holds {count} missing patient id{'s' if count > 1 else ''} "
            f"(None or NaN), the first at patch {int(np.flatnonzero(missing)[0])}; "
            "every patch needs its patient."
        )
    return groups


def _missing(values: np.ndarray) -> np.ndarray:
    """Where ``values`` holds None or NaN (numpy alone, as pandas' ``isna``)."""
    if values.dtype.kind in "fc":
        return np.isnan(values)
    if values.dtype.kind != "O":
        return np.zeros(values.shape, dtype=bool)
    return np.fromiter(
        (v is None or (isinstance(v, float) and v != v) for v in values),
        dtype=bool,
        count=len(values),
    )


def warn_if_scaled(X: np.ndarray) -> None:
    """Warn where float patches look scaled to [0, 1] already (normalize="scale")."""
    if not np.issubdtype(X.dtype, np.floating):
        return
    head = X[:_SCALED_CHECK_ROWS]
    largest = float(np.nanmax(head)) if head.size else np.inf
    if largest <= 1.0:
        warnings.warn(
            f"X holds floats in [0, 1] (largest {largest:.3g} "
            f"in the first {len(head)} patches), but normalize='scale' "
            "reads patches on the 0-255 scale and divides by 255 again. "
            "Pass the unscaled patches (uint8 0-255), or normalize=None "
            "for patches scaled already.",
            UserWarning,
            stacklevel=4,
        )

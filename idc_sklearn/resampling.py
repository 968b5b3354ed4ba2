"""Class balancing for 4-D patch arrays, usable in imbalanced-learn's Pipeline."""

from __future__ import annotations

import numpy as np
from imblearn.over_sampling import RandomOverSampler
from imblearn.under_sampling import RandomUnderSampler
from sklearn.base import BaseEstimator

from idc_sklearn.patches import DEFAULT_PATCH_SHAPE, check_patches

__all__ = ["PatchResampler"]

_KINDS = {"under": RandomUnderSampler, "over": RandomOverSampler}


class PatchResampler(BaseEstimator):
    """Random under- or over-sampling of patch arrays, by index.

    imbalanced-learn's samplers accept only 2-D arrays. This one resamples the
    *indices* of the patches with imbalanced-learn's ``RandomUnderSampler`` or
    ``RandomOverSampler`` and returns the chosen patches, in the shape and dtype
    they came in (4-D stays 4-D, uint8 stays uint8). It has ``fit_resample``, so
    :class:`imblearn.pipeline.Pipeline` applies it while fitting and skips it
    while predicting.

    Parameters
    ----------
    kind : {"under", "over"}, default="under"
        Drop patches of the majority classes, or repeat those of the minority.
    sampling_strategy : float, str, dict or callable, default="auto"
        As in imbalanced-learn's random samplers.
    random_state : int, RandomState instance or None, default=None
    patch_shape : tuple of int, default=(50, 50, 3)
        Shape of one patch, used to validate 4-D and 2-D input.

    Attributes
    ----------
    sample_indices_ : ndarray of shape (n_resampled,)
        Indices of the input patches that make up the resampled set.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.zeros((10, 16, 16, 3), dtype=np.uint8)
    >>> y = np.array([0] * 8 + [1] * 2)
    >>> Xr, yr = PatchResampler(
    ...     "under", random_state=0, patch_shape=(16, 16, 3)
    ... ).fit_resample(X, y)
    >>> Xr.shape, np.bincount(yr).tolist()
    ((4, 16, 16, 3), [2, 2])
    """

    def __init__(
        self,
        kind="under",
        *,
        sampling_strategy="auto",
        random_state=None,
        patch_shape=DEFAULT_PATCH_SHAPE,
    ):
        self.kind = kind
        self.sampling_strategy = sampling_strategy
        self.random_state = random_state
        self.patch_shape = patch_shape

    def fit_resample(self, X, y, **params):
        """Resample ``X`` and ``y``.

        Parameters
        ----------
        X : array-like of shape (n, height, width, channels) or (n, h * w * c)
        y : array-like of shape (n,)

        Returns
        -------
        X_resampled : ndarray, the same number of dimensions and dtype as ``X``
        y_resampled : ndarray of shape (n_resampled,)
        """
        if self.kind not in _KINDS:
            raise ValueError(
                f"kind must be one of {sorted(_KINDS)}; got {self.kind!r}."
            )
        patches = check_patches(X, self.patch_shape)
        y = np.asarray(y)
        if len(y) != len(patches):
            raise ValueError(
                f"X and y have different lengths: X has {len(patches)} patches, "
                f"y has {len(y)} labels."
            )
        sampler = _KINDS[self.kind](
            sampling_strategy=self.sampling_strategy, random_state=self.random_state
        )
        index = np.arange(len(y)).reshape(-1, 1)
        index_resampled, y_resampled = sampler.fit_resample(index, y)
        self.sample_indices_ = index_resampled.ravel()
        X = np.asarray(X)
        return X[self.sample_indices_], y_resampled

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags

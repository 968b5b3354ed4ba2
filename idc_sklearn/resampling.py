"""Class balancing of patches by index: in a CNN's epochs, or in imblearn's Pipeline.

:class:`EpochResampler` draws a balanced training set afresh each epoch for the
estimators' ``resample`` parameter; :class:`PatchResampler` is a sampler for
imbalanced-learn's ``Pipeline`` that keeps 4-D patch arrays 4-D. numpy,
sklearn and imbalanced-learn only: no torch here.
"""

from __future__ import annotations

import numbers

import numpy as np
from imblearn.base import BaseSampler
from imblearn.over_sampling import RandomOverSampler
from imblearn.under_sampling import RandomUnderSampler
from imblearn.utils import check_target_type
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import validate_data

from idc_sklearn.patches import DEFAULT_PATCH_SHAPE, check_class_labels, check_patches

__all__ = ["PatchResampler", "EpochResampler", "RESAMPLE_MODES"]

_KINDS = {"under": RandomUnderSampler, "over": RandomOverSampler}


def _resample_indices(kind, y, sampling_strategy, random_state) -> np.ndarray:
    """Indices of a resampled ``y``, by imbalanced-learn's random sampler ``kind``."""
    sampler = _KINDS[kind](
        sampling_strategy=sampling_strategy, random_state=random_state
    )
    index = np.arange(len(y)).reshape(-1, 1)
    return sampler.fit_resample(index, y)[0].ravel()


class PatchResampler(BaseSampler):
    """Random under- or over-sampling of patch arrays, by index.

    imbalanced-learn's samplers accept only 2-D arrays. This one is an
    imbalanced-learn sampler (``fit``, ``fit_resample``, ``sampling_strategy_``)
    that resamples the *indices* of the patches with ``RandomUnderSampler`` or
    ``RandomOverSampler`` and returns the chosen patches in the shape and dtype
    they came in (4-D stays 4-D, uint8 stays uint8), so
    :class:`imblearn.pipeline.Pipeline` applies it while fitting and skips it
    while predicting. In a pipeline whose estimator takes ``groups`` (the CNNs),
    prefer the estimator's own ``resample``: a sampler cannot resample ``groups``.

    Parameters
    ----------
    kind : {"under", "over"}, default="under"
        Drop patches of the majority classes, or repeat those of the minority.
    sampling_strategy : float, str, dict or callable, default="auto"
        As in imbalanced-learn's random samplers.
    random_state : int, RandomState instance or None, default=None
    patch_shape : tuple of int or None, default=(50, 50, 3)
        Shape of one patch, used to validate 4-D and 2-D input; None accepts any
        array of at least 2 dimensions (rows are resampled whatever they hold).

    Attributes
    ----------
    sampling_strategy_ : dict
        imbalanced-learn's reading of ``sampling_strategy``: per class, the
        number of patches to add (``"over"``) or to keep (``"under"``).
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

    _parameter_constraints: dict = {
        "kind": [StrOptions(set(_KINDS))],
        "sampling_strategy": [
            Interval(numbers.Real, 0, 1, closed="right"),
            str,
            dict,
            callable,
        ],
        "random_state": ["random_state"],
        "patch_shape": [tuple, list, None],
    }

    def __init__(
        self,
        kind="under",
        *,
        sampling_strategy="auto",
        random_state=None,
        patch_shape=DEFAULT_PATCH_SHAPE,
    ):
        super().__init__(sampling_strategy=sampling_strategy)
        self.kind = kind
        self.random_state = random_state
        self.patch_shape = patch_shape

    @property
    def _sampling_type(self) -> str:
        return "over-sampling" if self.kind == "over" else "under-sampling"

    def fit(self, X, y, **params):
        check_class_labels(y)  # before imbalanced-learn's check, naming y
        return super().fit(X, y, **params)

    def fit_resample(self, X, y, **params):
        check_class_labels(y)
        return super().fit_resample(X, y, **params)

    def _check_X_y(self, X, y, accept_sparse=None):
        y, binarize_y = check_target_type(y, indicate_one_vs_all=True)
        if self.patch_shape is None:
            X = validate_data(self, X=X, reset=True, allow_nd=True, dtype=None)
        else:
            check_patches(X, self.patch_shape)
            X = np.asarray(X)
        if len(y) != len(X):
            raise ValueError(
                f"X and y have different lengths: X has {len(X)} patches, "
                f"y has {len(y)} labels."
            )
        self.n_features_in_ = int(np.prod(X.shape[1:]))
        return X, y, binarize_y

    def _fit_resample(self, X, y):
        self.sample_indices_ = _resample_indices(
            self.kind, y, self.sampling_strategy, self.random_state
        )
        return X[self.sample_indices_], y[self.sample_indices_]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
        tags.sampler_tags.sample_indices = True
        return tags


RESAMPLE_MODES = (None, "over", "under")


class EpochResampler:
    """Indices of a class-balanced training set, drawn afresh every epoch.

    The sampler a CNN's training data loader uses for ``resample="over"`` or
    ``"under"``: each iteration (one epoch) resamples the *indices* of the
    training patches with imbalanced-learn's ``RandomOverSampler`` or
    ``RandomUnderSampler``, so no patch is copied and every epoch sees another
    draw of the repeated (or dropped) patches. numpy only; torch's data loader
    takes any iterable of indices with a length as its ``sampler``.

    Parameters
    ----------
    y : array-like of shape (n,)
        Labels of the training patches.
    kind : {"over", "under"}
        Repeat patches of the minority classes, or drop some of the majority.
    shuffle : bool, default=True
        Shuffle the resampled indices (else they come sorted).
    random_state : int or None, default=None
        Seeds the sequence of draws: epoch ``k`` of two samplers with the same
        seed yields the same indices.

    Examples
    --------
    >>> import numpy as np
    >>> sampler = EpochResampler(np.array([0] * 6 + [1] * 2), "over", random_state=0)
    >>> len(sampler)
    12
    >>> first, second = list(sampler), list(sampler)
    >>> np.bincount(np.array([0] * 6 + [1] * 2)[first]).tolist()
    [6, 6]
    >>> first != second
    True
    """

    def __init__(self, y, kind: str, *, shuffle: bool = True, random_state=None):
        if kind not in _KINDS:
            raise ValueError(f"resample must be one of {RESAMPLE_MODES}; got {kind!r}.")
        self.y = np.asarray(y)
        self.kind = kind
        self.shuffle = shuffle
        self._rng = np.random.default_rng(random_state)
        counts = np.unique(self.y, return_counts=True)[1]
        target = counts.max() if kind == "over" else counts.min()
        self._length = int(target * len(counts))

    def resample(self) -> np.ndarray:
        """Draw one epoch's indices."""
        seed = int(self._rng.integers(np.iinfo(np.int32).max))
        indices = _resample_indices(self.kind, self.y, "auto", seed)
        if self.shuffle:
            indices = self._rng.permutation(indices)
        return indices

    @property
    def rng_state(self) -> dict:
        """The state of the sampler's generator (for resumable training)."""
        return self._rng.bit_generator.state

    @rng_state.setter
    def rng_state(self, state: dict) -> None:
        self._rng.bit_generator.state = state

    def __iter__(self):
        return iter(self.resample().tolist())

    def __len__(self) -> int:
        return self._length

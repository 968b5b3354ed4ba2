"""Stain normalisation of H&E patches, as scikit-learn transformers.

Slides stained in different labs, or on different days, differ in colour; a model
trained on some can read the stain rather than the tissue. A stain normaliser is
fitted on reference patches (in a pipeline, the training patients') and maps every
patch it transforms to the reference's colours:

- :class:`ReinhardNormalizer` (Reinhard et al. 2001) matches the mean and standard
  deviation of each CIE Lab channel.
- :class:`MacenkoNormalizer` (Macenko et al. 2009) separates haematoxylin and eosin by
  their optical density and rebuilds the patch with the reference's stain colours and
  concentration range.

Both take patches as the library's estimators do, 4-D ``(n, height, width, 3)`` or
flattened 2-D (read through ``patch_shape``), on the 0-255 scale, and return them in
the same form and dtype (uint8 in, uint8 out, rounded and clipped); with 2-D input,
``set_output(transform="pandas")`` returns a DataFrame whose columns are the input's
(``get_feature_names_out``: each value maps to itself). Patches are
converted to float a chunk at a time, so transforming the whole IDC archive (277,524
uint8 patches) never makes a float copy of it.

Background and padding are left as they are: pure black pixels ``(0, 0, 0)`` are the
zero padding ``load_idc`` gives edge patches, and are excluded from every estimate and
kept black; near-white background is excluded from the estimates (each class says by
which rule) so it does not dilute the tissue's statistics.

numpy, scikit-image and scikit-learn only: no torch.
"""

from __future__ import annotations

import math
import warnings
from numbers import Real

import numpy as np
from skimage.color import lab2rgb, rgb2lab
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, validate_data

from ._checks import check_rgb_patches, float64_chunks
from .patches import DEFAULT_PATCH_SHAPE

__all__ = ["MacenkoNormalizer", "ReinhardNormalizer"]

# MacenkoNormalizer.fit estimates from at most this many reference patches (2.6
# million pixels at 50x50), evenly spaced through X so every part of it is seen.
_FIT_PATCHES = 1024
# A standard deviation or concentration below this is treated as zero.
_EPS = 1e-6


def _is_padding(rgb: np.ndarray) -> np.ndarray:
    """Pure black pixels, ``(m, pixels)``: the zero padding of edge patches."""
    return ~rgb.any(axis=-1)


def _as_dtype(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Float 0-255 values in ``dtype``, clipped to 0-255 (rounded for integers)."""
    np.clip(values, 0.0, 255.0, out=values)
    if np.issubdtype(dtype, np.integer):
        np.rint(values, out=values)
    return values.astype(dtype, copy=False)


def _chunks(patches: np.ndarray):
    """Yield ``(rows, rgb)``: a slice of patches and them as float64 (m, pixels, 3)."""
    for rows, chunk in float64_chunks(patches):
        yield rows, chunk.reshape(len(chunk), -1, 3)


class _StainNormalizer(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Validation, chunking and dtype handling shared by the normalisers.

    Subclasses implement ``_fit(patches)`` and ``_normalize(rgb, state)``, where
    ``rgb`` is a float64 ``(m, pixels, 3)`` chunk on the 0-255 scale, and may
    override ``_transform_state(patches)`` for statistics over all of ``X``.
    """

    _parameter_constraints: dict = {
        "min_tissue_fraction": [Interval(Real, 0, 1, closed="both")],
        "patch_shape": "no_validation",
    }

    def _check_input(self, X) -> np.ndarray:
        """The parameters and ``X``, checked; ``X`` as 4-D patches."""
        self._validate_params()
        return check_rgb_patches(X, self.patch_shape, self)

    def fit(self, X, y=None):
        """Learn the reference's colour statistics from ``X``.

        Parameters
        ----------
        X : array-like of shape (n, height, width, 3) or (n, height * width * 3)
            Reference patches on the 0-255 scale (uint8, or float holding 0-255
            values), e.g. the training patients'.
        y : None
            Ignored.

        Returns
        -------
        self : object
            The fitted normaliser.
        """
        patches = self._check_input(X)
        # Records feature_names_in_ for a DataFrame of flattened patches.
        validate_data(self, X, reset=True, skip_check_array=True)
        self._fit(patches)
        self.n_features_in_ = math.prod(patches.shape[1:])
        return self

    def transform(self, X):
        """Map patches to the reference's colours.

        Parameters
        ----------
        X : array-like of shape (n, height, width, 3) or (n, height * width * 3)
            Patches on the 0-255 scale (uint8, or float holding 0-255 values).

        Returns
        -------
        X_normalized : ndarray of the shape and dtype of ``X``
            The normalised patches, clipped to 0-255 (and rounded for integer
            dtypes).
        """
        check_is_fitted(self)
        patches = self._check_input(X)
        flat = np.ndim(X) == 2
        if flat:
            validate_data(self, X, reset=False, skip_check_array=True)
        state = self._transform_state(patches)
        out = np.empty(patches.shape, dtype=patches.dtype)
        for rows, rgb in _chunks(patches):
            normalized = _as_dtype(self._normalize(rgb, state), patches.dtype)
            out[rows] = normalized.reshape(out[rows].shape)
        return out.reshape(len(out), -1) if flat else out

    def _transform_state(self, patches: np.ndarray):
        return None


# -- Reinhard -----------------------------------------------------------------------


def _to_lab(rgb: np.ndarray) -> np.ndarray:
    return rgb2lab(rgb / 255.0, channel_axis=-1)


def _from_lab(lab: np.ndarray) -> np.ndarray:
    lab[..., 0] = np.clip(lab[..., 0], 0.0, 100.0)
    with warnings.catch_warnings():
        # Matched colours can fall outside sRGB; scikit-image clips them, as we want,
        # and warns each time.
        warnings.filterwarnings("ignore", "Conversion from CIE-LAB", UserWarning)
        return lab2rgb(lab, channel_axis=-1) * 255.0


def _lab_moments(lab: np.ndarray, tissue: np.ndarray):
    """Tissue pixel count, sum and sum of squares per patch: (m,), (m, 3), (m, 3)."""
    weights = tissue[..., None]
    return (
        tissue.sum(axis=1),
        (lab * weights).sum(axis=1),
        (lab**2 * weights).sum(axis=1),
    )


def _mean_std(count, total, squares):
    count = np.maximum(count, 1)[..., None]
    mean = total / count
    return mean, np.sqrt(np.maximum(squares / count - mean**2, 0.0))


class ReinhardNormalizer(_StainNormalizer):
    """Match the colour statistics of patches to a reference in CIE Lab.

    Reinhard et al.'s colour transfer: each patch is converted to CIE Lab
    (scikit-image's ``rgb2lab``), each channel of its tissue pixels is shifted and
    scaled to the reference's mean and standard deviation, and the result is
    converted back (``lab2rgb``, which clips colours outside sRGB).

    Tissue pixels are those with ``L* < 100 * luminosity_threshold`` that are not
    pure black: the reference's statistics, and each patch's, come from them only,
    and only they are changed. Background (lighter pixels) and zero padding are left
    as they are, so white stays white. A patch (or, with ``per_patch=False``, an
    ``X``) whose share of tissue pixels is below ``min_tissue_fraction`` is returned
    unchanged: its statistics would be too unstable to match. A channel of no
    spread (a flat colour) is only shifted.

    Parameters
    ----------
    per_patch : bool, default=True
        True: each patch is matched on its own statistics, which also evens out
        colour differences between patches of one slide. False: one set of
        statistics over all the tissue of the ``X`` passed to ``transform``, applied
        to every patch, as Reinhard et al. did for whole images; pass one slide
        (patient) at a time for the per-slide normalisation.
    luminosity_threshold : float in (0, 1], default=0.9
        Pixels with ``L* / 100`` at or above it are background.
    min_tissue_fraction : float in [0, 1], default=0.1
        Least share of tissue pixels for a patch to be normalised.
    patch_shape : tuple of int, default=(50, 50, 3)
        ``(height, width, 3)`` of the patches; reads 2-D flattened input.

    Attributes
    ----------
    reference_mean_ : ndarray of shape (3,)
        Mean L*, a*, b* of the reference's tissue pixels.
    reference_std_ : ndarray of shape (3,)
        Their standard deviations.
    n_features_in_ : int
        ``height * width * 3``.
    feature_names_in_ : ndarray of str
        Column names, where ``fit`` was given a DataFrame of flattened patches.

    See Also
    --------
    MacenkoNormalizer : Normalise each stain separately, by optical density.

    References
    ----------
    E. Reinhard, M. Adhikhmin, B. Gooch and P. Shirley, "Color transfer between
    images", IEEE Computer Graphics and Applications 21(5), 2001.

    Examples
    --------
    >>> from idc_sklearn.datasets import make_idc_patches
    >>> from idc_sklearn.stain import ReinhardNormalizer
    >>> idc = make_idc_patches(n_patients=2, patches_per_patient=4, random_state=0)
    >>> reference, other = idc.data[:4], idc.data[4:]  # two patients' patches
    >>> normalized = ReinhardNormalizer().fit(reference).transform(other)
    >>> normalized.shape, normalized.dtype
    ((4, 50, 50, 3), dtype('uint8'))
    """

    _parameter_constraints: dict = {
        **_StainNormalizer._parameter_constraints,
        "per_patch": ["boolean"],
        "luminosity_threshold": [Interval(Real, 0, 1, closed="right")],
    }

    def __init__(
        self,
        per_patch: bool = True,
        luminosity_threshold: float = 0.9,
        min_tissue_fraction: float = 0.1,
        patch_shape: tuple[int, int, int] = DEFAULT_PATCH_SHAPE,
    ):
        self.per_patch = per_patch
        self.luminosity_threshold = luminosity_threshold
        self.min_tissue_fraction = min_tissue_fraction
        self.patch_shape = patch_shape

    def _lab_and_tissue(self, rgb):
        lab = _to_lab(rgb)
        tissue = (lab[..., 0] < 100.0 * self.luminosity_threshold) & ~_is_padding(rgb)
        return lab, tissue

    def _batch_moments(self, patches):
        """Tissue count, sum and sum of squares over all of ``patches``."""
        moments = [np.zeros(()), np.zeros(3), np.zeros(3)]
        n_pixels = 0
        for _, rgb in _chunks(patches):
            per_patch = _lab_moments(*self._lab_and_tissue(rgb))
            moments = [
                m + part.sum(axis=0) for m, part in zip(moments, per_patch, strict=True)
            ]
            n_pixels += rgb.shape[0] * rgb.shape[1]
        return moments, n_pixels

    def _fit(self, patches):
        (count, total, squares), _ = self._batch_moments(patches)
        if count == 0:
            raise ValueError(
                "X holds no tissue pixel to take the reference from: every pixel is "
                f"background (L* >= {100 * self.luminosity_threshold:g}) or black "
                "padding. Fit on patches that show tissue."
            )
        self.reference_mean_, self.reference_std_ = _mean_std(count, total, squares)

    def _transform_state(self, patches):
        if self.per_patch:
            return None
        (count, total, squares), n_pixels = self._batch_moments(patches)
        mean, std = _mean_std(count, total, squares)
        return mean, std, count >= self.min_tissue_fraction * n_pixels and count > 0

    def _normalize(self, rgb, state):
        lab, tissue = self._lab_and_tissue(rgb)
        if state is None:
            count, total, squares = _lab_moments(lab, tissue)
            mean, std = _mean_std(count, total, squares)
            enough = (count >= self.min_tissue_fraction * rgb.shape[1]) & (count > 0)
        else:
            mean, std, enough = (
                np.broadcast_to(value, (len(rgb), *np.shape(value))) for value in state
            )
        scale = np.ones_like(std)
        np.divide(self.reference_std_, std, out=scale, where=std > _EPS)
        matched = (lab - mean[:, None]) * scale[:, None] + self.reference_mean_
        changed = (tissue & enough[:, None])[..., None]
        return np.where(changed, _from_lab(matched), rgb)


# -- Macenko ------------------------------------------------------------------------


def _optical_density(rgb: np.ndarray) -> np.ndarray:
    """Beer-Lambert optical density of 0-255 values; white (255) is 0."""
    return -np.log((rgb + 1.0) / 256.0)


def _from_optical_density(od: np.ndarray) -> np.ndarray:
    return 256.0 * np.exp(-od) - 1.0


def _masked_percentile(values: np.ndarray, mask: np.ndarray, q) -> np.ndarray:
    """Percentiles ``q`` of each row's masked values, ``(m, len(q))``.

    numpy's default ("linear") interpolation, vectorised over rows where
    ``np.nanpercentile`` would loop; NaN for a row with no masked value.
    """
    q = np.asarray(q, dtype=np.float64)
    ordered = np.sort(np.where(mask, values, np.inf), axis=1)
    count = mask.sum(axis=1)[:, None]
    position = np.clip(q / 100.0 * (count - 1), 0, None)
    below = np.floor(position).astype(np.intp)
    above = np.clip(np.minimum(below + 1, count - 1), 0, None)
    low = np.take_along_axis(ordered, below, axis=1)
    high = np.take_along_axis(ordered, above, axis=1)
    with np.errstate(invalid="ignore"):
        result = low + (high - low) * (position - below)
    return np.where(count > 0, result, np.nan)


def _stain_matrices(od: np.ndarray, tissue: np.ndarray, alpha: float):
    """Macenko's haematoxylin and eosin vectors per row: ``(m, 3, 2)``.

    Also returns whether each estimate is usable: at least 3 tissue pixels, finite,
    and two stain vectors at least a degree apart.
    """
    count = tissue.sum(axis=1)
    weights = tissue[..., None]
    mean = (od * weights).sum(axis=1) / np.maximum(count, 1)[:, None]
    centred = (od - mean[:, None]) * weights
    covariance = np.swapaxes(centred, 1, 2) @ centred
    covariance /= np.maximum(count - 1, 1)[:, None, None]
    # eigh sorts eigenvalues in ascending order: the plane of the two largest.
    plane = np.linalg.eigh(covariance)[1][:, :, [2, 1]]
    # eigh's signs are arbitrary: the first axis must point into positive density
    # for the angles to be measured from it (the second's sign does not matter,
    # the percentiles being taken at both ends).
    plane[:, :, 0] *= np.where(plane[:, :, 0].sum(axis=1) < 0, -1.0, 1.0)[:, None]
    projected = od @ plane
    angle = np.arctan2(projected[..., 1], projected[..., 0])
    low, high = _masked_percentile(angle, tissue, [alpha, 100.0 - alpha]).T
    v_low, v_high = (
        (plane @ np.stack([np.cos(theta), np.sin(theta)], -1)[..., None])[..., 0]
        for theta in (low, high)
    )
    # Haematoxylin absorbs red more than eosin does: its red density is the larger.
    h_first = (v_low[:, 0] > v_high[:, 0])[:, None]
    stains = np.stack(
        [np.where(h_first, v_low, v_high), np.where(h_first, v_high, v_low)], axis=-1
    )
    usable = (
        (count >= 3)
        & np.isfinite(stains).all(axis=(1, 2))
        & (np.abs(high - low) >= np.deg2rad(1.0))
    )
    return stains, usable


def _concentrations(od: np.ndarray, stains: np.ndarray) -> np.ndarray:
    """Least-squares stain concentrations, ``(m, pixels, 2)``."""
    return od @ np.swapaxes(np.linalg.pinv(stains), 1, 2)


class MacenkoNormalizer(_StainNormalizer):
    """Normalise H&E stains to a reference by Macenko's method.

    For each patch, and once for the reference (Macenko et al. 2009):

    1. Optical density ``OD = -ln((I + 1) / 256)`` per channel (white is 0).
    2. Tissue pixels: OD at least ``beta`` in every channel, not pure black.
    3. The plane of the two largest eigenvectors of the tissue ODs' covariance;
       each OD projected on it has an angle; the directions at the ``alpha`` and
       ``100 - alpha`` percentiles of the angles are the two stain vectors, the one
       with the larger red density taken as haematoxylin.
    4. Concentrations of both stains in every pixel by least squares.
    5. The patch is rebuilt with the reference's stain vectors and its
       concentrations scaled so that their ``max_percentile`` percentile over its
       tissue pixels matches the reference's.

    All patches of a chunk are processed at once (batched eigen-decompositions and
    percentiles). White (255) has no density and stays white; near-white background
    is rebuilt from its small concentrations and stays near white (a grey of 245
    comes back within about 10 of it, its grey projected onto the stains); zero
    padding stays black.

    A patch with too little tissue for a stable estimate (a share of tissue pixels
    below ``min_tissue_fraction``, fewer than 3 tissue pixels, or two stain vectors
    found less than a degree apart) is deconvolved with the reference's stain
    vectors and its concentrations are not rescaled: its colours are then only
    projected onto the reference's stains, never made NaN.

    Parameters
    ----------
    alpha : float in (0, 50), default=1.0
        Percentile of the angles taken as each extreme stain direction; a small
        ``alpha`` instead of the extreme angles makes the estimate robust.
    beta : float > 0, default=0.15
        Least optical density, in every channel, of a tissue pixel (0.15 is about
        a value of 219 of 255).
    max_percentile : float in (0, 100], default=99.0
        Percentile of each stain's concentrations matched to the reference's.
    min_tissue_fraction : float in [0, 1], default=0.1
        Least share of tissue pixels for a patch's own stain estimate.
    patch_shape : tuple of int, default=(50, 50, 3)
        ``(height, width, 3)`` of the patches; reads 2-D flattened input.

    Attributes
    ----------
    stain_matrix_ : ndarray of shape (2, 3)
        The reference's haematoxylin (row 0) and eosin (row 1) optical-density
        vectors, of unit length. ``fit`` estimates them from at most 1,024 patches of
        ``X``, evenly spaced through it.
    max_concentrations_ : ndarray of shape (2,)
        The reference's ``max_percentile`` percentile of each stain's concentration.
    n_features_in_ : int
        ``height * width * 3``.
    feature_names_in_ : ndarray of str
        Column names, where ``fit`` was given a DataFrame of flattened patches.

    See Also
    --------
    ReinhardNormalizer : Match colour statistics in CIE Lab.
    idc_sklearn.augmentation.hed_jitter : Random stain changes for training.

    References
    ----------
    M. Macenko, M. Niethammer, J. S. Marron, D. Borland, J. T. Woosley, X. Guan,
    C. Schmitt and N. E. Thomas, "A method for normalizing histology slides for
    quantitative analysis", IEEE ISBI 2009, 1107-1110.

    Examples
    --------
    >>> from idc_sklearn.datasets import make_idc_patches
    >>> from idc_sklearn.stain import MacenkoNormalizer
    >>> idc = make_idc_patches(n_patients=2, patches_per_patient=4, random_state=0)
    >>> reference, other = idc.data[:4], idc.data[4:]  # two patients' patches
    >>> normalizer = MacenkoNormalizer().fit(reference)
    >>> normalizer.stain_matrix_.shape  # haematoxylin and eosin, unit vectors
    (2, 3)
    >>> normalizer.transform(other).shape
    (4, 50, 50, 3)
    """

    _parameter_constraints: dict = {
        **_StainNormalizer._parameter_constraints,
        "alpha": [Interval(Real, 0, 50, closed="neither")],
        "beta": [Interval(Real, 0, None, closed="neither")],
        "max_percentile": [Interval(Real, 0, 100, closed="right")],
    }

    def __init__(
        self,
        alpha: float = 1.0,
        beta: float = 0.15,
        max_percentile: float = 99.0,
        min_tissue_fraction: float = 0.1,
        patch_shape: tuple[int, int, int] = DEFAULT_PATCH_SHAPE,
    ):
        self.alpha = alpha
        self.beta = beta
        self.max_percentile = max_percentile
        self.min_tissue_fraction = min_tissue_fraction
        self.patch_shape = patch_shape

    def _density_and_tissue(self, rgb):
        od = _optical_density(rgb)
        return od, (od >= self.beta).all(axis=-1) & ~_is_padding(rgb)

    def _fit(self, patches):
        chosen = np.unique(
            np.linspace(0, len(patches) - 1, min(len(patches), _FIT_PATCHES)).round()
        ).astype(np.intp)
        rgb = patches[chosen].reshape(1, -1, 3).astype(np.float64)
        od, tissue = self._density_and_tissue(rgb)
        stains, usable = _stain_matrices(od, tissue, self.alpha)
        if not usable[0]:
            raise ValueError(
                f"X holds {int(tissue.sum())} tissue pixels (optical density >= "
                f"beta={self.beta:g} in every channel) with two distinct stains; "
                "too few to estimate the reference's stain vectors. Fit on patches "
                "that show stained tissue."
            )
        self.stain_matrix_ = stains[0].T
        self.max_concentrations_ = self._maxima(_concentrations(od, stains), tissue)[0]

    def _maxima(self, concentrations, tissue):
        """Each stain's ``max_percentile`` percentile over tissue, ``(m, 2)``."""
        return np.concatenate(
            [
                _masked_percentile(c, tissue, [self.max_percentile])
                for c in np.moveaxis(concentrations, -1, 0)
            ],
            axis=1,
        )

    def _normalize(self, rgb, state):
        od, tissue = self._density_and_tissue(rgb)
        stains, usable = _stain_matrices(od, tissue, self.alpha)
        usable &= tissue.sum(axis=1) >= self.min_tissue_fraction * rgb.shape[1]
        stains[~usable] = self.stain_matrix_.T
        concentrations = _concentrations(od, stains)
        maxima = self._maxima(concentrations, tissue)
        scale = np.ones_like(maxima)
        rescale = usable[:, None] & (maxima > _EPS)
        np.divide(self.max_concentrations_, maxima, out=scale, where=rescale)
        rebuilt = (concentrations * scale[:, None]) @ self.stain_matrix_
        return np.where(
            _is_padding(rgb)[..., None], rgb, _from_optical_density(rebuilt)
        )

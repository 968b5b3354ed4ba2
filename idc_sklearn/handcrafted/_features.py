"""Handcrafted colour and texture features of patches, as sklearn transformers.

Every transformer takes patches as a 4-D ``(n, height, width, 3)`` array or its 2-D
flattened form ``(n, height * width * 3)`` (read through ``patch_shape``) and returns
a float64 ``(n, n_features)`` array. They are stateless: ``fit`` validates and records
``n_features_in_``, ``transform`` may be called without it.

Input scale
-----------
All input is read on the 0-255 scale, whatever its dtype: uint8 and a float array
holding the same 0-255 values give identical features. The transformers divide by 255
themselves before calling scikit-image, because ``skimage.util.img_as_float`` leaves
float images unscaled and assumes they already lie in [0, 1]. Values outside [0, 255]
are rejected; a float array already scaled to [0, 1] is *not* detected and would be
read as near-black patches, so pass raw pixel values.

The colour transformers convert a whole stack of patches at once (scikit-image's
colour conversions work on ``(..., 3)`` arrays), in chunks that bound the float
copy. LBP, GLCM and HOG are per image in scikit-image, so they loop over patches;
their ``n_jobs`` spreads chunks of patches over joblib workers.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs
from skimage.color import rgb2gray, rgb2hed, rgb2hsv
from skimage.feature import graycomatrix, graycoprops, hog, local_binary_pattern
from skimage.util import img_as_ubyte
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions

from .._checks import FLOAT64_CHUNK_ROWS, check_rgb_patches, float64_chunks
from ..patches import DEFAULT_PATCH_SHAPE, check_rgb_patch_shape

__all__ = [
    "ColorHistogram",
    "ColorMoments",
    "GLCMFeatures",
    "HOGFeatures",
    "LBPFeatures",
]

_CHANNELS = {"rgb": ("r", "g", "b"), "hsv": ("h", "s", "v"), "hed": ("h", "e", "d")}


def _hed_upper_bounds() -> np.ndarray:
    """Largest H, E and D value a uint8 colour without a zero channel can produce.

    Stain concentrations are linear in optical density, so each maximum lies at a
    corner of the colour cube; pure-black channels (value 0) are the only ones that
    go higher, and their values are clipped into the last bin.
    """
    corners = np.array(np.meshgrid([1, 255], [1, 255], [1, 255])).reshape(3, -1).T
    return rgb2hed(corners.astype(np.uint8)[None]).reshape(-1, 3).max(axis=0)


_FULL_RANGE = {
    "rgb": np.array([[0.0, 1.0]] * 3),
    "hsv": np.array([[0.0, 1.0]] * 3),
    "hed": np.column_stack([np.zeros(3), _hed_upper_bounds()]),
}

_GLCM_PROPERTIES = (
    "contrast",
    "dissimilarity",
    "homogeneity",
    "energy",
    "correlation",
    "ASM",
    "mean",
    "variance",
    "std",
    "entropy",
)


def _invalid(owner: object, param: str, expected: str, value) -> ValueError:
    return ValueError(
        f"The {param!r} parameter of {type(owner).__name__} must be {expected}; "
        f"got {value!r}."
    )


def _check_int_pair(owner: object, param: str, value) -> tuple[int, int]:
    ok = (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, Integral) and not isinstance(v, bool) for v in value)
        and all(v > 0 for v in value)
    )
    if not ok:
        raise _invalid(owner, param, "a pair (rows, cols) of positive ints", value)
    return int(value[0]), int(value[1])


def _to_color_space(rgb: np.ndarray, color_space: str) -> np.ndarray:
    if color_space == "hsv":
        return rgb2hsv(rgb, channel_axis=-1)
    if color_space == "hed":
        return rgb2hed(rgb, channel_axis=-1)
    return rgb


def _to_gray(patches: np.ndarray) -> np.ndarray:
    """Luminance in [0, 1], ``(n, height, width)``, of 0-255 patches."""
    rgb = patches.astype(np.float64) / 255.0
    # Rounding can carry the weighted sum of three 1.0 channels just past 1.0.
    return np.clip(rgb2gray(rgb, channel_axis=-1), 0.0, 1.0)


class _PatchTransformer(TransformerMixin, BaseEstimator):
    """Shared validation of stateless patch-to-feature transformers."""

    _parameter_constraints: dict = {"patch_shape": "no_validation"}

    def _check_params(self) -> tuple[int, int, int]:
        """Validate every parameter; return the checked ``patch_shape``."""
        self._validate_params()
        return check_rgb_patch_shape(self.patch_shape, self)

    def fit(self, X, y=None):
        """Validate the parameters and ``X``; nothing is learnt.

        Parameters
        ----------
        X : array-like of shape (n, height, width, 3) or (n, height * width * 3)
            Patches on the 0-255 scale.
        y : None
            Ignored.

        Returns
        -------
        self : object
        """
        self._check_input(X, reset=True)
        return self

    def transform(self, X) -> np.ndarray:
        """Compute the features of each patch.

        Parameters
        ----------
        X : array-like of shape (n, height, width, 3) or (n, height * width * 3)
            Patches on the 0-255 scale (uint8, or float holding 0-255 values).

        Returns
        -------
        features : ndarray of shape (n, n_features), float64
        """
        patches, shape = self._check_input(X)
        return self._transform(patches, shape)

    def fit_transform(self, X, y=None, **fit_params) -> np.ndarray:
        """``fit`` then ``transform``, validating ``X`` once.

        Parameters
        ----------
        X : array-like of shape (n, height, width, 3) or (n, height * width * 3)
            Patches on the 0-255 scale.
        y : None
            Ignored.

        Returns
        -------
        features : ndarray of shape (n, n_features), float64
        """
        patches, shape = self._check_input(X, reset=True)
        return self._transform(patches, shape)

    def _check_input(self, X, *, reset: bool = False):
        """Check the parameters and ``X``; return the patches and their shape.

        ``reset`` (in ``fit``) records ``n_features_in_``, as sklearn's
        ``validate_data`` does.
        """
        shape = self._check_params()
        patches = check_rgb_patches(X, shape, self)
        if reset:
            self.n_features_in_ = math.prod(shape)
        return patches, shape

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Names of the output features.

        Parameters
        ----------
        input_features : None
            Ignored: the features do not map to input columns.

        Returns
        -------
        names : ndarray of str
        """
        shape = self._check_params()
        return np.asarray(self._feature_names(shape), dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        return tags


class _ColorTransformer(_PatchTransformer):
    _parameter_constraints: dict = {
        **_PatchTransformer._parameter_constraints,
        "color_space": [StrOptions(set(_CHANNELS))],
    }

    def _transform(self, patches, shape):
        out = np.empty((patches.shape[0], self._n_features(shape)), dtype=np.float64)
        for rows, chunk in float64_chunks(patches):
            chunk /= 255.0
            values = _to_color_space(chunk, self.color_space)
            out[rows] = self._color_features(values.reshape(len(chunk), -1, 3))
        return out

    def _n_features(self, shape):
        return len(self._feature_names(shape))


class ColorHistogram(_ColorTransformer):
    """Per-channel colour histograms of patches.

    Each channel of the chosen colour space is binned into ``bins`` equal-width
    bins over ``value_range``; each histogram counts the fraction of the patch's
    pixels in each bin, so the features of a patch sum to 3.

    Parameters
    ----------
    color_space : {"rgb", "hsv", "hed"}, default="rgb"
        ``"rgb"``: red, green, blue in [0, 1]. ``"hsv"``: hue, saturation, value in
        [0, 1] (``skimage.color.rgb2hsv``). ``"hed"``: haematoxylin, eosin and DAB
        concentrations from colour deconvolution (``skimage.color.rgb2hed``).
    bins : int, default=16
        Bins per channel, at least 2.
    value_range : None, (low, high) or sequence of 3 (low, high), default=None
        Range binned in each channel; values outside it fall into the first or last
        bin. ``None`` is the colour space's full range: [0, 1] for ``"rgb"`` and
        ``"hsv"``; for ``"hed"``, [0, m] per channel with m the largest value any
        uint8 colour without a zero channel produces (about 0.75, 0.46, 0.63).
        Stained tissue fills only the low end of the full HED range (haematoxylin
        rarely exceeds 0.15 in H&E patches), so a narrower range such as
        ``(0, 0.15)`` gives finer HED histograms.
    patch_shape : tuple of int, default=(50, 50, 3)
        ``(height, width, 3)`` of the patches; reads 2-D flattened input.

    Attributes
    ----------
    n_features_in_ : int
        ``height * width * 3``, set by ``fit``.

    See Also
    --------
    ColorMoments : Mean, standard deviation and skewness per channel.

    Examples
    --------
    >>> import numpy as np
    >>> from idc_sklearn.handcrafted import ColorHistogram
    >>> X = np.random.default_rng(0).integers(0, 256, (4, 50, 50, 3), dtype=np.uint8)
    >>> ColorHistogram(color_space="hsv", bins=8).fit_transform(X).shape
    (4, 24)
    """

    _parameter_constraints: dict = {
        **_ColorTransformer._parameter_constraints,
        "bins": [Interval(Integral, 2, None, closed="left")],
        "value_range": [None, "array-like"],
    }

    def __init__(
        self,
        color_space: str = "rgb",
        bins: int = 16,
        value_range=None,
        patch_shape: tuple[int, int, int] = DEFAULT_PATCH_SHAPE,
    ):
        self.color_space = color_space
        self.bins = bins
        self.value_range = value_range
        self.patch_shape = patch_shape

    def _ranges(self) -> np.ndarray:
        if self.value_range is None:
            return _FULL_RANGE[self.color_space]
        expected = "None, a pair (low, high) with low < high, or 3 such pairs"
        try:
            ranges = np.asarray(self.value_range, dtype=np.float64)
        except (TypeError, ValueError):
            raise _invalid(self, "value_range", expected, self.value_range) from None
        if ranges.shape == (2,):
            ranges = np.tile(ranges, (3, 1))
        if (
            ranges.shape != (3, 2)
            or not np.isfinite(ranges).all()
            or not (ranges[:, 0] < ranges[:, 1]).all()
        ):
            raise _invalid(self, "value_range", expected, self.value_range)
        return ranges

    def _check_params(self):
        shape = super()._check_params()
        self._ranges()
        return shape

    def _color_features(self, values):
        n, n_pixels, _ = values.shape
        ranges = self._ranges()
        low, width = ranges[:, 0], ranges[:, 1] - ranges[:, 0]
        index = np.floor((values - low) / width * self.bins).astype(np.intp)
        np.clip(index, 0, self.bins - 1, out=index)
        # One bincount for the whole chunk: offset every (patch, channel) pair into
        # its own run of bins.
        index += np.arange(3, dtype=np.intp) * self.bins
        index += (np.arange(n, dtype=np.intp) * 3 * self.bins)[:, None, None]
        counts = np.bincount(index.ravel(), minlength=n * 3 * self.bins)
        return counts.reshape(n, 3 * self.bins) / n_pixels

    def _feature_names(self, shape):
        return [
            f"{self.color_space}_{channel}_bin{k:02d}"
            for channel in _CHANNELS[self.color_space]
            for k in range(self.bins)
        ]


class ColorMoments(_ColorTransformer):
    """Mean, standard deviation and skewness of each colour channel.

    Moments are of the channel values in the chosen colour space (RGB and HSV on
    [0, 1]). The skewness is the biased sample skewness (``scipy.stats.skew``'s
    default), set to 0 for a constant channel, where it is undefined.

    Parameters
    ----------
    color_space : {"rgb", "hsv", "hed"}, default="rgb"
        See :class:`ColorHistogram`.
    patch_shape : tuple of int, default=(50, 50, 3)
        ``(height, width, 3)`` of the patches; reads 2-D flattened input.

    Attributes
    ----------
    n_features_in_ : int
        ``height * width * 3``, set by ``fit``.

    See Also
    --------
    ColorHistogram : Per-channel colour histograms.

    Examples
    --------
    >>> import numpy as np
    >>> from idc_sklearn.handcrafted import ColorMoments
    >>> X = np.random.default_rng(0).integers(0, 256, (4, 50, 50, 3), dtype=np.uint8)
    >>> moments = ColorMoments(color_space="hed").fit(X)
    >>> moments.get_feature_names_out()[:3].tolist()
    ['hed_h_mean', 'hed_h_std', 'hed_h_skew']
    """

    def __init__(
        self,
        color_space: str = "rgb",
        patch_shape: tuple[int, int, int] = DEFAULT_PATCH_SHAPE,
    ):
        self.color_space = color_space
        self.patch_shape = patch_shape

    def _color_features(self, values):
        # Moments of the values less each patch's first pixel: a constant channel
        # then becomes exact zeros, with no rounding residue posing as a spread.
        shift = values[:, :1, :]
        centred = values - shift
        offset = centred.mean(axis=1)
        mean = shift[:, 0, :] + offset
        centred -= offset[:, None, :]
        var = np.mean(centred**2, axis=1)
        third = np.mean(centred**3, axis=1)
        skew = np.divide(third, var**1.5, out=np.zeros_like(third), where=var > 0)
        return np.stack([mean, np.sqrt(var), skew], axis=2).reshape(len(values), 9)

    def _feature_names(self, shape):
        return [
            f"{self.color_space}_{channel}_{moment}"
            for channel in _CHANNELS[self.color_space]
            for moment in ("mean", "std", "skew")
        ]


class _PerPatchTransformer(_PatchTransformer):
    """Features that scikit-image computes one grey-level image at a time."""

    _parameter_constraints: dict = {
        **_PatchTransformer._parameter_constraints,
        "n_jobs": [Integral, None],
    }

    def _transform(self, patches, shape):
        n = patches.shape[0]
        n_workers = effective_n_jobs(self.n_jobs)
        rows = max(1, min(FLOAT64_CHUNK_ROWS, math.ceil(n / n_workers)))
        parts = Parallel(n_jobs=self.n_jobs)(
            delayed(self._chunk_features)(patches[start : start + rows], shape)
            for start in range(0, n, rows)
        )
        return np.concatenate(parts, axis=0)

    def _chunk_features(self, chunk, shape):
        gray = _to_gray(chunk)
        out = np.empty((len(chunk), len(self._feature_names(shape))), np.float64)
        for i, image in enumerate(gray):
            out[i] = self._image_features(image)
        return out


class LBPFeatures(_PerPatchTransformer):
    """Histogram of rotation-invariant uniform local binary patterns.

    Computed on the grey-level patch (``skimage.color.rgb2gray``, as uint8) with
    ``skimage.feature.local_binary_pattern(method="uniform")``, whose codes run
    from 0 to ``n_points + 1``; the last code collects every non-uniform pattern.
    Features are the fraction of pixels with each code.

    Parameters
    ----------
    n_points : int, default=8
        Circularly symmetric neighbours (``P`` in scikit-image).
    radius : float, default=1
        Radius of the circle (``R`` in scikit-image).
    n_jobs : int or None, default=None
        joblib workers over chunks of patches; ``None`` is 1 unless in a
        ``joblib.parallel_config`` context, -1 uses every core.
    patch_shape : tuple of int, default=(50, 50, 3)
        ``(height, width, 3)`` of the patches; reads 2-D flattened input.

    Attributes
    ----------
    n_features_in_ : int
        ``height * width * 3``, set by ``fit``.

    See Also
    --------
    GLCMFeatures : Grey-level co-occurrence statistics.
    HOGFeatures : Histograms of oriented gradients.

    Examples
    --------
    >>> import numpy as np
    >>> from idc_sklearn.handcrafted import LBPFeatures
    >>> X = np.random.default_rng(0).integers(0, 256, (4, 50, 50, 3), dtype=np.uint8)
    >>> LBPFeatures(n_points=8, radius=1).fit_transform(X).shape
    (4, 10)
    """

    _parameter_constraints: dict = {
        **_PerPatchTransformer._parameter_constraints,
        "n_points": [Interval(Integral, 1, None, closed="left")],
        "radius": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(
        self,
        n_points: int = 8,
        radius: float = 1,
        n_jobs: int | None = None,
        patch_shape: tuple[int, int, int] = DEFAULT_PATCH_SHAPE,
    ):
        self.n_points = n_points
        self.radius = radius
        self.n_jobs = n_jobs
        self.patch_shape = patch_shape

    def _chunk_features(self, chunk, shape):
        gray = img_as_ubyte(_to_gray(chunk))
        n_codes = self.n_points + 2
        out = np.empty((len(chunk), n_codes), np.float64)
        for i, image in enumerate(gray):
            codes = local_binary_pattern(
                image, self.n_points, self.radius, method="uniform"
            )
            out[i] = np.bincount(codes.astype(np.intp).ravel(), minlength=n_codes)
        return out / (shape[0] * shape[1])

    def _feature_names(self, shape):
        return [f"lbp_{code}" for code in range(self.n_points + 2)]


class GLCMFeatures(_PerPatchTransformer):
    """Grey-level co-occurrence matrix statistics (Haralick-style texture).

    The grey-level patch is quantised to ``levels`` grey levels, its normalised
    co-occurrence matrix is computed for every distance and angle
    (``skimage.feature.graycomatrix``), and each property is read from it
    (``skimage.feature.graycoprops``): one feature per property, distance and
    angle.

    Parameters
    ----------
    distances : sequence of int, default=(1,)
        Pixel pair distances, positive.
    angles : sequence of float, default=(0, pi/4, pi/2, 3*pi/4)
        Pixel pair angles in radians.
    levels : int, default=32
        Grey levels after quantisation, 2 to 256.
    properties : sequence of str, default=("contrast", "dissimilarity", \
"homogeneity", "energy", "correlation", "ASM")
        Any of the properties of ``skimage.feature.graycoprops``: "contrast",
        "dissimilarity", "homogeneity", "energy", "correlation", "ASM", "mean",
        "variance", "std", "entropy".
    symmetric : bool, default=True
        Count each pixel pair in both orders.
    n_jobs : int or None, default=None
        joblib workers over chunks of patches.
    patch_shape : tuple of int, default=(50, 50, 3)
        ``(height, width, 3)`` of the patches; reads 2-D flattened input.

    Attributes
    ----------
    n_features_in_ : int
        ``height * width * 3``, set by ``fit``.

    See Also
    --------
    LBPFeatures : Local binary pattern histograms.

    Examples
    --------
    >>> import numpy as np
    >>> from idc_sklearn.handcrafted import GLCMFeatures
    >>> X = np.random.default_rng(0).integers(0, 256, (4, 50, 50, 3), dtype=np.uint8)
    >>> glcm = GLCMFeatures(properties=("contrast", "correlation")).fit(X)
    >>> glcm.get_feature_names_out().tolist()[:2]
    ['glcm_contrast_d1_a0', 'glcm_contrast_d1_a45']
    """

    _parameter_constraints: dict = {
        **_PerPatchTransformer._parameter_constraints,
        "distances": ["array-like"],
        "angles": ["array-like"],
        "levels": [Interval(Integral, 2, 256, closed="both")],
        "properties": ["array-like"],
        "symmetric": ["boolean"],
    }

    def __init__(
        self,
        distances=(1,),
        angles=(0.0, math.pi / 4, math.pi / 2, 3 * math.pi / 4),
        levels: int = 32,
        properties=(
            "contrast",
            "dissimilarity",
            "homogeneity",
            "energy",
            "correlation",
            "ASM",
        ),
        symmetric: bool = True,
        n_jobs: int | None = None,
        patch_shape: tuple[int, int, int] = DEFAULT_PATCH_SHAPE,
    ):
        self.distances = distances
        self.angles = angles
        self.levels = levels
        self.properties = properties
        self.symmetric = symmetric
        self.n_jobs = n_jobs
        self.patch_shape = patch_shape

    def _check_params(self):
        shape = super()._check_params()
        distances = list(np.asarray(self.distances).ravel())
        if not distances or not all(
            isinstance(d, Integral) and not isinstance(d, (bool, np.bool_)) and d > 0
            for d in distances
        ):
            expected = "a non-empty sequence of positive ints"
            raise _invalid(self, "distances", expected, self.distances)
        angles = np.asarray(self.angles)
        if (
            angles.ndim != 1
            or angles.size == 0
            or not np.issubdtype(angles.dtype, np.number)
            or not np.isfinite(angles).all()
        ):
            raise _invalid(
                self, "angles", "a non-empty sequence of angles in radians", self.angles
            )
        properties = self.properties
        if (
            isinstance(properties, str)
            or len(properties) == 0
            or not all(p in _GLCM_PROPERTIES for p in properties)
        ):
            raise _invalid(
                self,
                "properties",
                f"a non-empty sequence drawn from {_GLCM_PROPERTIES}",
                properties,
            )
        return shape

    def _chunk_features(self, chunk, shape):
        gray = _to_gray(chunk)
        quantised = np.minimum(gray * self.levels, self.levels - 1).astype(np.uint8)
        out = np.empty((len(chunk), len(self._feature_names(shape))), np.float64)
        for i, image in enumerate(quantised):
            matrix = graycomatrix(
                image,
                distances=list(self.distances),
                angles=list(self.angles),
                levels=self.levels,
                symmetric=self.symmetric,
                normed=True,
            )
            out[i] = np.concatenate(
                [graycoprops(matrix, prop).ravel() for prop in self.properties]
            )
        return out

    def _feature_names(self, shape):
        return [
            f"glcm_{prop}_d{d}_a{np.degrees(a):g}"
            for prop in self.properties
            for d in self.distances
            for a in self.angles
        ]


class HOGFeatures(_PerPatchTransformer):
    """Histograms of oriented gradients of the grey-level patch.

    ``skimage.feature.hog`` on the grey-level patch (``skimage.color.rgb2gray``),
    with scikit-image's defaults. A 50x50 patch with 8x8-pixel cells and 3x3-cell
    blocks has 4x4 blocks of 3*3*9 values: 1,296 features.

    Parameters
    ----------
    orientations : int, default=9
        Orientation bins.
    pixels_per_cell : (int, int), default=(8, 8)
        Cell size in pixels.
    cells_per_block : (int, int), default=(3, 3)
        Block size in cells; the patch must hold at least one block.
    block_norm : {"L1", "L1-sqrt", "L2", "L2-Hys"}, default="L2-Hys"
        Block normalisation.
    transform_sqrt : bool, default=False
        Power-law compression before the gradients.
    n_jobs : int or None, default=None
        joblib workers over chunks of patches.
    patch_shape : tuple of int, default=(50, 50, 3)
        ``(height, width, 3)`` of the patches; reads 2-D flattened input.

    Attributes
    ----------
    n_features_in_ : int
        ``height * width * 3``, set by ``fit``.

    See Also
    --------
    LBPFeatures : Local binary pattern histograms.

    Examples
    --------
    >>> import numpy as np
    >>> from idc_sklearn.handcrafted import HOGFeatures
    >>> X = np.random.default_rng(0).integers(0, 256, (4, 50, 50, 3), dtype=np.uint8)
    >>> HOGFeatures(pixels_per_cell=(16, 16), cells_per_block=(2, 2)).fit_transform(
    ...     X
    ... ).shape
    (4, 144)
    """

    _parameter_constraints: dict = {
        **_PerPatchTransformer._parameter_constraints,
        "orientations": [Interval(Integral, 1, None, closed="left")],
        "pixels_per_cell": ["array-like"],
        "cells_per_block": ["array-like"],
        "block_norm": [StrOptions({"L1", "L1-sqrt", "L2", "L2-Hys"})],
        "transform_sqrt": ["boolean"],
    }

    def __init__(
        self,
        orientations: int = 9,
        pixels_per_cell: tuple[int, int] = (8, 8),
        cells_per_block: tuple[int, int] = (3, 3),
        block_norm: str = "L2-Hys",
        transform_sqrt: bool = False,
        n_jobs: int | None = None,
        patch_shape: tuple[int, int, int] = DEFAULT_PATCH_SHAPE,
    ):
        self.orientations = orientations
        self.pixels_per_cell = pixels_per_cell
        self.cells_per_block = cells_per_block
        self.block_norm = block_norm
        self.transform_sqrt = transform_sqrt
        self.n_jobs = n_jobs
        self.patch_shape = patch_shape

    def _blocks(self, shape) -> tuple[int, int]:
        cell = _check_int_pair(self, "pixels_per_cell", self.pixels_per_cell)
        block = _check_int_pair(self, "cells_per_block", self.cells_per_block)
        blocks = (
            shape[0] // cell[0] - block[0] + 1,
            shape[1] // cell[1] - block[1] + 1,
        )
        if min(blocks) < 1:
            raise ValueError(
                f"HOGFeatures with pixels_per_cell={self.pixels_per_cell!r} and "
                f"cells_per_block={self.cells_per_block!r} needs patches of at least "
                f"{cell[0] * block[0]}x{cell[1] * block[1]} pixels; patch_shape is "
                f"{tuple(self.patch_shape)!r}."
            )
        return blocks

    def _check_params(self):
        shape = super()._check_params()
        self._blocks(shape)
        return shape

    def _image_features(self, image):
        return hog(
            image,
            orientations=self.orientations,
            pixels_per_cell=tuple(self.pixels_per_cell),
            cells_per_block=tuple(self.cells_per_block),
            block_norm=self.block_norm,
            transform_sqrt=self.transform_sqrt,
            feature_vector=True,
        )

    def _feature_names(self, shape):
        # The order of skimage's feature vector: block row, block column, cell row
        # and column inside the block, orientation.
        rows, cols = self._blocks(shape)
        cell_rows, cell_cols = self.cells_per_block
        return [
            f"hog_b{r}_{c}_c{i}_{j}_o{o}"
            for r in range(rows)
            for c in range(cols)
            for i in range(cell_rows)
            for j in range(cell_cols)
            for o in range(self.orientations)
        ]

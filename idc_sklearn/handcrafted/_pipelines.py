"""Ready sklearn pipelines of handcrafted features and classical classifiers."""

from __future__ import annotations

import warnings

from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import KBinsDiscretizer, StandardScaler
from sklearn.svm import SVC

from ..patches import DEFAULT_PATCH_SHAPE, check_patch_shape
from ._features import (
    ColorHistogram,
    ColorMoments,
    GLCMFeatures,
    HOGFeatures,
    LBPFeatures,
)

__all__ = ["BASELINES", "make_baseline"]

_COLOR = ("color", "moments")
_TEXTURE = ("lbp", "glcm", "hog")


class _QuantileBins(KBinsDiscretizer):
    """KBinsDiscretizer that does not warn of ties.

    The features-hgb baseline bins its features at their quantiles before
    HistGradientBoosting (see ``make_baseline``). Histogram and LBP features with
    many equal values lose their repeated edges, and a histogram bin no training
    patch reaches is constant (one bin): both are expected there, and trees lose
    nothing by them.
    """

    def fit(self, X, y=None, sample_weight=None):
        with warnings.catch_warnings():
            for message in ("Bins whose width are too small", "Feature .* is constant"):
                warnings.filterwarnings("ignore", message, UserWarning)
            return super().fit(X, y, sample_weight=sample_weight)


def _features(names, patch_shape, n_jobs) -> FeatureUnion:
    factories = {
        "color": lambda: ColorHistogram(patch_shape=patch_shape),
        "moments": lambda: ColorMoments(patch_shape=patch_shape),
        "lbp": lambda: LBPFeatures(n_jobs=n_jobs, patch_shape=patch_shape),
        "glcm": lambda: GLCMFeatures(n_jobs=n_jobs, patch_shape=patch_shape),
        "hog": lambda: HOGFeatures(
            pixels_per_cell=(16, 16),
            cells_per_block=(2, 2),
            n_jobs=n_jobs,
            patch_shape=patch_shape,
        ),
    }
    return FeatureUnion([(name, factories[name]()) for name in names])


def _color_logreg(patch_shape, random_state, n_jobs) -> list:
    return [
        ("features", _features(_COLOR, patch_shape, n_jobs)),
        ("scale", StandardScaler()),
        (
            "clf",
            LogisticRegression(
                class_weight="balanced", max_iter=1000, random_state=random_state
            ),
        ),
    ]


def _texture_svm(patch_shape, random_state, n_jobs) -> list:
    return [
        ("features", _features(_TEXTURE, patch_shape, n_jobs)),
        ("scale", StandardScaler()),
        ("clf", SVC(class_weight="balanced", random_state=random_state)),
    ]


def _features_rf(patch_shape, random_state, n_jobs) -> list:
    return [
        ("features", _features(_COLOR + _TEXTURE, patch_shape, n_jobs)),
        (
            "clf",
            RandomForestClassifier(
                class_weight="balanced", n_jobs=n_jobs, random_state=random_state
            ),
        ),
    ]


def _features_hgb(patch_shape, random_state, n_jobs) -> list:
    return [
        ("features", _features(_COLOR + _TEXTURE, patch_shape, n_jobs)),
        (
            "bins",
            _QuantileBins(
                n_bins=255,
                encode="ordinal",
                strategy="quantile",
                quantile_method="averaged_inverted_cdf",
            ),
        ),
        (
            "clf",
            HistGradientBoostingClassifier(
                class_weight="balanced", random_state=random_state
            ),
        ),
    ]


# The steps of each baseline, built from (patch_shape, random_state, n_jobs); its
# keys, in this order, are BASELINES.
_STEPS = {
    "color-logreg": _color_logreg,
    "texture-svm": _texture_svm,
    "features-rf": _features_rf,
    "features-hgb": _features_hgb,
}
BASELINES = tuple(_STEPS)


def make_baseline(
    name: str,
    *,
    patch_shape: tuple[int, int, int] = DEFAULT_PATCH_SHAPE,
    random_state=None,
    n_jobs: int | None = None,
) -> Pipeline:
    """Build a classical baseline: handcrafted features and a sklearn classifier.

    Every pipeline has the steps ``features`` (a ``FeatureUnion`` whose parts are
    named ``color``, ``moments``, ``lbp``, ``glcm``, ``hog``), ``scale`` (where the
    classifier needs standardised features) and ``clf``, so parameters are tuned as
    ``features__color__bins``, ``features__hog__pixels_per_cell`` or ``clf__C``.
    All classifiers weight classes as ``"balanced"``, the IDC data being about 28%
    positive.

    - ``"color-logreg"``: RGB histograms (16 bins a channel) and RGB moments,
      ``StandardScaler``, ``LogisticRegression``.
    - ``"texture-svm"``: LBP, GLCM and HOG, ``StandardScaler``, ``SVC`` (RBF).
    - ``"features-rf"``: all five feature sets, ``RandomForestClassifier``.
    - ``"features-hgb"``: all five feature sets, binned at their quantiles
      (``KBinsDiscretizer``, 255 ordinal bins), ``HistGradientBoostingClassifier``.

    Why features-hgb bins first: given class weights, scikit-learn 1.7+'s
    HistGradientBoosting places its bin edges at *weighted* quantiles, one
    ``_weighted_percentile`` call per edge and feature, which took about 90% of its fit
    (about 20 s a fold in the README's main job); given at most 255 distinct values
    per feature it bins them as they are. The trees see the unweighted-quantile
    edges HistGradientBoosting uses without weights (trees do not care which
    monotone codes the bins carry), and the fit takes a tenth of the time.

    HOG uses 16x16-pixel cells in 2x2-cell blocks (144 features on a 50x50 patch)
    rather than scikit-image's 8x8 and 3x3 (1,296): with grouped 5-fold
    cross-validation on the real sample this scored as well or better with the SVC
    and the random forest, at a third to a tenth of the time. Patches must be at
    least 32x32 for it.

    ``"texture-svm"`` has no ``predict_proba``: ROC AUC and average precision are
    computed from its ``decision_function`` (as :data:`idc_sklearn.SCORING` does),
    which spares the internal 5-fold Platt calibration that probabilities cost,
    whose probabilities can disagree with ``predict``; sklearn 1.9 also deprecates
    ``SVC(probability=True)``. For :func:`idc_sklearn.patient_scores` pass its
    ``decision_function`` with ``threshold=0``, or, where probabilities are needed,
    set ``clf=CalibratedClassifierCV(SVC(class_weight="balanced"),
    ensemble=False)``.

    Parameters
    ----------
    name : str
        One of :data:`BASELINES`.
    patch_shape : tuple of int, default=(50, 50, 3)
        ``(height, width, 3)`` of the patches, given to every feature transformer so
        that 2-D flattened patches are read too.
    random_state : int, RandomState instance or None, default=None
        Seed of the classifier (LogisticRegression, SVC, RandomForest,
        HistGradientBoosting).
    n_jobs : int or None, default=None
        joblib workers for the per-patch features (LBP, GLCM, HOG) and the random
        forest.

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline
        Unfitted; takes patches ``(n, height, width, 3)`` or ``(n, height*width*3)``
        on the 0-255 scale.

    Raises
    ------
    ValueError
        For an unknown ``name``, listing the valid ones.

    Examples
    --------
    >>> import numpy as np
    >>> from idc_sklearn.handcrafted import make_baseline
    >>> rng = np.random.default_rng(0)
    >>> X = rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8)
    >>> y = np.arange(20) % 2
    >>> model = make_baseline("color-logreg", patch_shape=(32, 32, 3))
    >>> model.set_params(features__color__bins=8, clf__C=0.1).fit(X, y).predict(X).shape
    (20,)
    """
    if name not in BASELINES:
        raise ValueError(
            f"name must be one of {', '.join(map(repr, BASELINES))}; got {name!r}."
        )
    patch_shape = check_patch_shape(patch_shape)
    return Pipeline(_STEPS[name](patch_shape, random_state, n_jobs))

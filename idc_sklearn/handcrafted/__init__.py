"""Handcrafted patch features and the classical sklearn pipelines built on them.

numpy, scikit-image and scikit-learn only: importing this package never imports
torch, so ``make_baseline("color-logreg")`` runs where no deep-learning stack is
installed or wanted.
"""

from ._features import (
    ColorHistogram,
    ColorMoments,
    GLCMFeatures,
    HOGFeatures,
    LBPFeatures,
)
from ._pipelines import BASELINES, make_baseline

__all__ = [
    "BASELINES",
    "ColorHistogram",
    "ColorMoments",
    "GLCMFeatures",
    "HOGFeatures",
    "LBPFeatures",
    "make_baseline",
]

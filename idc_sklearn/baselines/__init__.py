"""Baselines: handcrafted patch features and the classical pipelines built on them."""

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

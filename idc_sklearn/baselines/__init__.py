"""Baselines: handcrafted patch features and the classical pipelines built on them."""

from ._cnn import CruzRoaCNNClassifier, JanowczykCNNClassifier
from ._cnn_networks import CruzRoaCNN, JanowczykCNN
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
    "CruzRoaCNN",
    "CruzRoaCNNClassifier",
    "JanowczykCNN",
    "JanowczykCNNClassifier",
    "ColorHistogram",
    "ColorMoments",
    "GLCMFeatures",
    "HOGFeatures",
    "LBPFeatures",
    "make_baseline",
]

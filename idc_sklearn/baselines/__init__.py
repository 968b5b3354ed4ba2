"""Every baseline in one namespace: handcrafted pipelines and the CNN baselines.

The two families live in :mod:`idc_sklearn.handcrafted` (no torch) and
:mod:`idc_sklearn.cnn_baselines` (torch); this package names both and imports each
family on first use (PEP 562), so ``from idc_sklearn.baselines import
make_baseline`` does not load torch.
"""

from __future__ import annotations

from idc_sklearn._lazy import lazy_namespace

_FAMILIES = {
    "idc_sklearn.handcrafted": (
        "BASELINES",
        "ColorHistogram",
        "ColorMoments",
        "GLCMFeatures",
        "HOGFeatures",
        "LBPFeatures",
        "make_baseline",
    ),
    "idc_sklearn.cnn_baselines": (
        "CruzRoaCNN",
        "CruzRoaCNNClassifier",
        "JanowczykCNN",
        "JanowczykCNNClassifier",
    ),
}
_WHERE = {name: module for module, names in _FAMILIES.items() for name in names}

__all__ = sorted(_WHERE)


__getattr__, __dir__ = lazy_namespace(__name__, _WHERE)

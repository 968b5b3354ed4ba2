"""Every baseline in one namespace: handcrafted pipelines and the CNN baselines.

The two families live in :mod:`idc_sklearn.handcrafted` (no torch) and
:mod:`idc_sklearn.cnn_baselines` (torch); this package names both and imports each
family on first use (PEP 562), so ``from idc_sklearn.baselines import
make_baseline`` does not load torch.
"""

from __future__ import annotations

import importlib

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


def __getattr__(name: str):
    try:
        module = _WHERE[name]
    except KeyError:
        msg = f"module 'idc_sklearn.baselines' has no attribute {name!r}"
        raise AttributeError(msg) from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_WHERE))

"""The widths of the MLBN Inception network: its defaults and the named presets.

Data only, no torch: the command line's ``--help`` shows the presets without loading
torch. :mod:`idc_sklearn.network` re-exports them, and ``MLBNInception`` takes the
defaults from here.
"""

from __future__ import annotations

from types import MappingProxyType

__all__ = ["DEFAULT_FILTERS", "DEFAULT_HEAD_UNITS", "PRESETS"]

# The authors' best model: ``filters`` are filters per branch (module outputs 4x).
DEFAULT_FILTERS = (64, 64, 128, 128, 256, 256, 512, 512)
DEFAULT_HEAD_UNITS = (256, 256)

#: Named widths of the MLBN Inception network, ``filters`` and ``head_units``, to
#: pass on as ``MLBNInceptionClassifier(**PRESETS["small"])`` or
#: ``MLBNInception(**PRESETS["small"])``. ``"paper"``: the network's defaults, the
#: authors' best model (about 33.8 M parameters); ``"medium"``: half its widths
#: (8.4 M, a quarter of its work per patch); ``"small"``: an eighth (0.83 M), the
#: CPU size of the examples, benchmarks and pretrained model; ``"tiny"``: the
#: smallest that trains, for smoke runs, its scores meaningless. Read-only.
PRESETS = MappingProxyType(
    {
        "paper": MappingProxyType(
            {"filters": DEFAULT_FILTERS, "head_units": DEFAULT_HEAD_UNITS}
        ),
        "medium": MappingProxyType(
            {"filters": (32, 32, 64, 64, 128, 128, 256, 256), "head_units": (128, 128)}
        ),
        "small": MappingProxyType(
            {"filters": (8, 8, 16, 16, 32, 32, 64, 64), "head_units": (64, 64)}
        ),
        "tiny": MappingProxyType({"filters": (3, 3), "head_units": (8,)}),
    }
)

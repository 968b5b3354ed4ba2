"""The CNN baselines of the MLBN paper's table: their networks and estimators.

Torch networks in ``_networks.py`` (torch only), estimators on
:class:`~idc_sklearn.PatchNetClassifier`'s machinery in ``_classifiers.py``.
"""

from ._classifiers import CruzRoaCNNClassifier, JanowczykCNNClassifier
from ._networks import CruzRoaCNN, JanowczykCNN

__all__ = [
    "CruzRoaCNN",
    "CruzRoaCNNClassifier",
    "JanowczykCNN",
    "JanowczykCNNClassifier",
]

"""Figures: comparison tables, training histories, curves and slide heatmaps.

matplotlib and sklearn's displays only; no torch (a skorch history is read as the
list of per-epoch dicts it is). Figures are built with
:class:`matplotlib.figure.Figure` rather than pyplot, so plotting neither selects nor
changes the user's backend, works headless and leaves no figure open in pyplot; in
a notebook the returned figure displays itself, elsewhere ``path=`` or
``fig.savefig`` writes it.

Every function but :func:`plot_comparison` returns ``(figure, axes, artists)``: the
figure, the axes drawn on, and the artists or sklearn displays a caller may restyle.

- ``_comparison.py``: :func:`plot_comparison`, the chart of a comparison table.
- ``_differences.py``: :func:`plot_paired_differences` (a forest plot of a
  comparison's paired differences), :func:`plot_patient_scores`.
- ``_training.py``: :func:`plot_learning_curves`, from a skorch history.
- ``_classification.py``: :func:`plot_roc_curves`,
  :func:`plot_precision_recall_curves`, :func:`plot_confusion_matrix`.
- ``_slides.py``: :func:`slide_image`, :func:`plot_slide_heatmap`,
  :func:`plot_patient_heatmap` (one probability map, or several side by side: the
  HTML report's slides).
- ``_wholeslide.py``: :func:`plot_slide_prediction`, a whole-slide prediction from
  its arrays (``SlideResult.plot`` passes them; this package never imports
  ``wholeslide``).
- ``_base.py``: the axes, the PNG and the argument checks all of them share.
"""

from idc_sklearn.plotting._classification import (
    plot_confusion_matrix,
    plot_precision_recall_curves,
    plot_roc_curves,
)
from idc_sklearn.plotting._comparison import plot_comparison
from idc_sklearn.plotting._differences import (
    plot_paired_differences,
    plot_patient_scores,
)
from idc_sklearn.plotting._slides import (
    plot_patient_heatmap,
    plot_slide_heatmap,
    slide_image,
)
from idc_sklearn.plotting._training import plot_learning_curves
from idc_sklearn.plotting._wholeslide import plot_slide_prediction

__all__ = [
    "plot_comparison",
    "plot_confusion_matrix",
    "plot_learning_curves",
    "plot_paired_differences",
    "plot_patient_heatmap",
    "plot_patient_scores",
    "plot_precision_recall_curves",
    "plot_roc_curves",
    "plot_slide_heatmap",
    "plot_slide_prediction",
    "slide_image",
]

"""Whole-slide inference: a fitted estimator run over a slide file, tile by tile.

:func:`predict_slide` opens a whole-slide image with OpenSlide (any format it reads:
Aperio SVS, generic tiled TIFF, Hamamatsu, MIRAX, ...) or, where OpenSlide cannot
serve, with tiffslide; finds the tissue on a thumbnail; cuts the tissue into tiles
of the estimator's patch size at the archive's resolution (``target_mpp``); and
streams them, read in batches by DataLoader workers while the model predicts, through
the estimator's own ``predict_proba``. Memory is bounded by the batch and the
thumbnail, never by the slide.

It returns a :class:`SlideResult`: the tile table, the probability map, the slide's
summary, and the writers of the outputs (heatmap PNG, probability map, tile CSV,
GeoJSON regions that QuPath imports as annotations).

:func:`predict_slides` runs a cohort of slides, each into its own folder, here
or as tasks on a Dask cluster (the model sent once to each worker), reports the
slides that fail, resumes where outputs are complete and verified, and sums the
cohort in ``slides.csv``.

The slide readers are an optional extra: ``pip install "idc_sklearn[slides]"``.

- ``_readers.py``: OpenSlide or tiffslide behind one reader; level and resolution.
- ``_tissue.py``: the thumbnail, its tissue mask, each tile's tissue fraction.
- ``_tiling.py``: the tile grid, and its tiles read in batches while the model
  predicts (DataLoader workers).
- ``_result.py``: :class:`SlideResult` and the writers of its outputs.
- ``_pipeline.py``: :func:`predict_slide`: validate, plan the grid, predict,
  assemble.
- ``_cohort.py``: :func:`predict_slides`: a cohort, checked once, its table.
- ``_outputs.py``: one slide of a cohort: predicted, written, its manifest
  checked on a rerun.
- ``_cluster.py``: the slides as Dask tasks, the model in a worker plugin
  (imports ``distributed``, only where a client is given).
- ``_writer.py``: :func:`write_slide`, an image as a pyramidal TIFF.
- ``_arguments.py``: the argument checks all of them share.

The slide figure is :func:`idc_sklearn.plotting.plot_slide_prediction`, which takes
arrays; :meth:`SlideResult.plot` passes it the result's. ``plotting/`` never imports
this package.
"""

from idc_sklearn.wholeslide._cohort import predict_slides
from idc_sklearn.wholeslide._pipeline import ARCHIVE_MPP, predict_slide
from idc_sklearn.wholeslide._result import SlideResult
from idc_sklearn.wholeslide._writer import write_slide

__all__ = [
    "ARCHIVE_MPP",
    "SlideResult",
    "predict_slide",
    "predict_slides",
    "write_slide",
]

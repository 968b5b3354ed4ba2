"""
Predict a whole slide
=====================

Run the pretrained model over a whole-slide image: find the tissue, cut it into
tiles at the archive's resolution, predict each tile, and write what a pathologist
opens next: a heatmap over the slide, the IDC regions as GeoJSON for QuPath, and
the slide's IDC area.

No public slide can be downloaded here, so this example makes one from real
patches: the built-in sample's patches of patient 13688, laid out at their
archive coordinates on white glass and written as a tiled, pyramidal TIFF, as a
scanner would write it, at 2 microns per pixel (the archive's patches are at about
4). :func:`~idc_sklearn.predict_slide` then reads it back through OpenSlide, as it
would read an Aperio SVS, a Hamamatsu NDPI or any format OpenSlide knows. It needs
the slides extra: ``pip install "idc_sklearn[slides]"``.
"""

# %%
# A slide from real patches
# -------------------------
# Each patch of the archive carries its top-left pixel ``x``, ``y`` in its slide.
# Pasting a patient's patches there rebuilds the slide (with gaps: the sample
# keeps 27 of the patient's patches); scaling it 2x makes a finer scan. Patient
# 13688 is one of the split's validation patients: the pretrained model never
# trained on it (its patches only told training when to stop).
import tempfile
from pathlib import Path

import numpy as np

from idc_sklearn import load_idc_sample, write_slide

PATIENT = "13688"
folder = Path(tempfile.mkdtemp())  # where the slide and its outputs go
SCALE = 2  # the slide's pixels per archive pixel: 2 um per pixel
# sphinx_gallery_start_ignore
# The test suite runs every example with IDC_SKLEARN_EXAMPLE_QUICK=1.
import os

if os.environ.get("IDC_SKLEARN_EXAMPLE_QUICK") == "1":
    SCALE = 1
# sphinx_gallery_end_ignore

idc = load_idc_sample()
rows = np.flatnonzero(idc.groups == PATIENT)
x, y = idc.frame["x"].to_numpy()[rows], idc.frame["y"].to_numpy()[rows]
glass = np.full((y.max() + 100, x.max() + 100, 3), 255, np.uint8)
for patch, left, top in zip(idc.data[rows], x, y, strict=True):
    glass[top : top + 50, left : left + 50] = patch
glass = glass.repeat(SCALE, axis=0).repeat(SCALE, axis=1)
slide = folder / f"{PATIENT}.tif"
write_slide(glass, slide, mpp=4.0 / SCALE)

# %%
# Predict it
# ----------
# ``predict_slide`` takes any fitted estimator of the library: here the
# pretrained MLBN network, in bfloat16 where the CPU has the units for it.
# ``origin`` puts the tile grid on the archive's (its patches start at
# x, y = 1, 1 modulo 50), so each tile is one of the patches laid out above.
from idc_sklearn import load_pretrained, predict_slide

model = load_pretrained("mlbn-small")
result = predict_slide(model, slide, origin=(SCALE, SCALE), progress=False)
print(result)
print(result.tiles.head())

# %%
# The heatmap, with the IDC regions outlined
# ------------------------------------------
# Tiles are coloured by their IDC probability over the slide's thumbnail; with a
# threshold, the regions that ``to_geojson`` writes are outlined in black.
fig, axes, artists = result.plot(threshold=0.5)

# %%
# Against the pathologist's labels
# --------------------------------
# The archive labels each patch; the tiles at the patches' places carry the
# model's calls.
tile_at = {(tx, ty): p for tx, ty, p in result.tiles[["x", "y", "probability"]].values}
called = np.array(
    [tile_at.get((SCALE * a, SCALE * b), np.nan) for a, b in zip(x, y, strict=True)]
)
truth = idc.target[rows]
seen = ~np.isnan(called)
print(
    f"{seen.sum()} of {len(rows)} patches were tissue tiles; the model agrees with "
    f"the label on {((called[seen] > 0.5) == truth[seen]).mean():.0%} of them."
)

# %%
# QuPath and the summary
# ----------------------
# The regions are GeoJSON in level-0 pixels: in QuPath, File > Import objects
# reads them as annotations classified "IDC", each with its mean probability.
regions = result.to_geojson(folder / f"{PATIENT}.geojson", threshold=0.5)
print(f"{len(regions['features'])} IDC regions written to {PATIENT}.geojson")
summary = result.summary()
print(
    f"tissue {summary['tissue_mm2']:.2f} mm², IDC {summary['idc_mm2']:.2f} mm² "
    f"({summary['idc_fraction']:.0%} of the tissue)"
)

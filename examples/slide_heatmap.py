"""
Read a slide heatmap
====================

Train on some patients, predict every patch of a patient the network never saw,
and lay the IDC probabilities over the rebuilt slide, beside the pathologist's
labels, as the paper's figures do.

Each patch of the IDC archive carries its top-left pixel ``x``, ``y`` in its slide
(the loaders' ``frame``), so the patches of one patient tile back into the slide.
:func:`~idc_sklearn.plot_patient_heatmap` rebuilds it and colours each patch's
square by its probability: red where the network calls IDC, blue where it does
not, translucent over the tissue. Where the two panels agree, the network finds
the tumour region the pathologist outlined; red squares in a blue region are false
alarms, blue squares in a red region missed IDC. White is glass or background,
where the archive has no patch.
"""

# %%
# Sizes
# -----
# The small network, at most 5 epochs on the 113 other patients of the built-in
# sample: a few minutes on a CPU.
from idc_sklearn import PRESETS

NETWORK = PRESETS["small"]
MAX_EPOCHS = 5
EVERY_NTH_TRAINING_PATCH = 1
# sphinx_gallery_start_ignore
# The test suite runs every example with IDC_SKLEARN_EXAMPLE_QUICK=1: these
# sizes make it finish in seconds (its scores then mean nothing).
import os

if os.environ.get("IDC_SKLEARN_EXAMPLE_QUICK") == "1":
    NETWORK = PRESETS["tiny"]
    MAX_EPOCHS = 1
    EVERY_NTH_TRAINING_PATCH = 20
# sphinx_gallery_end_ignore

# %%
# Hold out one patient
# --------------------
# Patient 8863 has patches of both classes in the built-in sample (14 of each,
# drawn from its slide: the heatmap shows where they lie, with gaps between).
from idc_sklearn import load_idc_sample

idc = load_idc_sample()
held_out = idc.groups == "8863"
train = (~held_out).nonzero()[0][::EVERY_NTH_TRAINING_PATCH]

# %%
# Train and predict
# -----------------
from idc_sklearn import MLBNInceptionClassifier

clf = MLBNInceptionClassifier(
    **NETWORK, max_epochs=MAX_EPOCHS, verbose=0, random_state=0
)
clf.fit(idc.data[train], idc.target[train], groups=idc.groups[train])
proba = clf.predict_proba(idc.data[held_out])[:, 1]

# %%
# The heatmap
# -----------
# ``plot_patient_heatmap`` takes the whole dataset and the probabilities of the
# patient's patches; ``path=`` would also write a PNG.
from idc_sklearn import plot_patient_heatmap

fig, axes, artists = plot_patient_heatmap(idc, proba, patient="8863")

# %%
# The training behind it
# ----------------------
# The learning curves show whether training had converged: the loss, the
# validation balanced accuracy that early stopping watched, and the learning rate.
from idc_sklearn import plot_learning_curves

fig, axes, lines = plot_learning_curves(clf)

# %%
# The same predictions as a curve
# -------------------------------
from idc_sklearn import plot_roc_curves

fig, ax, displays = plot_roc_curves(idc.target[held_out], {"MLBN (small)": proba})
print(f"ROC AUC on patient 8863: {displays['MLBN (small)'].roc_auc:.3f}")

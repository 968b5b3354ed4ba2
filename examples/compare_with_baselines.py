"""
Compare with the baselines
==========================

Cross-validate the MLBN network against the paper's CNN baselines and the
handcrafted-feature pipelines, with folds by patient, then ask whether its lead (or
lag) on the best other model is more than the choice of test patients explains.

``compare_models`` fits every model on the same folds and scores it on the same
held-out patients; ``details.differences`` holds the paired difference of balanced
accuracy and its 95% interval from a bootstrap over the test patients. The command
line ``idc-sklearn compare`` runs the same comparison over every model.
"""

# %%
# Sizes
# -----
# 600 patches of the built-in sample, drawn evenly, 3 folds by patient, the small
# MLBN network for at most 5 epochs: a few minutes on a CPU.
from idc_sklearn import PRESETS

N_PATCHES = 600
N_FOLDS = 3
NETWORK = PRESETS["small"]
MAX_EPOCHS = 5
# sphinx_gallery_start_ignore
# The test suite runs every example with IDC_SKLEARN_EXAMPLE_QUICK=1: these
# sizes make it finish in seconds (its scores then mean nothing).
import os

if os.environ.get("IDC_SKLEARN_EXAMPLE_QUICK") == "1":
    N_PATCHES = 100
    N_FOLDS = 2
    NETWORK = PRESETS["tiny"]
    MAX_EPOCHS = 1
# sphinx_gallery_end_ignore

# %%
# The data
# --------
import numpy as np

from idc_sklearn import load_idc_sample

idc = load_idc_sample()
keep = np.linspace(0, len(idc.target) - 1, N_PATCHES).astype(int)
X, y, patients = idc.data[keep], idc.target[keep], idc.groups[keep]

# %%
# The models
# ----------
# Every model takes the same ``(n, 50, 50, 3)`` uint8 patches: the CNNs as
# images, the handcrafted pipelines through their feature transformers.
from idc_sklearn import CruzRoaCNNClassifier, MLBNInceptionClassifier, make_baseline

# Every CNN at the MLBN recipe's batch size and class balancing, as the command
# line's small preset trains them.
cnn = {
    "max_epochs": MAX_EPOCHS,
    "batch_size": 32,
    "resample": "over",
    "verbose": 0,
    "random_state": 0,
}
models = {
    "mlbn": MLBNInceptionClassifier(**NETWORK, **cnn),
    "cruz-roa-cnn": CruzRoaCNNClassifier(**cnn),
    "color-logreg": make_baseline("color-logreg", random_state=0),
    "features-rf": make_baseline("features-rf", random_state=0),
}

# %%
# Cross-validate by patient
# -------------------------
from idc_sklearn import compare_models

table, details = compare_models(
    models, X, y, patients, cv=N_FOLDS, progress=False, return_details=True
)
print(table[["balanced_accuracy_mean", "balanced_accuracy_std", "roc_auc_mean"]])

# %%
# The paired difference
# ---------------------
# The standard deviations over folds are no interval for a difference between
# two models: the models were scored on the same patients. ``differences`` pairs
# them, patient by patient; an interval that includes 0 shows no clear lead.
print(details.differences.round(3))

# %%
# A figure
# --------
# ``plot_comparison`` draws the table; it returns a matplotlib ``Figure`` without
# touching pyplot's state (``fig.savefig("comparison.png")`` writes it).
from idc_sklearn import plot_comparison

fig = plot_comparison(table, metrics=("balanced_accuracy", "roc_auc"))

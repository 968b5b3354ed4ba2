"""
Data-parallel training with Accelerate
======================================

Train the MLBN Inception network on several GPUs (or CPU processes) at once with
Hugging Face Accelerate, through skorch's Accelerate integration. The same script
runs as a plain script, in one process::

    python examples/train_accelerate.py

and data-parallel, one process per GPU, each training on its shard of every batch
with gradients averaged across processes::

    accelerate launch --num_processes 2 examples/train_accelerate.py
    accelerate launch --cpu --num_processes 2 examples/train_accelerate.py  # no GPU

``batch_size`` is per process: with 2 processes a step sees twice as many patches.
See ``docs/scale_out.md`` for what is synchronised.
"""

# %%
# Sizes
# -----
# Every patch of the built-in sample, the small network, at most 5 epochs.
from idc_sklearn import PRESETS

EVERY_NTH_PATCH = 1
NETWORK = PRESETS["small"]
MAX_EPOCHS = 5
# sphinx_gallery_start_ignore
# The test suite runs every example with IDC_SKLEARN_EXAMPLE_QUICK=1: these
# sizes make it finish in seconds (its scores then mean nothing).
import os

if os.environ.get("IDC_SKLEARN_EXAMPLE_QUICK") == "1":
    EVERY_NTH_PATCH = 10
    NETWORK = PRESETS["tiny"]
    MAX_EPOCHS = 1
# sphinx_gallery_end_ignore

# %%
# One accelerator per process
# ---------------------------
# ``Accelerator()`` reads what ``accelerate launch`` set up: this process's rank,
# the number of processes and its device. Run as a plain script, it is one process
# on the GPU where there is one, else on the CPU.
from accelerate import Accelerator

accelerator = Accelerator()
accelerator.print(
    f"{accelerator.num_processes} process(es), this one on {accelerator.device}"
)

# %%
# Data, split by patient
# ----------------------
# Every process loads the same patches; the prepared data loaders give each its
# shard of every batch.
import numpy as np
from sklearn.model_selection import GroupShuffleSplit

from idc_sklearn import load_idc_sample

data = load_idc_sample()
X = data.data[::EVERY_NTH_PATCH]
y = data.target[::EVERY_NTH_PATCH]
patients = data.groups[::EVERY_NTH_PATCH]
train, test = next(
    GroupShuffleSplit(n_splits=1, test_size=0.25, random_state=0).split(X, y, patients)
)

# %%
# Train and predict
# -----------------
# ``random_state`` seeds every process alike, so they draw the same class-balanced
# order each epoch and each trains on its own part of it. Predictions are gathered:
# every process gets all of them.
from sklearn.metrics import balanced_accuracy_score

from idc_sklearn import AcceleratedMLBNInceptionClassifier

clf = AcceleratedMLBNInceptionClassifier(
    accelerator=accelerator,
    **NETWORK,
    max_epochs=MAX_EPOCHS,
    random_state=0,
)
clf.fit(X[train], y[train], groups=patients[train])
predicted = clf.predict(X[test])
assert len(predicted) == len(test)
accelerator.print(
    f"balanced accuracy on {len(np.unique(patients[test]))} unseen patients: "
    f"{balanced_accuracy_score(y[test], predicted):.3f}"
)

# %%
# The history of one process is the history of all: loss and validation score
# per epoch.
from idc_sklearn import plot_learning_curves

fig, axes, lines = plot_learning_curves(clf)

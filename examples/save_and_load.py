"""
Save and load a model
=====================

Save a fitted network to one safetensors file and load it back, on any machine.

``save_model`` writes the weights as tensors and everything else (the class, its
parameters, ``classes_``, the training history, the library versions) as JSON in
the file's header. ``load_model`` rebuilds the estimator from that without
unpickling anything, so a model file from elsewhere cannot run code; a model
trained on a GPU loads on a CPU. A ``Pipeline`` of the library's own steps ending
in a network is saved the same way.
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
    EVERY_NTH_PATCH = 20
    NETWORK = PRESETS["tiny"]
    MAX_EPOCHS = 1
# sphinx_gallery_end_ignore

# %%
# Fit a model
# -----------
from idc_sklearn import MLBNInceptionClassifier, load_idc_sample

idc = load_idc_sample()
X = idc.data[::EVERY_NTH_PATCH]
y = idc.target[::EVERY_NTH_PATCH]
patients = idc.groups[::EVERY_NTH_PATCH]

clf = MLBNInceptionClassifier(
    **NETWORK, max_epochs=MAX_EPOCHS, resample="over", verbose=0, random_state=0
)
clf.fit(X, y, groups=patients)

# %%
# Save it, load it back
# ---------------------
# One file; ``device="cpu"`` puts the loaded network on the CPU whatever it was
# trained on (the default keeps the saved ``device`` parameter, ``"auto"``).
import tempfile
from pathlib import Path

import numpy as np

from idc_sklearn import load_model, save_model

folder = Path(tempfile.mkdtemp())
path = folder / "mlbn.safetensors"
save_model(clf, path)
print(f"{path.name}: {path.stat().st_size / 1e6:.1f} MB")

loaded = load_model(path, device="cpu")
print(loaded)
same = np.allclose(loaded.predict_proba(X), clf.predict_proba(X))
print("the same probabilities:", same)

# %%
# The loaded model's ROC curve lies on the fitted one's:
from idc_sklearn import plot_roc_curves

fig, ax, displays = plot_roc_curves(
    y,
    {
        "fitted": clf.predict_proba(X)[:, 1],
        "loaded from the file": loaded.predict_proba(X)[:, 1],
    },
)

# %%
# What the file is not
# --------------------
# Anything that is not a model file saved by ``save_model`` is refused with
# :class:`~idc_sklearn.FileFormatError`, before anything in it is used.
from idc_sklearn import FileFormatError

not_a_model = folder / "notes.safetensors"
not_a_model.write_text("not a model")
try:
    load_model(not_a_model)
except FileFormatError as exc:
    print("refused:", exc)

"""
Quick start
===========

Train the MLBN Inception network on the real IDC patches shipped with the package,
test it on patients it has never seen, and score it patch by patch and patient by
patient.

The network here is ``PRESETS["small"]``, an eighth of the paper's
widths, so that the example runs in a few minutes on a CPU; on a GPU it takes
seconds (``device="auto"`` uses one where present).
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
# Load the patches
# ----------------
# ``load_idc_sample`` returns 2,800 real 50x50 patches of 114 patients as a
# scikit-learn ``Bunch``: ``data`` (uint8, channels last), ``target`` (1 for IDC)
# and ``groups`` (the patient of each patch). ``load_idc`` reads the whole archive
# into the same ``Bunch``.
from idc_sklearn import load_idc_sample

idc = load_idc_sample()
X = idc.data[::EVERY_NTH_PATCH]
y = idc.target[::EVERY_NTH_PATCH]
patients = idc.groups[::EVERY_NTH_PATCH]
print(f"{len(y)} patches of {len(set(patients))} patients, {y.mean():.0%} IDC")

# %%
# Hold out whole patients
# -----------------------
# Patches of one patient look alike, so a test set must hold patients the model
# never saw. ``StratifiedGroupKFold`` keeps each patient on one side and both
# classes on the test side.
from sklearn.model_selection import StratifiedGroupKFold

split = StratifiedGroupKFold(n_splits=4, shuffle=True, random_state=0)
train, test = next(split.split(X, y, groups=patients))
print("test patients:", sorted(set(patients[test])))

# %%
# Fit
# ---
# ``groups`` reaches the network's own early-stopping split, so its validation
# patients are held out whole too. ``resample="over"`` (the default) balances the
# classes afresh each epoch, as the paper did.
from idc_sklearn import MLBNInceptionClassifier

clf = MLBNInceptionClassifier(
    **NETWORK, max_epochs=MAX_EPOCHS, resample="over", random_state=0
)
clf.fit(X[train], y[train], groups=patients[train])
print(f"trained {len(clf.history_)} epochs on {clf.device_}")

# %%
# Loss and validation score per epoch, the epoch kept marked:
from idc_sklearn import plot_learning_curves

fig, axes, lines = plot_learning_curves(clf)

# %%
# Score on the held-out patients
# ------------------------------
# Balanced accuracy over all test patches, then per patient: ``patient_scores``
# gives one row per patient and the mean over patients.
from sklearn.metrics import balanced_accuracy_score

from idc_sklearn import patient_scores

proba = clf.predict_proba(X[test])
score = balanced_accuracy_score(y[test], clf.predict(X[test]))
print(f"balanced accuracy on the test patients: {score:.3f}")
scores = patient_scores(y[test], proba, patients[test])
print(scores[["n_patches", "n_idc", "balanced_accuracy", "roc_auc"]].round(3))

"""
Grid search by patient
======================

Tune the MLBN network with ``GridSearchCV``, split by patient.

Patches of one patient are far more alike than patches of different patients, so a
split by patch leaks. ``GroupKFold`` keeps each patient on one side of every fold,
and ``groups`` passed on to ``fit`` (through scikit-learn's metadata routing) makes
the network's early-stopping split hold out whole patients too.
"""

# %%
# Sizes
# -----
# 8 synthetic patients of 80 patches, 32x32 pixels, a small network, 6 epochs:
# about two minutes on 2 CPU cores.
from idc_sklearn import PRESETS

N_PATIENTS, PATCHES_PER_PATIENT, PATCH_SIZE = 8, 80, 32
NETWORK = PRESETS["small"]
MAX_EPOCHS = 6
# sphinx_gallery_start_ignore
# The test suite runs every example with IDC_SKLEARN_EXAMPLE_QUICK=1: these
# sizes make it finish in seconds (its scores then mean nothing).
import os

if os.environ.get("IDC_SKLEARN_EXAMPLE_QUICK") == "1":
    N_PATIENTS, PATCHES_PER_PATIENT, PATCH_SIZE = 8, 12, 16
    NETWORK = PRESETS["tiny"]
    MAX_EPOCHS = 1
# sphinx_gallery_end_ignore

# %%
# Metadata routing
# ----------------
# With routing on, ``GridSearchCV`` hands ``groups`` both to the splitter and to
# the estimator's ``fit``, which requests it (``set_fit_request(groups=True)``).
import sklearn

sklearn.set_config(enable_metadata_routing=True)

# %%
# Data and estimator
# ------------------
from idc_sklearn import SCORING, MLBNInceptionClassifier, make_idc_patches

data = make_idc_patches(
    n_patients=N_PATIENTS,
    patches_per_patient=PATCHES_PER_PATIENT,
    patch_size=PATCH_SIZE,
    random_state=0,
)
X, y, patients = data.data, data.target, data.groups

clf = MLBNInceptionClassifier(
    # a CPU-sized network (PRESETS["small"]); the default is the
    # paper's, about 34 M parameters
    **NETWORK,
    patch_shape=(PATCH_SIZE, PATCH_SIZE, 3),
    max_epochs=MAX_EPOCHS,
    verbose=0,
    random_state=0,
).set_fit_request(groups=True)

# %%
# Search
# ------
# Does multi-level batch normalisation help? Every candidate is scored on
# held-out patients with the metrics of ``SCORING``; the best by balanced
# accuracy is refitted on all patients.
from sklearn.model_selection import GridSearchCV, GroupKFold

search = GridSearchCV(
    clf,
    {"multilevel_bn": [True, False]},
    cv=GroupKFold(n_splits=2),
    scoring=SCORING,
    refit="balanced_accuracy",
)
search.fit(X, y, groups=patients)

for params, score in zip(
    search.cv_results_["params"],
    search.cv_results_["mean_test_balanced_accuracy"],
    strict=True,
):
    print(f"{params}: balanced accuracy {score:.3f}")
print("best:", search.best_params_)

# %%
# How the refitted model trained
# ------------------------------
# The refitted network's history: loss and validation score per epoch, the epoch
# early stopping kept marked.
from idc_sklearn import plot_learning_curves

fig, axes, lines = plot_learning_curves(search.best_estimator_)

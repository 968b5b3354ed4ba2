"""
Balance the classes
===================

About 28% of the IDC archive's patches are IDC. The MLBN authors over-sampled the
minority class. This example balances the classes four ways and scores each on
held-out patients:

- ``class_weight="balanced"``: weight the loss, draw nothing;
- ``resample="over"`` (the default of ``MLBNInceptionClassifier``): the estimator
  draws a class-balanced training set afresh each epoch, by index, inside its own
  patient split (the recommended way);
- imbalanced-learn's ``RandomOverSampler`` in an imbalanced-learn ``Pipeline``,
  which takes flattened 2-D patches;
- :class:`~idc_sklearn.PatchResampler`, the same sampler on 4-D patch arrays.

A sampler in a ``Pipeline`` resamples ``X`` and ``y`` but not ``groups``, so the
pipelines below train without patient groups (their early-stopping split then holds
out patches, not patients). Synthetic SMOTE-like interpolation of raw pixels is left
out on purpose: a blend of two patches is not plausible tissue.
"""

# %%
# Sizes
# -----
# 8 synthetic patients of 80 patches, 32x32 pixels, a small network, 6 epochs:
# about a minute on 2 CPU cores (four fits).
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
# Data, held out by patient
# -------------------------
from idc_sklearn import make_idc_patches

data = make_idc_patches(
    n_patients=N_PATIENTS,
    patches_per_patient=PATCHES_PER_PATIENT,
    patch_size=PATCH_SIZE,
    random_state=0,
)
X, y, patients = data.data, data.target, data.groups
test = (patients == "synth06") | (patients == "synth07")
train = ~test
print(f"training patches: {train.sum()}, of which IDC {y[train].mean():.0%}")

# %%
# Four ways to balance
# --------------------
from imblearn.over_sampling import RandomOverSampler
from imblearn.pipeline import Pipeline

from idc_sklearn import MLBNInceptionClassifier, PatchResampler

PATCH_SHAPE = (PATCH_SIZE, PATCH_SIZE, 3)


def small_mlbn(**params):
    return MLBNInceptionClassifier(
        **NETWORK,
        patch_shape=PATCH_SHAPE,
        max_epochs=MAX_EPOCHS,
        verbose=0,
        random_state=0,
        **params,
    )


# Every way but the second turns the estimator's own resampling off, so that the
# classes are balanced once.
models = {
    "class weights": small_mlbn(class_weight="balanced", resample=None),
    'resample="over"': small_mlbn(resample="over"),
    "RandomOverSampler on 2-D patches": Pipeline(
        [
            ("balance", RandomOverSampler(random_state=0)),
            ("clf", small_mlbn(resample=None)),
        ]
    ),
    "PatchResampler on 4-D patches": Pipeline(
        [
            (
                "balance",
                PatchResampler("over", random_state=0, patch_shape=PATCH_SHAPE),
            ),
            ("clf", small_mlbn(resample=None)),
        ]
    ),
}

# %%
# Fit and score on the held-out patients
# --------------------------------------
# Only the estimators themselves take ``groups``; a pipeline with a sampler
# cannot pass it on.
from sklearn.metrics import balanced_accuracy_score

scores = {}

for name, model in models.items():
    flat = "2-D" in name
    X_train = X[train].reshape(train.sum(), -1) if flat else X[train]
    X_test = X[test].reshape(test.sum(), -1) if flat else X[test]
    if isinstance(model, Pipeline):
        model.fit(X_train, y[train])
    else:
        model.fit(X_train, y[train], groups=patients[train])
    score = balanced_accuracy_score(y[test], model.predict(X_test))
    print(f"{name}: balanced accuracy on the held-out patients {score:.3f}")
    scores[name] = model.predict_proba(X_test)[:, 1]

# %%
# The ROC curves side by side
# ---------------------------
# Balancing moves the threshold more than the ranking: the curves lie close
# where balanced accuracy differs.
from idc_sklearn import plot_roc_curves

fig, ax, displays = plot_roc_curves(y[test], scores)

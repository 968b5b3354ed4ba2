"""Tune the MLBN network with GridSearchCV, split by patient.

Patches of one patient are far more alike than patches of different patients, so a
split by patch leaks. ``GroupKFold`` keeps each patient on one side of every fold,
and ``groups`` passed on to ``fit`` (through sklearn's metadata routing) makes the
network's early-stopping split hold out whole patients too.

Runs in about two minutes on 2 CPU cores with the small sizes below.
"""

import sklearn
from sklearn.model_selection import GridSearchCV, GroupKFold

from idc_sklearn import SCORING, MLBNInceptionClassifier, make_idc_patches

sklearn.set_config(enable_metadata_routing=True)

data = make_idc_patches(
    n_patients=8, patches_per_patient=80, patch_size=32, random_state=0
)
X, y, patients = data.data, data.target, data.groups

clf = MLBNInceptionClassifier(
    # a CPU-sized network (the command line's "small" preset); the default is the
    # paper's, about 34 M parameters
    filters=(8, 8, 16, 16, 32, 32, 64, 64),
    head_units=(64, 64),
    patch_shape=(32, 32, 3),
    max_epochs=6,
    verbose=0,
    random_state=0,
).set_fit_request(groups=True)

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

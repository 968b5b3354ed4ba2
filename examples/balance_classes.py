"""Balance IDC and non-IDC patches with imbalanced-learn, three ways.

About 28% of the IDC dataset's patches are IDC. The MLBN authors over-sampled the
minority class; imbalanced-learn's samplers do that on flattened 2-D patches, and
``PatchResampler`` does it on 4-D patch arrays without flattening them.

Runs in under a minute on 2 CPU cores.
"""

from imblearn.over_sampling import RandomOverSampler
from imblearn.pipeline import Pipeline
from sklearn.metrics import balanced_accuracy_score

from idc_sklearn import MLBNInceptionClassifier, PatchResampler, make_idc_patches

data = make_idc_patches(
    n_patients=8, patches_per_patient=80, patch_size=32, random_state=0
)
X, y, patients = data.data, data.target, data.groups
test = (patients == "synth06") | (patients == "synth07")
train = ~test


def small_mlbn(**params):
    return MLBNInceptionClassifier(
        filters=(8, 8, 16, 16, 32, 32, 64, 64),
        head_units=(64, 64),
        patch_shape=(32, 32, 3),
        max_epochs=6,
        train_split=None,
        verbose=0,
        random_state=0,
        **params,
    )


models = {
    "class weights": small_mlbn(class_weight="balanced"),
    "RandomOverSampler on 2-D patches": Pipeline(
        [("balance", RandomOverSampler(random_state=0)), ("clf", small_mlbn())]
    ),
    "PatchResampler on 4-D patches": Pipeline(
        [
            (
                "balance",
                PatchResampler("over", random_state=0, patch_shape=(32, 32, 3)),
            ),
            ("clf", small_mlbn()),
        ]
    ),
}
for name, model in models.items():
    X_train = X[train].reshape(train.sum(), -1) if "2-D" in name else X[train]
    X_test = X[test].reshape(test.sum(), -1) if "2-D" in name else X[test]
    model.fit(X_train, y[train])
    score = balanced_accuracy_score(y[test], model.predict(X_test))
    print(f"{name}: balanced accuracy on the held-out patients {score:.3f}")

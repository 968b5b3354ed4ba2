"""scikit-learn's own estimator checks, with every expected failure written down.

sklearn's checks generate 2-D data with a handful of features (2, 3, 4, 10 ...).
The patch classifiers read each row as a flattened patch of ``patch_shape`` and
reject any other width by design, so the checks that fit on such data are listed
as expected failures. The behaviour they would test (fit returns self, pickling,
clone, classes, seeded idempotence, read-only memory maps, n_features_in_, subset
invariance of predictions) is tested on patch data in ``test_classifier.py``.
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from idc_sklearn import (
    CruzRoaCNNClassifier,
    JanowczykCNNClassifier,
    MLBNInceptionClassifier,
)

PATCH = (16, 16, 3)


_COMMON = {
    "patch_shape": PATCH,
    "max_epochs": 2,
    "batch_size": 16,
    "verbose": 0,
    "random_state": 0,
    "train_split": None,
}
ESTIMATORS = [
    MLBNInceptionClassifier(filters=(3,), head_units=(4,), **_COMMON),
    JanowczykCNNClassifier(crop_size=16, **_COMMON),
    CruzRoaCNNClassifier(**_COMMON),
]


_WIDTH = (
    "the check fits on 2-D data of a few features; rows must be flattened "
    "patches of patch_shape (16x16x3 = 768 features)"
)

EXPECTED_FAILURES = {
    "check_no_attributes_set_in_init": (
        "skorch's NeuralNet.__init__ sets history_, initialized_ and the iterator "
        "attributes itself"
    ),
    "check_dtype_object": "object arrays are not accepted as patches",
    "check_positive_only_tag_during_fit": _WIDTH,
    **{
        name: _WIDTH
        for name in [
            "check_fit_score_takes_y",
            "check_estimators_overwrite_params",
            "check_dont_overwrite_parameters",
            "check_estimators_fit_returns_self",
            "check_readonly_memmap_input",
            "check_n_features_in_after_fitting",
            "check_estimators_dtypes",
            "check_pipeline_consistency",
            "check_estimators_pickle",
            "check_f_contiguous_array_estimator",
            "check_classifier_data_not_an_array",
            "check_classifiers_one_label_sample_weights",
            "check_classifiers_classes",
            "check_estimators_partial_fit_n_features",
            "check_classifiers_train",
            "check_supervised_y_2d",
            "check_class_weight_classifiers",
            "check_methods_sample_order_invariance",
            "check_methods_subset_invariance",
            "check_fit2d_1feature",
            "check_dict_unchanged",
            "check_fit_idempotent",
            "check_fit_check_is_fitted",
            "check_n_features_in",
            "check_fit2d_predict1d",
            "check_estimators_nan_inf",
        ]
    },
}


@parametrize_with_checks(
    ESTIMATORS,
    expected_failed_checks=lambda estimator: EXPECTED_FAILURES,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)

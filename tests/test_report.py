"""The comparison's tables and sentence (``report.py``): rounding, the paired
difference's verdict, one column per fold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from idc_sklearn.report import format_difference, format_folds, format_table


def test_format_table_rounds_and_marks_deviation():
    table = pd.DataFrame(
        {
            "balanced_accuracy_mean": [0.81234, 0.5],
            "balanced_accuracy_std": [0.0345, np.nan],
            "fit_seconds": [12.345, 0.01],
            "predict_patches_per_second": [1234.5, 10.0],
        },
        index=pd.Index(["a", "b"], name="model"),
    )
    readable = format_table(table)
    assert readable.to_dict("index") == {
        "a": {"bal. acc.": "0.812 ± 0.035", "fit s": "12.3", "patches/s": "1,234"},
        "b": {"bal. acc.": "0.500", "fit s": "0.0", "patches/s": "10"},
    }


@pytest.mark.parametrize(
    ("low", "high", "verdict"),
    [
        (-0.021, 0.088, "the interval includes 0: no clear lead."),
        (0.012, 0.088, "the interval excludes 0: mlbn-inception leads."),
        (-0.09, -0.01, "the interval excludes 0: features-hgb leads."),
    ],
)
def test_format_difference_states_the_lead_and_its_interval(low, high, verdict):
    differences = pd.DataFrame(
        {"difference": [0.0341, 0.2], "low": [low, 0.1], "high": [high, 0.3]}
        | {"n_patients": [19, 19]},
        index=pd.Index(["features-hgb", "prior"], name="model"),
    )
    differences.attrs.update(reference="mlbn-inception", best="features-hgb")
    assert format_difference(differences) == (
        "mlbn-inception vs features-hgb (best other): +0.034 balanced accuracy, "
        f"95% CI [{low:+.3f}, {high:+.3f}], bootstrap over 19 test patients; " + verdict
    )
    differences.attrs["best"] = None
    assert format_difference(differences.iloc[:0]) is None


def test_format_folds_one_column_per_fold_models_in_order():
    folds = pd.DataFrame(
        {
            "model": ["b", "b", "a", "a"],
            "fold": [1, 2, 1, 2],
            "balanced_accuracy": [0.5, 0.61234, 0.75, 1.0],
            "n_test": [1200, 30, 1200, 30],
        }
    )
    assert format_folds(folds).to_dict("index") == {
        "b": {"fold 1 (1,200)": "0.500", "fold 2 (30)": "0.612"},
        "a": {"fold 1 (1,200)": "0.750", "fold 2 (30)": "1.000"},
    }

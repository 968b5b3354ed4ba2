"""plot_comparison: a Figure with one bar per model and metric, error bars, errors."""

from __future__ import annotations

import doctest
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from matplotlib.container import BarContainer, ErrorbarContainer
from matplotlib.figure import Figure

from idc_sklearn.plotting import plot_comparison


@pytest.fixture
def table():
    table = pd.DataFrame(
        {
            "balanced_accuracy_mean": [0.89, 0.81, 0.50],
            "balanced_accuracy_std": [0.02, 0.03, 0.0],
            "f1_idc_mean": [0.85, 0.78, 0.40],
            "f1_idc_std": [0.03, 0.04, 0.1],
            "roc_auc_mean": [0.95, 0.90, 0.5],
            "roc_auc_std": [0.01, 0.02, 0.0],
            "fit_seconds": [10.0, 1.0, 0.01],
            "predict_patches_per_second": [500.0, 3000.0, 1e6],
        },
        index=pd.Index(["mlbn-inception", "color-logreg", "prior"], name="model"),
    )
    table.attrs["n_folds"] = 3
    return table


def _bars(ax):
    return [c for c in ax.containers if isinstance(c, BarContainer)]


def _error_bars(ax):
    return [c for c in ax.containers if isinstance(c, ErrorbarContainer)]


def test_bars_per_model_and_metric_with_error_bars(table):
    figure = plot_comparison(table)
    assert isinstance(figure, Figure)
    (ax,) = figure.axes
    bars = _bars(ax)
    assert [len(group) for group in bars] == [3, 3]
    heights = [patch.get_height() for patch in bars[0]]
    np.testing.assert_allclose(heights, table["balanced_accuracy_mean"])
    assert len(_error_bars(ax)) == 2
    assert [label.get_text() for label in ax.get_xticklabels()] == list(table.index)
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert legend == ["balanced accuracy", "F1 (IDC)"]
    assert "3 folds" in ax.get_title()


def test_chosen_metrics_on_given_axes(table):
    figure = Figure()
    ax = figure.add_subplot()
    returned = plot_comparison(table, metrics=["roc_auc"], ax=ax)
    assert returned is figure
    assert [len(group) for group in _bars(ax)] == [3]


def test_nan_deviation_draws_no_error_bar(table):
    table = table.assign(balanced_accuracy_std=np.nan, f1_idc_std=np.nan)
    ax = plot_comparison(table).axes[0]
    assert len(_bars(ax)) == 2
    assert _error_bars(ax) == []


def test_saves_png(table, tmp_path):
    path = tmp_path / "comparison.png"
    plot_comparison(table).savefig(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("table_change", "metrics", "error", "match"),
    [
        (None, ["accuracy"], ValueError, r"metrics names \['accuracy'\]"),
        (None, [], ValueError, "metrics is empty"),
        ("empty", ("balanced_accuracy",), ValueError, "table has no rows"),
        ("dict", ("balanced_accuracy",), TypeError, "table must be"),
    ],
)
def test_errors(table, table_change, metrics, error, match):
    if table_change == "empty":
        table = table.iloc[:0]
    elif table_change == "dict":
        table = table.to_dict()
    with pytest.raises(error, match=match):
        plot_comparison(table, metrics=metrics)


def test_leaves_backend_and_pyplot_alone():
    # Without pyplot no backend is selected or switched: the user's stays theirs.
    code = (
        "import sys, io, pandas as pd; "
        "from idc_sklearn.plotting import plot_comparison; "
        "t = pd.DataFrame({'balanced_accuracy_mean': [0.8], 'f1_idc_mean': [0.7]}); "
        "plot_comparison(t).savefig(io.BytesIO(), format='png'); "
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_docstring_examples():
    import idc_sklearn.plotting

    result = doctest.testmod(idc_sklearn.plotting)
    assert result.attempted > 0 and result.failed == 0

"""The idc-sklearn command: end to end on tiny settings, --help, option errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from idc_sklearn.cli import format_table, main

TINY = [
    "compare",
    "--n-patients",
    "4",
    "--patches-per-patient",
    "10",
    "--patch-size",
    "32",
    "--max-epochs",
    "1",
    "--folds",
    "2",
]
COLUMNS = [
    f"{metric}_{stat}"
    for metric in (
        "balanced_accuracy",
        "f1_idc",
        "f1_weighted",
        "roc_auc",
        "average_precision",
    )
    for stat in ("mean", "std")
] + ["fit_seconds", "predict_patches_per_second"]


def _files(out):
    return sorted(path.name for path in out.iterdir())


def test_compare_end_to_end_writes_table_markdown_and_chart(tmp_path, capsys):
    out = tmp_path / "results"
    argv = [*TINY, "--models", "mlbn-inception", "color-logreg", "--out", str(out)]
    assert main(argv) == 0

    captured = capsys.readouterr()
    assert "mlbn-inception" in captured.out and "color-logreg" in captured.out
    assert "bal. acc." in captured.out and "±" in captured.out
    assert "mlbn-inception (fold 2/2)" in captured.err  # the progress bar
    assert _files(out) == ["comparison.csv", "comparison.md", "comparison.png"]
    table = pd.read_csv(out / "comparison.csv", index_col="model")
    assert table.index.tolist() == ["mlbn-inception", "color-logreg"]
    assert table.columns.tolist() == COLUMNS
    markdown = (out / "comparison.md").read_text(encoding="utf-8")
    assert "Data: synthetic make_idc_patches(n_patients=4" in markdown
    assert "Folds: GroupKFold(2) by patient" in markdown
    assert "Machine: " in markdown
    assert "| mlbn-inception | " in markdown
    assert (out / "comparison.png").read_bytes()[:4] == b"\x89PNG"


def test_quiet_prints_only_the_table(tmp_path, capsys):
    argv = [*TINY, "--models", "color-logreg", "--out", str(tmp_path), "--quiet"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out.splitlines()[0].split()[:2] == ["bal.", "acc."]


def test_fixed_split_on_the_real_sample(idc_sample_root, tmp_path, capsys):
    split = tmp_path / "split"
    split.mkdir()
    patients = sorted(p.name for p in idc_sample_root.iterdir() if p.is_dir())
    # In the sample the first five patients hold the non-IDC patches (most of them
    # only those), the others only IDC patches: every list gets both kinds.
    parts = {
        "train": [*patients[:2], *patients[5:12], "not-in-sample"],
        "val": [patients[2], *patients[12:14]],
        "test": [*patients[3:5], *patients[14:]],
    }
    for name, ids in parts.items():
        (split / f"cases_{name}.txt").write_text("\n".join(ids) + "\n")
    argv = [
        "compare",
        "--data",
        str(idc_sample_root),
        "--split",
        str(split),
        "--models",
        "color-logreg",
        "--out",
        str(tmp_path / "out"),
    ]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "1 patients of --split are not in --data" in captured.err
    table = pd.read_csv(tmp_path / "out" / "comparison.csv", index_col="model")
    assert np.isnan(table.loc["color-logreg", "balanced_accuracy_std"])
    markdown = (tmp_path / "out" / "comparison.md").read_text(encoding="utf-8")
    assert "train/val/test patients 9/3/" in markdown


def test_python_m_help():
    result = subprocess.run(
        [sys.executable, "-m", "idc_sklearn", "compare", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    for option in ("--data", "--split", "--preset", "--device", "--max-epochs"):
        assert option in result.stdout
    assert "janowczyk-cnn" in result.stdout


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "the following arguments are required: COMMAND"),
        (["compare", "--preset", "huge"], "--preset: invalid choice: 'huge'"),
        (["compare", "--folds", "1"], "--folds: expected an integer of at least 2"),
        (["compare", "--max-epochs", "zero"], "--max-epochs: expected an integer"),
        (["compare", "--models", "resnet"], "--models: invalid choice: 'resnet'"),
        (["compare", "--device", "tpu"], "--device: expected auto, cpu"),
        (["compare", "--patch-size", "16"], "--patch-size: expected an integer of"),
        (["compare", "--split", "somewhere"], "--split names patients of the IDC"),
        (["compare", "--data", "x", "--n-patients", "5"], "--n-patients sets the"),
        (["compare", "--data", "x", "--split", "y", "--folds", "3"], "--folds cannot"),
        (["compare", "--n-patients", "3", "--folds", "4"], "--folds 4 needs at least"),
        (["compare", "--data", "/no/such/folder"], "--data /no/such/folder:"),
        (["compare", "--data", "x", "--split", "/no/split"], "--split /no/split:"),
        (["compare", "--device", "cuda:64"], "--device cuda:64: this machine has"),
    ],
)
def test_bad_options_are_argparse_errors_naming_the_option(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "usage: idc-sklearn" in err
    assert message in err


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

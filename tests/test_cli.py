"""The idc-sklearn command: end to end on tiny settings, --help, option errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import idc_sklearn.datasets
from idc_sklearn.cli import main
from idc_sklearn.datasets import load_idc, make_idc_patches
from idc_sklearn.report import REPORT_FILES

REPO_ROOT = Path(__file__).resolve().parents[1]
# The paper's split as the README's command names it, relative to the repository.
PAPER_SPLIT = "../shared/data/cruz_roa_split"

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
METRICS = [column[: -len("_mean")] for column in COLUMNS[:-2:2]]
FOLD_COLUMNS = ["model", "fold", *METRICS, "fit_seconds", "n_test"]


def _files(out):
    return sorted(path.name for path in out.iterdir())


def _check_outputs(out, models, n_patches, n_folds, split_ids=None, report=True):
    """The files, consistent with one another; returns the markdown."""
    expected = [*REPORT_FILES, "report.html"] if report else REPORT_FILES
    assert _files(out) == sorted(expected)
    table = pd.read_csv(out / "comparison.csv", index_col="model")
    assert table.index.tolist() == models
    assert table.columns.tolist() == COLUMNS
    folds = pd.read_csv(out / "folds.csv")
    assert folds.columns.tolist() == FOLD_COLUMNS
    assert len(folds) == len(models) * n_folds
    predictions = pd.read_csv(out / "predictions.csv", index_col="index")
    assert len(predictions) == n_patches
    assert predictions.columns.tolist() == ["patient", "fold", "y_true"] + [
        f"{model}_{column}" for model in models for column in ("pred", "score")
    ]
    patients = pd.read_csv(out / "patients.csv", dtype={"patient": str})
    assert patients.columns[:4].tolist() == ["model", "patient", "n_patches", "n_idc"]
    n_patients = predictions["patient"].nunique()
    assert len(patients) == len(models) * n_patients
    assert patients.groupby("model")["n_patches"].sum().eq(n_patches).all()
    if split_ids is not None:
        assert set(patients["patient"]) == set(split_ids)
    assert (out / "comparison.png").read_bytes()[:4] == b"\x89PNG"
    return (out / "comparison.md").read_text(encoding="utf-8")


@pytest.mark.end_to_end
def test_compare_end_to_end_writes_every_file(tmp_path, capsys):
    out = tmp_path / "results"
    argv = [*TINY, "--models", "mlbn-inception", "color-logreg", "--out", str(out)]
    assert main(argv) == 0

    captured = capsys.readouterr()
    assert "mlbn-inception" in captured.out and "color-logreg" in captured.out
    assert "bal. acc." in captured.out and "±" in captured.out
    sentence = "mlbn-inception vs color-logreg (best other): "
    assert sentence in captured.out
    assert "balanced accuracy, 95% CI [" in captured.out
    assert "bootstrap over 4 test patients; the interval " in captured.out
    assert "mlbn-inception (fold 2/2)" in captured.err  # the progress bar
    markdown = _check_outputs(out, ["mlbn-inception", "color-logreg"], 40, 2)
    assert "Data: synthetic make_idc_patches(n_patients=4" in markdown
    assert "Folds: GroupKFold(2) by patient" in markdown
    assert "Machine: " in markdown
    assert "| mlbn-inception | " in markdown
    assert sentence in markdown
    assert "## Per fold" in markdown and "fold 1 (20)" in markdown
    page = (out / "report.html").read_text(encoding="utf-8")
    assert f"<dd>{' '.join(['idc-sklearn', *argv])}</dd>" in page
    assert page.count("<img ") == 9  # 1 + 2 + 1 + 3 heatmaps + 2 learning curves


def test_quiet_prints_only_the_table(tmp_path, capsys):
    argv = [*TINY, "--models", "color-logreg", "--out", str(tmp_path), "--quiet"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out.splitlines()[0].split()[:2] == ["bal.", "acc."]
    assert "report.html" in _files(tmp_path)


def test_no_report_skips_the_page_only(tmp_path, capsys):
    argv = [*TINY, "--models", "color-logreg", "--out", str(tmp_path), "--no-report"]
    assert main(argv) == 0
    _check_outputs(tmp_path, ["color-logreg"], 40, 2, report=False)


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


def test_n_patches_draws_in_proportion_to_patient_and_class(idc_sample_root, tmp_path):
    out = tmp_path / "out"
    argv = ["compare", "--data", str(idc_sample_root), "--n-patches", "400"]
    argv += ["--models", "color-logreg", "--folds", "2", "--quiet", "--out", str(out)]
    assert main(argv) == 0
    markdown = _check_outputs(out, ["color-logreg"], 400, 2)
    assert "400 patches drawn by patient and class (seed 0): 400 patches" in markdown
    full = load_idc(idc_sample_root, progress=False).frame
    drawn = pd.read_csv(out / "predictions.csv", dtype={"patient": str})
    expected = full.groupby(["patient", "target"]).size() * 400 / len(full)
    counts = drawn.groupby(["patient", "y_true"]).size()
    counts = counts.reindex(expected.index, fill_value=0)
    assert (counts - expected).abs().max() < 1


@pytest.mark.skipif(
    not hasattr(idc_sklearn.datasets, "load_idc_sample"),
    reason="idc_sklearn.datasets.load_idc_sample, the built-in sample, is not "
    "in this tree yet",
)
def test_default_data_is_the_built_in_sample(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["compare", "--models", "color-logreg", "--n-patches", "300"]
    argv += ["--folds", "2", "--quiet", "--out", str(out)]
    assert main(argv) == 0
    markdown = _check_outputs(out, ["color-logreg"], 300, 2)
    assert "Data: the built-in real sample load_idc_sample()" in markdown


def test_default_run_draws_600_patches_of_the_sample_in_2_folds(tmp_path):
    out = tmp_path / "out"
    argv = ["compare", "--models", "color-logreg", "--quiet"]
    assert main([*argv, "--out", str(out)]) == 0
    markdown = _check_outputs(out, ["color-logreg"], 600, 2)
    assert "600 patches drawn by patient and class (seed 0)" in markdown
    assert "GroupKFold(2) by patient" in markdown


def test_context_scores_every_model_with_patients_and_positions(tmp_path):
    # The same folds and model with and without --context: the scores move, and
    # the report says how they were made.
    base = ["compare", "--models", "color-logreg", "features-hgb", "--n-patches"]
    base += ["300", "--folds", "2", "--quiet", "--no-report"]
    scores = {}
    for option in ([], ["--context"]):
        out = tmp_path / ("context" if option else "alone")
        assert main([*base, *option, "--out", str(out)]) == 0
        markdown = (out / "comparison.md").read_text()
        said = "every model in context: each patch mixed with its neighbours' "
        assert (said in markdown) == bool(option), markdown
        if option:
            assert "(weight 0.5), then adapted to each patient's IDC share " in markdown
            assert "(strength 300 patches), as mlbn-hgb-context predicts" in markdown
        scores[bool(option)] = pd.read_csv(out / "predictions.csv", index_col="index")
    alone, context = scores[False], scores[True]
    assert alone.index.equals(context.index)
    for name in ("color-logreg", "features-hgb"):
        assert not np.allclose(alone[f"{name}_score"], context[f"{name}_score"])


def test_context_refuses_a_model_without_probabilities(tmp_path, capsys):
    argv = ["compare", "--models", "color-logreg", "texture-svm", "--context"]
    assert main([*argv, "--quiet", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "--context scores probabilities; texture-svm has none" in err, err


def test_context_leaves_texture_svm_out_of_the_default_models(capsys):
    # Without --models, a model without probabilities is left out, and said so;
    # the others are wrapped with the default card's settings and the positions.
    import argparse

    from idc_sklearn import PatientPriorClassifier, make_baseline, make_idc_patches
    from idc_sklearn.cli._compare import _in_context

    idc = make_idc_patches(n_patients=2, patches_per_patient=4, random_state=0)
    models = {name: make_baseline(name) for name in ("color-logreg", "texture-svm")}
    args = argparse.Namespace(models=None, quiet=False)
    wrapped, coords, words = _in_context(args, models, idc)
    assert list(wrapped) == ["color-logreg"]
    assert isinstance(wrapped["color-logreg"], PatientPriorClassifier)
    assert wrapped["color-logreg"].get_params()["neighbour_weight"] == 0.5
    np.testing.assert_array_equal(coords, idc.frame[["x", "y"]].to_numpy())
    assert "texture-svm gives no probabilities; left out" in capsys.readouterr().err
    del idc["frame"]
    _, coords, words = _in_context(args, models, idc)
    assert coords is None and "no positions in the data, so only adapted" in words


def _write_archive(root: Path, patients: list[str]) -> None:
    """One IDC and one non-IDC 50x50 PNG per patient, in the archive's layout."""
    pool = make_idc_patches(n_patients=6, patches_per_patient=40, random_state=0)
    by_class = {label: pool.data[pool.target == label] for label in (0, 1)}
    for i, patient in enumerate(patients):
        for label, patches in by_class.items():
            folder = root / patient / str(label)
            folder.mkdir(parents=True)
            name = f"{patient}_idx5_x{50 * label}_y{50 * i}_class{label}.png"
            Image.fromarray(patches[i % len(patches)]).save(folder / name)


@pytest.mark.end_to_end
def test_paper_preset_on_the_paper_split_end_to_end(tmp_path, monkeypatch, capsys):
    if not (REPO_ROOT / PAPER_SPLIT).is_dir():
        pytest.skip(f"the paper's split is absent: {REPO_ROOT / PAPER_SPLIT}")
    monkeypatch.chdir(REPO_ROOT)
    split = {
        part: (REPO_ROOT / PAPER_SPLIT / f"cases_{part}.txt").read_text().split()
        for part in ("train", "val", "test")
    }
    root = tmp_path / "IDC_regular_ps50_idx5"
    _write_archive(root, [patient for ids in split.values() for patient in ids])
    out = tmp_path / "out"
    argv = ["compare", "--data", str(root), "--split", PAPER_SPLIT]
    argv += ["--preset", "paper", "--max-epochs", "1", "--batch-size", "32"]
    argv += ["--models", "mlbn-inception", "color-logreg", "--quiet"]
    argv += ["--out", str(out), "--device", "cpu"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "bootstrap over 49 test patients" in captured.out
    markdown = _check_outputs(
        out, ["mlbn-inception", "color-logreg"], 98, 1, split_ids=split["test"]
    )
    assert "train/val/test patients 84/29/49" in markdown
    assert "paper preset (the full MLBN network)" in markdown


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
        (
            ["compare", "--data", "synthetic", "--split", "somewhere"],
            "--split names patients of the IDC archive; it cannot be used with",
        ),
        (["compare", "--n-patients", "5", "--split", "x"], "--split names patients"),
        (["compare", "--data", "x", "--n-patients", "5"], "--n-patients sets the"),
        (
            ["compare", "--data", "sample", "--patch-size", "40"],
            "--patch-size sets the synthetic data; it cannot be used with --data "
            "sample",
        ),
        (
            ["compare", "--data", "synthetic", "--n-patches", "50"],
            "--n-patches subsamples real data",
        ),
        (["compare", "--n-patches", "1"], "--n-patches: expected an integer of at"),
        (["compare", "--data", "x", "--split", "y", "--folds", "3"], "--folds cannot"),
        (["compare", "--n-patients", "3", "--folds", "4"], "--folds 4 needs at least"),
        (["compare", "--device", "cuda:64"], "--device cuda:64: this machine has"),
    ],
)
def test_bad_options_are_argparse_errors_naming_the_option(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "usage: idc-sklearn" in err
    assert message in err


def test_faults_found_while_running_exit_1_in_one_line(tmp_path, capsys):
    # As in train, predict and heatmap: what only reading the data can tell is a
    # runtime fault, not a usage error.
    split = tmp_path / "split"
    split.mkdir()
    for part in ("train", "val", "test"):
        (split / f"cases_{part}.txt").write_text(f"nobody-{part}\n")
    (tmp_path / "empty").mkdir()
    faults = [
        (["--data", "/no/such/folder"], "--data /no/such/folder: root="),
        (["--data", str(tmp_path / "empty")], "holds no patient folders"),
        (["--split", "/no/split"], "--split /no/split: folder="),
        (["--data", "x", "--split", "/no/split"], "--split /no/split: folder="),
        (["--data", "sample", "--folds", "200"], "--folds 200 is more than the 114"),
        (["--split", str(split)], "none of the 1 train patients is in --data sample"),
    ]
    for argv, message in faults:
        assert main(["compare", *argv, "--quiet"]) == 1, argv
        err = capsys.readouterr().err
        assert err.startswith("idc-sklearn compare: error: "), err
        assert err.count("\n") == 1 and message in err, err

"""idc-sklearn train, predict, heatmap and info: round trips, files, exit statuses."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from idc_sklearn import (
    MLBNInceptionClassifier,
    _forward,
    load_model,
    make_idc_patches,
)
from idc_sklearn.cli import _info, main

# The smallest training run the command allows: seconds on a CPU.
TINY_TRAIN = ["train", "--preset", "tiny", "--max-epochs", "1", "--device", "cpu"]
SYNTHETIC = ["--data", "synthetic", "--n-patches", "64", "--n-patients", "4"]
# The CSV of predict, as docs/cli.md lists its columns.
PREDICTION_COLUMNS = ["patient", "x", "y", "path", "proba", "predicted"]


def _run(argv) -> tuple[int, str, str]:
    """``main(argv)`` with its stdout and stderr, for module-scoped fixtures."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    return status, out.getvalue(), err.getvalue()


def _write_archive(root: Path, idc) -> None:
    """``idc``'s patches as PNG files in the IDC archive's layout."""
    columns = ["patient", "x", "y", "target"]
    for (patient, x, y, target), patch in zip(
        idc.frame[columns].itertuples(index=False), idc.data, strict=True
    ):
        folder = root / patient / str(target)
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{patient}_idx5_x{x}_y{y}_class{target}.png"
        Image.fromarray(patch).save(folder / name)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny MLBN network trained by the command on 16x16 synthetic patches."""
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    argv = [*TINY_TRAIN, *SYNTHETIC, "--patch-size", "16", "--output", str(path)]
    status, out, err = _run(argv)
    assert status == 0, err
    return path, out


@pytest.fixture(scope="module")
def model(trained):
    return load_model(trained[0])


@pytest.fixture(scope="module")
def patches():
    """24 patches of 3 patients, other than the training ones."""
    return make_idc_patches(
        n_patients=3, patches_per_patient=8, patch_size=16, random_state=1
    )


@pytest.fixture(scope="module")
def archive(tmp_path_factory, patches):
    root = tmp_path_factory.mktemp("archive")
    _write_archive(root, patches)
    return root


@pytest.fixture(scope="module")
def npy(tmp_path_factory, patches):
    path = tmp_path_factory.mktemp("npy") / "patches.npy"
    np.save(path, patches.data)
    return path


def test_train_logs_epochs_summarises_and_saves_a_loadable_model(trained, model):
    _, out = trained
    assert "train_loss" in out and "valid_bacc" in out  # skorch's per-epoch log
    summary = out.strip().splitlines()[-2]
    assert summary.startswith("Trained mlbn-inception (tiny preset) on 64 patches of")
    assert "4 patients" in summary and "for 1 epoch on cpu" in summary
    assert "best validation balanced accuracy" in summary
    assert out.strip().endswith(f"Saved {trained[0]}.")
    assert isinstance(model, MLBNInceptionClassifier)
    assert model.filters == (3, 3) and model.patch_shape == (16, 16, 3)
    assert len(model.history_) == 1


def test_predict_npy_equals_load_model_predict_proba(trained, model, npy, patches):
    csv = npy.parent / "predictions.csv"
    assert main(["predict", str(trained[0]), str(npy), "-o", str(csv), "-q"]) == 0
    table = pd.read_csv(csv)
    assert table.columns.tolist() == PREDICTION_COLUMNS
    assert len(table) == len(patches.data)
    expected = model.predict_proba(patches.data)
    np.testing.assert_allclose(table["proba"], expected[:, 1], rtol=1e-6)
    np.testing.assert_array_equal(table["predicted"], model.predict(patches.data))
    # Nothing is known of an array's patches but their order.
    assert table[["patient", "x", "y", "path"]].isna().all().all()


def test_predict_archive_folder_reads_patient_and_position(
    trained, model, archive, patches, tmp_path
):
    csv = tmp_path / "predictions.csv"
    assert main(["predict", str(trained[0]), str(archive), "-o", str(csv), "-q"]) == 0
    table = pd.read_csv(csv, dtype={"patient": str})
    assert len(table) == len(patches.data)
    assert table["path"].map(lambda p: Path(p).is_file()).all()
    # Each row matches the patch generated at its patient and position.
    index = patches.frame.reset_index().set_index(["patient", "x", "y"])["index"]
    keys = zip(table["patient"], table["x"], table["y"], strict=True)
    rows = index.loc[list(keys)].to_numpy()
    expected = model.predict_proba(patches.data[rows])[:, 1]
    np.testing.assert_allclose(table["proba"], expected, rtol=1e-6)


def test_predict_any_png_folder_parses_names_where_it_can(trained, model, tmp_path):
    rng = np.random.default_rng(0)
    full = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    edge = rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)
    (tmp_path / "slide").mkdir()
    Image.fromarray(full).save(tmp_path / "slide" / "A7_idx5_x51_y101_class1.png")
    Image.fromarray(edge).save(tmp_path / "slide" / "tile_x3_y4.png")
    Image.fromarray(full).save(tmp_path / "slide" / "noname.PNG")
    (tmp_path / "slide" / "notes.txt").write_text("not a patch")
    csv = tmp_path / "out.csv"
    argv = ["predict", str(trained[0]), str(tmp_path / "slide"), "-o", str(csv)]
    assert main([*argv, "-q"]) == 0
    table = pd.read_csv(csv, dtype=str, keep_default_na=False)
    names = table["path"].map(lambda p: Path(p).name).tolist()
    assert names == ["A7_idx5_x51_y101_class1.png", "noname.PNG", "tile_x3_y4.png"]
    assert table["patient"].tolist() == ["A7", "", ""]
    assert table["x"].tolist() == ["51", "", "3"]
    assert table["y"].tolist() == ["101", "", "4"]
    # A smaller patch is padded with zeros at the bottom and right, as load_idc does.
    padded = np.zeros_like(full)
    padded[:10, :12] = edge
    expected = model.predict_proba(np.stack([full, full, padded]))[:, 1]
    np.testing.assert_allclose(table["proba"].astype(float), expected, rtol=1e-6)


def test_predict_leaves_out_files_that_are_not_patches(trained, tmp_path, capsys):
    folder = tmp_path / "slide"
    folder.mkdir()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(folder / "a_x1_y1.png")
    Image.fromarray(np.zeros((20, 16, 3), np.uint8)).save(folder / "big.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n")
    csv = tmp_path / "p.csv"
    argv = ["predict", str(trained[0]), str(folder), "-q"]
    assert main([*argv, "-o", str(csv)]) == 0
    assert pd.read_csv(csv)["path"].map(lambda p: Path(p).name).tolist() == [
        "a_x1_y1.png"
    ]
    err = capsys.readouterr().err
    assert err.startswith("idc-sklearn predict: warning: left out 2 of 3 PNG files")
    assert "not patches of the model's 16x16 size, e.g. path=" in err
    assert "big.png' is 16x20 (width x height), larger than 16x16" in err
    (folder / "a_x1_y1.png").unlink()
    assert main([*argv, "-o", str(csv)]) == 1
    err = capsys.readouterr().err
    assert "none of its 2 PNG files is a patch of the model, e.g." in err


def test_predict_tta_batch_size_and_stdout(trained, model, npy, patches, capsys):
    argv = ["predict", str(trained[0]), str(npy), "--tta", "--batch-size", "5"]
    assert main([*argv, "-o", "-", "-q"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    table = pd.read_csv(io.StringIO(captured.out))
    # The same batches: a float sum may round otherwise in another batch size.
    tta = load_model(trained[0]).set_params(tta=True, batch_size=5)
    expected = tta.predict_proba(patches.data)[:, 1]
    np.testing.assert_allclose(table["proba"], expected, rtol=1e-6)
    assert not np.allclose(expected, model.predict_proba(patches.data)[:, 1])


def test_predict_compile_runs_the_compiled_network(
    trained, npy, patches, monkeypatch, capsys
):
    # torch.compile itself is exercised in test_forward.py; here a spy
    # stands in for it (a real compile of the network costs half a minute).
    compiled = []

    def spy(network, **options):
        compiled.append(options)
        return network

    monkeypatch.setattr(_forward.torch, "compile", spy)
    argv = ["predict", str(trained[0]), str(npy), "--compile", "--batch-size", "5"]
    assert main([*argv, "-o", "-", "-q"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    # one compile for all 24 patches, with frozen weights, for batches of 5
    assert compiled == [{"dynamic": False, "options": {"freezing": True}}]
    table = pd.read_csv(io.StringIO(captured.out))
    eager = load_model(trained[0]).set_params(inference="eager", batch_size=5)
    np.testing.assert_allclose(
        table["proba"], eager.predict_proba(patches.data)[:, 1], atol=1e-5
    )


def test_predict_to_a_closed_pipe_stops_quietly(trained, npy, monkeypatch, capsys):
    # `idc-sklearn predict ... -o - | head -1`: the reader has gone.
    read, write = os.pipe()
    os.close(read)
    with open(write, "w", buffering=1) as stdout:  # flushed at every row
        monkeypatch.setattr(sys, "stdout", stdout)
        assert main(["predict", str(trained[0]), str(npy), "-o", "-", "-q"]) == 1
    assert capsys.readouterr().err == ""


def test_predict_reports_progress_and_counts(trained, npy, tmp_path, capsys):
    csv = tmp_path / "p.csv"
    assert main(["predict", str(trained[0]), str(npy), "-o", str(csv)]) == 0
    err = capsys.readouterr().err
    assert "Predicted 24 patches: " in err and f"wrote {csv}." in err


def test_heatmap_writes_a_png_of_the_patient(trained, archive, tmp_path, capsys):
    png = tmp_path / "slide.png"
    argv = ["heatmap", str(trained[0]), "--data", str(archive)]
    assert main([*argv, "--patient", "synth01", "--output", str(png)]) == 0
    assert "Drew patient synth01 (8 patches" in capsys.readouterr().err
    with Image.open(png) as image:
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.shape[0] > 100 and pixels.shape[1] > 200
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 100  # drawn, not blank


def test_train_on_a_folder_and_on_the_sample(archive, tmp_path):
    path = tmp_path / "folder.safetensors"
    argv = [*TINY_TRAIN, "--data", str(archive), "--output", str(path), "-q"]
    status, out, _ = _run(argv)
    assert status == 0
    assert "on 24 patches of 3 patients" in out and "train_loss" not in out
    # load_idc pastes patches into 50x50: the model takes the archive's size.
    assert load_model(path).patch_shape == (50, 50, 3)
    if "built-in sample:\n  present" in _run(["info"])[1]:
        argv = [*TINY_TRAIN, "--n-patches", "40", "--output", str(path), "-q"]
        status, out, _ = _run(argv)
        assert status == 0
        assert "on 40 patches of" in out and "from the built-in sample" in out


def test_train_writes_a_checkpoint_and_resumes_from_it(tmp_path):
    ckpt = tmp_path / "ckpt"
    argv = [*TINY_TRAIN, *SYNTHETIC, "--patch-size", "16", "--checkpoint-dir"]
    argv += [str(ckpt), "-q", "--output"]
    assert _run([*argv, str(tmp_path / "a.safetensors")])[0] == 0
    assert (ckpt / "checkpoint.safetensors").is_file()
    # The same command again loads the finished fit instead of repeating it.
    assert _run([*argv, str(tmp_path / "b.safetensors")])[0] == 0
    a, b = (load_model(tmp_path / f"{n}.safetensors") for n in "ab")
    X = make_idc_patches(n_patients=1, patches_per_patient=4, patch_size=16).data
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    # Other data in the same folder is refused, not overwritten.
    other = [*argv[:-1], "--seed", "1", "--output", str(tmp_path / "c.safetensors")]
    status, _, err = _run(other)
    assert status == 1 and "checkpoint" in err and "Traceback" not in err


def test_info_prints_versions_device_and_data(archive, capsys):
    assert main(["info", "--data", str(archive), "-q"]) == 0
    out = capsys.readouterr().out
    for name in ("idc_sklearn", "torch", "skorch", "scikit-learn", "numpy"):
        assert f"\n  {name} " in out
    assert "imbalanced-learn" in out and "Python" in out
    assert "--device auto trains on" in out and "logical CPUs" in out
    assert "built-in sample:" in out
    assert "patches   24 of 50x50 pixels (24 smaller edge patches" in out
    assert "patients  3 (8 to 8 patches each" in out
    assert "skipped   0 files" in out


@pytest.mark.parametrize(
    "command", ["compare", "train", "predict", "heatmap", "info", None]
)
def test_help_of_every_command_has_examples(command, capsys):
    assert main(["--help"] if command is None else [command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "usage: idc-sklearn" in out
    if command != "compare":
        assert "examples:" in out


def _runtime_errors(tmp: Path, model: Path, archive: Path) -> list:
    text = tmp / "notes.safetensors"
    text.write_text("not a model")
    array_model = tmp / "array.safetensors"
    np.save(tmp / "array.npy", np.zeros(3))
    (tmp / "array.npy").rename(array_model)
    np.save(tmp / "flat.npy", np.zeros((4, 10), np.uint8))
    np.save(tmp / "objects.npy", np.array([{"a": 1}], dtype=object))
    np.save(tmp / "complex.npy", np.zeros((2, 16, 16, 3), complex))
    (tmp / "empty").mkdir()
    (tmp / "data.csv").write_text("a,b\n")
    (tmp / "fake.npy").write_text("hello")
    m = str(model)
    return [
        (["predict", str(tmp / "none.safetensors"), str(archive)], "MODEL"),
        (["predict", str(tmp), str(archive)], "is a folder; expected a saved model"),
        (["predict", str(text), str(archive)], "notes.safetensors"),
        (["predict", str(array_model), str(archive)], "a NumPy .npy file"),
        (["predict", m, str(tmp / "nowhere")], "PATH"),
        (["predict", m, str(tmp / "flat.npy")], "flat.npy"),
        (["predict", m, str(tmp / "objects.npy")], "objects.npy"),
        (["predict", m, str(tmp / "complex.npy")], "complex"),
        (["predict", m, str(tmp / "fake.npy")], "is not a NumPy .npy file"),
        (["predict", m, str(tmp / "empty")], "holds no PNG patches"),
        (["predict", m, str(tmp / "data.csv")], "expected a folder of PNG patches"),
        (["predict", m, str(archive), "-o", str(tmp / "no/dir/p.csv")], "--output"),
        (["predict", m, str(archive), "-o", str(tmp)], "is a folder"),
        (
            ["heatmap", m, "--data", str(archive), "--patient", "nobody", "-o"]
            + [str(tmp / "s.png")],
            "['nobody'] are not in the archive (3 patients found, e.g. ['synth00'",
        ),
        (
            ["heatmap", m, "--data", "sample", "--patient", "nobody", "-o"]
            + [str(tmp / "s.png")],
            "--patient nobody is not in the built-in sample; its 114 patients are",
        ),
        (
            ["heatmap", m, "--data", "sample", "--patient", "8863", "-o"]
            + [str(tmp / "s.png")],
            "the model takes 16x16 patches",
        ),
        (["train", "--data", str(tmp / "nowhere"), "-o", "m.safetensors"], "--data"),
        (["train", "--data", str(tmp / "empty"), "-o", "m.safetensors"], "--data"),
        (["train", "-o", str(tmp / "no/dir/m.safetensors")], "does not exist"),
        (["info", "--data", str(tmp / "nowhere")], "does not exist"),
    ]


def test_runtime_faults_exit_1_with_one_line_and_no_traceback(
    trained, archive, tmp_path, capsys
):
    for argv, message in _runtime_errors(tmp_path, trained[0], archive):
        assert main([*argv, "-q"]) == 1, argv
        err = capsys.readouterr().err
        assert err.startswith(f"idc-sklearn {argv[0]}: error: "), (argv, err)
        assert err.count("\n") == 1 and message in err, (argv, err)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train"], "the following arguments are required: -o/--output"),
        (["train", "-o", "m", "--preset", "huge"], "--preset: invalid choice"),
        (["train", "-o", "m", "--model", "color-logreg"], "--model: invalid choice"),
        (["train", "-o", "m", "--n-patients", "4"], "--n-patients sets the synthetic"),
        (["train", "-o", "m", "--patch-size", "8"], "at least 16; got 8"),
        (
            ["train", "-o", "m", "--data", "synthetic", "--n-patches", "5"],
            "--n-patches 5 is fewer than one patch for each of the 12 patients",
        ),
        (["train", "-o", "m", "--device", "cuda:64"], "--device cuda:64: this"),
        (["predict", "m.safetensors"], "required: PATH"),
        (["predict", "m", "p", "--batch-size", "0"], "--batch-size: expected"),
        (["heatmap", "m", "-o", "s.png"], "required: --patient"),
        (["heatmap", "m", "--patient", "1", "-o", "s.jpg"], "ending in .png"),
    ],
)
def test_usage_errors_exit_2_naming_the_option(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"usage: idc-sklearn {argv[0]}" in err and message in err


def test_interrupt_exits_130_without_a_traceback(monkeypatch, capsys):
    def interrupted(parser, args, argv):
        raise KeyboardInterrupt

    monkeypatch.setattr(_info, "run", interrupted)
    assert main(["info"]) == 130
    assert capsys.readouterr().err == "idc-sklearn info: interrupted\n"


def test_warnings_are_one_line_each(trained, tmp_path, capsys):
    # A damaged PNG in the archive: load_idc skips it with a warning.
    root = tmp_path / "archive"
    _write_archive(
        root, make_idc_patches(n_patients=1, patches_per_patient=3, patch_size=16)
    )
    (root / "synth00" / "0" / "synth00_idx5_x1_y1_class0.png").write_bytes(b"")
    csv = tmp_path / "p.csv"
    assert main(["predict", str(trained[0]), str(root), "-o", str(csv), "-q"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("idc-sklearn predict: warning: load_idc skipped 1 of 4")
    assert "UserWarning" not in err

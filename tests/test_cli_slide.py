"""cli/_slide.py: ``idc-sklearn slide``, each slide's outputs and the failures."""

from __future__ import annotations

import json

import pandas as pd

from idc_sklearn.cli import main

# The fixture: slide.
pytest_plugins = ["slide_fixtures"]


def test_slide_command_goes_on_past_a_bad_slide(slide, tmp_path, capsys):
    missing, text = tmp_path / "missing.svs", tmp_path / "notes.txt"
    text.write_text("not a slide")
    out = tmp_path / "maps"
    status = main(
        ["slide", "mlbn-small", str(missing), str(slide), str(text), "-o", str(out)]
        + ["--quiet", "--device", "cpu", "--workers", "0"]
    )
    assert status == 1
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 2 and all(
        e.startswith("idc-sklearn slide: error:") for e in errors
    )
    assert "does not exist" in errors[0] and "not a whole-slide image" in errors[1]
    written = out / slide.name
    for name in ("heatmap.png", "probability.tif", "tiles.csv", "regions.geojson"):
        assert (written / name).stat().st_size > 0
    summary = json.loads((written / "summary.json").read_text())
    table = pd.read_csv(out / "slides.csv")
    assert list(table["slide"]) == [str(missing), str(slide), str(text)]
    assert table["error"].isna().tolist() == [False, True, False]
    assert (
        table.loc[1, "tiles"]
        == summary["tiles"]
        == len(pd.read_csv(written / "tiles.csv"))
    )
    assert 0 <= summary["idc_fraction"] <= 1


def test_slide_command_checks_its_options(tmp_path, capsys):
    assert (
        main(["slide", "mlbn-small", "a.svs", "-o", str(tmp_path), "--threshold", "2"])
        == 2
    )
    assert "--threshold 2.0: expected a number in [0, 1]" in capsys.readouterr().err
    for value in ("li", "1.5"):
        assert (
            main(
                ["slide", "mlbn-small", "a.svs", "-o", str(tmp_path)]
                + ["--tissue-threshold", value]
            )
            == 2
        )
        assert (
            f"--tissue-threshold {value}: expected 'otsu' or a number in [0, 1]"
            in capsys.readouterr().err
        )
    file = tmp_path / "file"
    file.write_text("")
    assert main(["slide", "mlbn-small", "a.svs", "-o", str(file)]) == 1
    assert "is a file; expected a folder" in capsys.readouterr().err

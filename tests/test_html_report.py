"""write_html_report: one self-contained, valid page with every section."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from idc_sklearn import (
    MLBNInceptionClassifier,
    compare_models,
    make_baseline,
    make_idc_patches,
    write_html_report,
)
from idc_sklearn.network import PRESETS
from idc_sklearn.report import format_difference

NS = {"h": "http://www.w3.org/1999/xhtml"}
SECTIONS = [
    "What was run",
    "Scores and the lead",
    "Paired differences",
    "ROC and precision-recall curves",
    "Scores per patient",
    "Errors on the slide",
    "Learning curves of the CNNs",
]
SHAPE = (32, 32, 3)


def _compare(models, idc):
    """compare_models on 2 folds by patient, with the details the page reads."""
    return compare_models(
        models, idc.data, idc.target, idc.groups, cv=2, progress=False,
        return_details=True,
    )  # fmt: skip


@pytest.fixture(scope="module")
def comparison():
    """A CNN, a model with probabilities and one with a margin, on 2 folds."""
    idc = make_idc_patches(
        n_patients=6, patches_per_patient=12, patch_size=32, random_state=0
    )
    models = {
        "mlbn-inception": MLBNInceptionClassifier(
            **PRESETS["tiny"],
            patch_shape=SHAPE,
            max_epochs=2,
            batch_size=16,
            verbose=0,
            random_state=0,
        ),
        "color-logreg": make_baseline("color-logreg", patch_shape=SHAPE),
        "texture-svm": make_baseline("texture-svm", patch_shape=SHAPE),
    }
    table, details = _compare(models, idc)
    return idc, table, details


@pytest.fixture(scope="module")
def page(comparison, tmp_path_factory):
    idc, table, details = comparison
    path = tmp_path_factory.mktemp("report") / "report.html"
    written = write_html_report(
        path,
        table,
        details,
        dataset=idc,
        command="idc-sklearn compare --test",
        description="tiny preset, 2 epochs",
    )
    assert written == path
    return path.read_text(encoding="utf-8")


def _parse(text):
    html5lib = pytest.importorskip(
        "html5lib", reason="html5lib is absent (the dev extra)"
    )
    # strict: any HTML5 parse error raises
    return html5lib.HTMLParser(strict=True, namespaceHTMLElements=True).parse(text)


def _section(tree, section_id):
    (section,) = [
        s for s in tree.iterfind(".//h:section", NS) if s.get("id") == section_id
    ]
    return section


def _images(element):
    return element.findall(".//h:img", NS)


def test_compare_keeps_one_history_per_fold_for_the_cnn_only(comparison):
    _, _, details = comparison
    histories = details.histories
    assert list(histories) == ["mlbn-inception"]
    assert len(histories["mlbn-inception"]) == 2
    for history in histories["mlbn-inception"]:
        assert [epoch["epoch"] for epoch in history] == [1, 2]
        assert all(
            "batches" not in epoch and "valid_loss" in epoch for epoch in history
        )


def test_page_is_valid_html5_with_its_sections_in_order(page):
    tree = _parse(page)
    headings = [h.text for h in tree.iterfind(".//h:section/h:h2", NS)]
    assert headings == [f"{i}. {title}" for i, title in enumerate(SECTIONS, 1)]
    assert tree.find(".//h:title", NS).text == "IDC model comparison"


def test_page_loads_nothing_from_outside_the_file(page):
    tree = _parse(page)
    policy = [
        meta.get("content")
        for meta in tree.iterfind(".//h:meta", NS)
        if meta.get("http-equiv") == "Content-Security-Policy"
    ]
    assert policy == ["default-src 'none'; img-src data:; style-src 'unsafe-inline'"]
    for element in tree.iter():
        for attribute in ("src", "href"):
            value = element.get(attribute)
            if value is not None:
                assert value.startswith(("data:image/png;base64,", "#")), value
    assert not tree.findall(".//h:script", NS)
    assert not tree.findall(".//h:link", NS)


def test_every_figure_is_a_png_of_its_size_with_alt_text(page):
    tree = _parse(page)
    images = _images(tree)
    # forest, ROC, PR, patients, 3 heatmaps, 2 learning-curve folds
    assert len(images) == 9
    for img in images:
        assert len(img.get("alt")) > 20
        png = base64.b64decode(img.get("src").split(",", 1)[1])
        with Image.open(io.BytesIO(png)) as image:
            assert image.format == "PNG"
            assert image.size == (int(img.get("width")), int(img.get("height")))
            assert np.asarray(image.convert("L")).std() > 5  # not blank


def test_every_table_has_a_header_row(page):
    tree = _parse(page)
    tables = tree.findall(".//h:table", NS)
    assert len(tables) == 3  # scores, folds, differences
    for table in tables:
        header = table.findall("./h:thead/h:tr/h:th", NS)
        assert header and header[0].text == "model"


def test_scores_and_lead_say_what_the_comparison_found(comparison, page):
    _, table, details = comparison
    tree = _parse(page)
    scores = _section(tree, "scores")
    lead = scores.find(".//h:p[@class]", NS)
    assert lead.text == format_difference(details.differences)
    rows = [
        tr.find("./h:td", NS).text
        for tr in scores.findall(".//h:table[1]/h:tbody/h:tr", NS)
    ]
    assert rows == table.index.tolist()
    run = _section(tree, "run")
    facts = dict(
        zip(
            [dt.text for dt in run.iterfind(".//h:dt", NS)],
            [dd.text for dd in run.iterfind(".//h:dd", NS)],
            strict=True,
        )
    )
    assert facts["Command"] == "idc-sklearn compare --test"
    assert facts["Data"] == "72 patches of 6 patients, " + (
        f"{np.mean(comparison[0].target == 1):.0%} IDC"
    )
    assert facts["Folds"] == table.attrs["cv"]
    assert "scikit-learn" in facts["Versions"] and "torch" in facts["Versions"]


def test_heatmaps_show_the_most_mixed_patients(comparison, page):
    idc, _, details = comparison
    predictions = details.predictions
    counts = predictions.groupby("patient")["y_true"].agg(["sum", "size"])
    minority = np.minimum(counts["sum"], counts["size"] - counts["sum"])
    expected = minority[minority > 0].sort_values(ascending=False, kind="stable")
    tree = _parse(page)
    alts = [img.get("alt") for img in _images(_section(tree, "heatmaps"))]
    shown = [re.match(r"Slide of patient (\S+):", alt).group(1) for alt in alts]
    assert shown == list(expected.index[:3])
    # the reference and the best other model, by the comparison's own ranking
    best = details.differences.attrs["best"]
    assert all(alt.endswith(f"of mlbn-inception and {best}") for alt in alts)


def test_learning_curves_one_figure_per_fold(page):
    tree = _parse(page)
    section = _section(tree, "learning")
    assert [h.text for h in section.iterfind(".//h:h3", NS)] == ["mlbn-inception"]
    alts = [img.get("alt") for img in _images(section)]
    assert [re.search(r"on fold (\d)", alt).group(1) for alt in alts] == ["1", "2"]


def test_without_dataset_the_heatmaps_are_left_out_with_a_note(comparison, tmp_path):
    _, table, details = comparison
    path = write_html_report(tmp_path / "r.html", table, details)
    tree = _parse(path.read_text(encoding="utf-8"))
    section = _section(tree, "heatmaps")
    assert not _images(section)
    assert "pass dataset=" in section.find(".//h:p[@class='note']", NS).text
    assert "Data" not in [dt.text for dt in tree.iterfind(".//h:dt", NS)]


def test_sklearn_models_alone_give_no_learning_curves(tmp_path):
    idc = make_idc_patches(
        n_patients=4, patches_per_patient=10, patch_size=32, random_state=0
    )
    models = {"color": make_baseline("color-logreg", patch_shape=SHAPE)}
    table, details = _compare(models, idc)
    assert details.histories == {}
    path = write_html_report(tmp_path / "r.html", table, details, dataset=idc)
    tree = _parse(path.read_text(encoding="utf-8"))
    assert (
        "One model only"
        in _section(tree, "differences").find(".//h:p[@class='note']", NS).text
    )
    assert (
        "No model kept a training history"
        in _section(tree, "learning").find(".//h:p[@class='note']", NS).text
    )


def test_page_is_replaced_whole(comparison, tmp_path, monkeypatch):
    idc, table, details = comparison
    path = tmp_path / "report.html"
    path.write_text("the old page")

    def fail(*args, **kwargs):
        raise RuntimeError("drawing failed")

    monkeypatch.setattr("idc_sklearn.html_report.plot_learning_curves", fail)
    with pytest.raises(RuntimeError, match="drawing failed"):
        write_html_report(path, table, details, dataset=idc)
    assert path.read_text() == "the old page"


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        (dict(table=[1]), TypeError, "table must be the pandas DataFrame"),
        (
            dict(details={"folds": None}),
            TypeError,
            r"details must be the Bunch .* keys \['folds'\]",
        ),
        (dict(dataset=np.zeros(3)), TypeError, "dataset must be None or the Bunch"),
        (dict(dataset="subset"), ValueError, "pass the dataset whose data"),
        (
            dict(n_heatmaps=-1),
            ValueError,
            "n_heatmaps must be a non-negative integer; got -1",
        ),
        (dict(path=3), TypeError, "path must be a file path; got int"),
        (dict(path="missing/report.html"), FileNotFoundError, "does not exist"),
    ],
)
def test_bad_input_is_refused_naming_the_argument(
    comparison, tmp_path, monkeypatch, change, error, match
):
    idc, table, details = comparison
    monkeypatch.chdir(tmp_path)
    arguments = dict(path="report.html", table=table, details=details, dataset=idc)
    if isinstance(change.get("dataset"), str):
        change = dict(
            dataset=make_idc_patches(n_patients=2, patches_per_patient=5, patch_size=32)
        )
    arguments.update(change)
    path = arguments.pop("path")
    with pytest.raises(error, match=match):
        write_html_report(path, **arguments)
    assert not (tmp_path / "report.html").exists()


def test_details_of_other_kinds_are_read_as_mappings(comparison, tmp_path):
    # A plain dict with the same keys (e.g. rebuilt from the CSV files) works too.
    idc, table, details = comparison
    path = write_html_report(tmp_path / "r.html", table, dict(details), dataset=idc)
    assert len(_images(_parse(path.read_text(encoding="utf-8")))) == 9
    assert isinstance(details.predictions, pd.DataFrame)

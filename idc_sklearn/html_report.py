"""The comparison as one self-contained HTML page.

:func:`write_html_report` turns what :func:`~idc_sklearn.compare_models` returns with
``return_details=True`` into ``report.html``: what was run, the scores and the lead
with its interval, the paired differences, ROC and precision-recall curves, the
per-patient scores, slide heatmaps of patients who show both classes, and the CNNs'
learning curves. Every figure comes from :mod:`idc_sklearn.plotting` and is
embedded as a PNG data URI; the page carries a content security policy that lets it
load nothing from outside the file, so it opens offline, from a mail attachment or
a shared drive. Jinja2 renders the template (``templates/report.html.jinja``),
pandas the tables. No torch.
"""

from __future__ import annotations

import base64
import datetime
import io
import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from matplotlib.figure import Figure
from scipy.special import expit
from sklearn.utils import Bunch

from idc_sklearn._checks import check_output_path
from idc_sklearn._files import atomic_write
from idc_sklearn._machine import cpu_name
from idc_sklearn.plotting import (
    plot_learning_curves,
    plot_paired_differences,
    plot_patient_heatmap,
    plot_patient_scores,
    plot_precision_recall_curves,
    plot_roc_curves,
)
from idc_sklearn.report import (
    format_difference,
    format_folds,
    format_table,
    patient_table,
)

__all__ = ["write_html_report"]

# The libraries whose versions the page records, by distribution name.
_VERSIONS = (
    "torch",
    "skorch",
    "scikit-learn",
    "imbalanced-learn",
    "numpy",
    "pandas",
    "matplotlib",
)
_DPI = 100


@dataclass
class _Figure:
    png: str
    alt: str
    caption: str
    width: int
    height: int


@dataclass
class _Group:
    figures: list[_Figure]
    title: str | None = None
    # Figures side by side where the page is wide enough, else one per row.
    side_by_side: bool = True


@dataclass
class _Section:
    id: str
    title: str
    intro: str | None = None
    facts: list[tuple[str, str]] = field(default_factory=list)
    lead: str | None = None
    lead_clear: bool = False
    tables: list[Markup] = field(default_factory=list)
    note: str | None = None
    figure_groups: list[_Group] = field(default_factory=list)


def _embed(figure: Figure, alt: str, caption: str) -> _Figure:
    """The figure as a base64 PNG, with its alt text and caption."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI)
    width, height = (figure.get_size_inches() * _DPI).round().astype(int)
    png = base64.b64encode(buffer.getvalue()).decode("ascii")
    return _Figure(png, alt, caption, int(width), int(height))


def _html_table(frame: pd.DataFrame, *, index: bool = True) -> Markup:
    # pandas escapes the cells; the result is trusted markup for the template.
    return Markup(frame.to_html(index=index, border=0, classes="scores", escape=True))


def _check_inputs(table, details, dataset) -> None:
    if not isinstance(table, pd.DataFrame):
        raise TypeError(
            "table must be the pandas DataFrame compare_models returns; got "
            f"{type(table).__name__}."
        )
    keys = ("folds", "predictions", "differences")
    if not isinstance(details, Mapping) or not all(k in details for k in keys):
        raise TypeError(
            "details must be the Bunch compare_models(..., return_details=True) "
            f"returns, with {', '.join(keys)}; got {type(details).__name__}"
            + (
                f" with keys {sorted(details)}."
                if isinstance(details, Mapping)
                else "."
            )
        )
    if dataset is None:
        return
    frame = getattr(dataset, "frame", None)
    data = getattr(dataset, "data", None)
    if data is None or not isinstance(frame, pd.DataFrame):
        raise TypeError(
            "dataset must be None or the Bunch the models were compared on, with "
            "data and frame, as load_idc, load_idc_sample and make_idc_patches "
            f"return; got {type(dataset).__name__}."
        )
    largest = int(details["predictions"].index.max())
    if largest >= len(data) or len(frame) != len(data):
        raise ValueError(
            f"dataset has {len(data)} patches and {len(frame)} frame rows, but the "
            f"predictions index patch {largest}; pass the dataset whose data the "
            "models were compared on."
        )


def _machine() -> str:
    return (
        f"{cpu_name()}, {os.cpu_count()} CPUs; {platform.system()} "
        f"{platform.release()}; Python {platform.python_version()}"
    )


def _versions() -> dict[str, str]:
    import idc_sklearn

    versions = {"idc_sklearn": idc_sklearn.__version__}
    for name in _VERSIONS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _data_facts(tested, dataset) -> list[tuple[str, str]]:
    facts = []
    if dataset is not None:
        target = np.asarray(dataset.target)
        patients = pd.Series(dataset.frame["patient"]).nunique()
        facts.append(
            (
                "Data",
                f"{len(target):,} patches of {patients:,} patients, "
                f"{np.mean(target == 1):.0%} IDC",
            )
        )
    facts.append(
        (
            "Scored",
            f"{len(tested):,} test patches of {tested['patient'].nunique():,} "
            f"patients, {np.mean(tested['y_true'] == 1):.0%} IDC, each predicted "
            "by models that never saw its patient",
        )
    )
    return facts


def _run_section(table, tested, dataset, command, description, versions):
    facts = []
    if command:
        facts.append(("Command", command))
    if description:
        facts.append(("Settings", description))
    facts += _data_facts(tested, dataset)
    n_folds = table.attrs.get("n_folds")
    facts.append(("Folds", str(table.attrs.get("cv") or f"{n_folds} folds by patient")))
    facts.append(("Models", ", ".join(map(str, table.index))))
    facts.append(("Machine", _machine()))
    facts.append(
        (
            "Versions",
            ", ".join(f"{name} {version}" for name, version in versions.items()),
        )
    )
    return _Section("run", "What was run", facts=facts)


def _scores_section(table, details):
    scores = format_table(table).reset_index()
    folds = format_folds(details["folds"]).reset_index(names="model")
    sentence = format_difference(details["differences"])
    differences = details["differences"]
    clear = bool(len(differences)) and bool(differences["low"].iloc[0] > 0)
    return _Section(
        "scores",
        "Scores and the lead",
        intro=(
            "Mean ± standard deviation over folds, on patients each model never "
            "saw; fit s is the mean fit time per fold, patches/s the speed of "
            "predict. The second table gives each fold's balanced accuracy (test "
            "patches in brackets)."
        ),
        lead=sentence,
        lead_clear=clear,
        tables=[_html_table(scores, index=False), _html_table(folds, index=False)],
        note=(
            "The lead is the reference model's balanced accuracy minus the best "
            "other model's, on every fold's test patches pooled; its 95% interval "
            "comes from 2,000 resamples of the test patients with replacement, all "
            "of a patient's patches together, both models on the same resample."
        ),
    )


def _differences_section(details):
    differences = details["differences"]
    reference = differences.attrs.get("reference")
    section = _Section(
        "differences",
        "Paired differences",
        intro=(
            f"{reference}'s balanced accuracy minus every other model's, with 95% "
            "intervals over patients: green where the interval lies above 0, red "
            "below, grey where it includes 0."
        ),
    )
    if differences.empty:
        section.note = "One model only: there is no difference to show."
        return section
    figure, _, _ = plot_paired_differences(differences)
    section.figure_groups.append(
        _Group(
            [
                _embed(
                    figure,
                    f"Forest plot of {reference}'s lead in balanced accuracy over "
                    f"{len(differences)} other models, with 95% intervals",
                    "Dot: the difference on all test patches; bar: its 95% interval.",
                )
            ]
        )
    )
    shown = differences.reset_index()[["model", "difference", "low", "high"]]
    shown[["difference", "low", "high"]] = shown[["difference", "low", "high"]].map(
        lambda value: f"{value:+.3f}"
    )
    section.tables.append(_html_table(shown, index=False))
    return section


def _idc_scores(predictions) -> dict[str, np.ndarray]:
    """Each model's IDC score on the test patches, as a number in [0, 1].

    Probabilities as they are; margins through the logistic function (the same
    order, 0 at the threshold 0.5); models without a score give their predictions.
    """
    scores = {}
    for model, method in predictions.attrs["score_method"].items():
        if method == "predict_proba":
            scores[model] = predictions[f"{model}_score"].to_numpy(dtype=float)
        elif method == "decision_function":
            scores[model] = expit(predictions[f"{model}_score"].to_numpy(dtype=float))
    return scores


def _curves_section(tested, scores):
    section = _Section(
        "curves",
        "ROC and precision-recall curves",
        intro=(
            "Every model's IDC score on the test patches of all folds pooled. "
            "Scores of models with a margin rather than a probability pass "
            "through the logistic function, which keeps their order."
        ),
    )
    if not scores:
        section.note = "No model gave a score; there is no curve to draw."
        return section
    y_true = tested["y_true"].to_numpy()
    roc, _, _ = plot_roc_curves(y_true, scores)
    pr, _, _ = plot_precision_recall_curves(y_true, scores)
    section.figure_groups.append(
        _Group(
            [
                _embed(
                    roc,
                    f"ROC curves of {len(scores)} models",
                    "ROC, AUC in the legend.",
                ),
                _embed(
                    pr,
                    f"Precision-recall curves of {len(scores)} models",
                    "Precision-recall, average precision in the legend.",
                ),
            ]
        )
    )
    return section


def _patients_section(details):
    patients = patient_table(details["predictions"])
    figure, _, _ = plot_patient_scores(patients)
    n = patients["patient"].nunique()
    return _Section(
        "patients",
        "Scores per patient",
        intro=(
            "Balanced accuracy of every model on every test patient. Patients who "
            "show both classes come first, on the shaded band, hardest first; for "
            "patients who show one class it is the share of that class called "
            "right."
        ),
        figure_groups=[
            _Group(
                [
                    _embed(
                        figure,
                        f"Balanced accuracy of each model on each of {n} test "
                        "patients, patients with both classes marked",
                        "A dot per patient and model.",
                    )
                ]
            )
        ],
    )


def _mixed_patients(tested: pd.DataFrame, n: int) -> list[str]:
    """Up to ``n`` patients with both classes, the most evenly mixed first."""
    counts = (
        tested.assign(idc=tested["y_true"] == 1)
        .groupby(tested["patient"].astype(str))["idc"]
        .agg(["sum", "size"])
    )
    counts["minority"] = np.minimum(counts["sum"], counts["size"] - counts["sum"])
    mixed = counts[counts["minority"] > 0]
    mixed = mixed.sort_values(["minority", "size"], ascending=False, kind="stable")
    return list(mixed.index[:n])


def _heatmap_section(details, tested, scores, dataset, n_heatmaps):
    differences = details["differences"]
    reference = differences.attrs.get("reference")
    best = differences.attrs.get("best")
    section = _Section(
        "heatmaps",
        "Errors on the slide",
        intro=(
            "Test patients who show both classes, rebuilt from their patches: the "
            f"true labels beside the IDC probability of {reference}"
            + (f" and of {best}, the best other model." if best else ".")
        ),
    )
    if dataset is None:
        section.note = (
            "Not drawn: the report was written without the dataset (pass "
            "dataset= to write_html_report)."
        )
        return section
    missing = [c for c in ("patient", "x", "y") if c not in dataset.frame.columns]
    if missing:
        section.note = f"Not drawn: the dataset's frame lacks the columns {missing}."
        return section
    shown = [model for model in (reference, best) if model in scores]
    chosen = _mixed_patients(tested, n_heatmaps)
    if not chosen or not shown:
        section.note = (
            "Not drawn: no test patient shows both classes."
            if not chosen
            else "Not drawn: neither model gave a score."
        )
        return section
    frame = dataset.frame.reset_index(drop=True)
    figures = []
    for patient in chosen:
        rows = np.flatnonzero(tested["patient"].astype(str).to_numpy() == patient)
        index = tested.index.to_numpy()[rows]
        patches = np.asarray(dataset.data[index])
        if patches.ndim != 4:
            section.note = (
                "Not drawn: the dataset's patches are flattened rows; pass the "
                "dataset with patches of shape (n, height, width, 3)."
            )
            return section
        labels = (tested["y_true"].to_numpy()[rows] == 1).astype(int)
        # The patient's test patches, labelled as the comparison scored them.
        slide = Bunch(data=patches, frame=frame.iloc[index].assign(target=labels))
        figure, axes, _ = plot_patient_heatmap(
            slide, {model: scores[model][rows] for model in shown}, patient=patient
        )
        axes[0].set_title(shown[0])
        figure.suptitle(f"patient {patient}: {len(rows)} patches, {labels.sum()} IDC")
        figures.append(
            _embed(
                figure,
                f"Slide of patient {patient}: true labels beside the IDC probability "
                f"of {' and '.join(shown)}",
                f"Patient {patient}: red is IDC (or a high probability), blue none.",
            )
        )
    # Slides are read in detail: one per row, at the page's width.
    section.figure_groups.append(_Group(figures, side_by_side=False))
    return section


def _learning_section(details):
    histories = details.get("histories") or {}
    section = _Section(
        "learning",
        "Learning curves of the CNNs",
        intro=(
            "Training and validation loss and the validation score per epoch, per "
            "fold; the dashed line marks the epoch whose weights were kept (early "
            "stopping's best). A validation curve still rising at the last epoch "
            "means training stopped while the network was still learning."
        ),
    )
    if not histories:
        section.note = "No model kept a training history (no CNN was compared)."
        return section
    for model, folds in histories.items():
        figures = []
        for k, history in enumerate(folds, start=1):
            try:
                figure, _, _ = plot_learning_curves(history)
            except ValueError as error:  # an empty history: nothing to draw
                section.note = f"{model}, fold {k}: {error}"
                continue
            figure.suptitle(f"{model}, fold {k} ({len(history)} epochs)")
            figures.append(
                _embed(
                    figure,
                    f"Learning curves of {model} on fold {k}: loss and validation "
                    "score per epoch",
                    f"Fold {k}.",
                )
            )
        section.figure_groups.append(_Group(figures, title=str(model)))
    return section


def write_html_report(
    path: str | os.PathLike,
    table: pd.DataFrame,
    details,
    *,
    dataset=None,
    command: str | None = None,
    description: str | None = None,
    title: str = "IDC model comparison",
    n_heatmaps: int = 3,
) -> Path:
    """Write a comparison as one self-contained HTML page.

    The page shows, in order: what was run (command, data, folds, machine,
    versions, time); the score table with means and standard deviations over
    folds, and the reference model's lead over the best other with its 95%
    interval in words; a forest plot of the paired differences; ROC and
    precision-recall curves pooled over folds; balanced accuracy per test
    patient; slide heatmaps of test patients who show both classes (with
    ``dataset``); the CNNs' learning curves per fold. Figures are PNGs embedded in
    the file, and a content security policy keeps the page from loading anything
    else: it opens offline and can be sent as it is.

    Parameters
    ----------
    path : str or path-like
        The HTML file to write (its folder must exist); replaced whole or not at
        all.
    table, details
        What :func:`~idc_sklearn.compare_models` returns with
        ``return_details=True``.
    dataset : sklearn.utils.Bunch, default=None
        The dataset the models were compared on, as :func:`~idc_sklearn.load_idc`,
        :func:`~idc_sklearn.load_idc_sample` or
        :func:`~idc_sklearn.make_idc_patches` return it (``data`` of shape
        ``(n, height, width, 3)``, ``target`` and a ``frame`` with ``patient``,
        ``x``, ``y``). It gives the data's size and the slide heatmaps; without it
        the heatmaps are left out, with a note on the page.
    command : str, default=None
        The command that ran the comparison, shown first.
    description : str, default=None
        A line on the models' settings (network, epochs, batch size).
    title : str, default="IDC model comparison"
        The page's title and heading.
    n_heatmaps : int, default=3
        At most this many patients' slide heatmaps, the most evenly mixed
        patients first.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    TypeError
        If ``table``, ``details`` or ``dataset`` is not what compare_models and
        the loaders return.
    ValueError
        If ``dataset`` does not hold the compared patches, or ``n_heatmaps`` is
        not a non-negative integer.
    FileNotFoundError
        If the folder of ``path`` does not exist.

    See Also
    --------
    idc_sklearn.compare_models : The comparison this page shows.

    Examples
    --------
    >>> from idc_sklearn import compare_models, make_baseline, make_idc_patches
    >>> from idc_sklearn import write_html_report
    >>> idc = make_idc_patches(n_patients=6, patches_per_patient=20, patch_size=32,
    ...                        random_state=0)
    >>> models = {name: make_baseline(name, patch_shape=(32, 32, 3))
    ...           for name in ("color-logreg", "features-rf")}
    >>> table, details = compare_models(models, idc.data, idc.target, idc.groups,
    ...                                 cv=3, progress=False, return_details=True)
    >>> write_html_report("report.html", table, details, dataset=idc)  # doctest: +SKIP
    PosixPath('report.html')
    """
    path = check_output_path(
        path,
        expected="a file path",
        no_folder="{name}={path!r}: its folder {folder!r} does not exist; "
        "create it first.",
    )
    if (
        isinstance(n_heatmaps, bool)
        or not isinstance(n_heatmaps, (int, np.integer))
        or n_heatmaps < 0
    ):
        raise ValueError(
            f"n_heatmaps must be a non-negative integer; got {n_heatmaps!r}."
        )
    _check_inputs(table, details, dataset)
    versions = _versions()
    predictions = details["predictions"]
    # Each test patch once (a splitter whose test sets overlap repeats some), with
    # every model's IDC score on it.
    tested = predictions[~predictions.index.duplicated()]
    scores = _idc_scores(tested)
    sections = [
        _run_section(table, tested, dataset, command, description, versions),
        _scores_section(table, details),
        _differences_section(details),
        _curves_section(tested, scores),
        _patients_section(details),
        _heatmap_section(details, tested, scores, dataset, int(n_heatmaps)),
        _learning_section(details),
    ]
    environment = Environment(
        loader=PackageLoader("idc_sklearn", "templates"),
        autoescape=select_autoescape(["html", "jinja"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    written = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    page = environment.get_template("report.html.jinja").render(
        title=title, sections=sections, versions=versions, written=written
    )
    with atomic_write(path, "w", encoding="utf-8") as f:
        f.write(page)
    return path

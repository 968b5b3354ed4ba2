"""idc_sklearn.plotting: each figure checked on its rendered pixels, lines and texts."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import matplotlib.colors
import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.container import BarContainer, ErrorbarContainer
from matplotlib.figure import Figure
from PIL import Image
from sklearn.metrics import average_precision_score, roc_auc_score

from idc_sklearn import load_idc_sample, make_idc_patches
from idc_sklearn.plotting import (
    plot_comparison,
    plot_confusion_matrix,
    plot_learning_curves,
    plot_paired_differences,
    plot_patient_heatmap,
    plot_patient_scores,
    plot_precision_recall_curves,
    plot_roc_curves,
    plot_slide_heatmap,
    plot_slide_prediction,
    slide_image,
)


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
    figure = plot_comparison(table, path=path)
    with Image.open(path) as png:
        assert png.format == "PNG"
        assert png.size == tuple(
            np.round(figure.get_size_inches() * figure.dpi).astype(int)
        )
    with pytest.raises(FileNotFoundError, match="does not exist; create it first"):
        plot_comparison(table, path=tmp_path / "missing" / "comparison.png")


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


@pytest.mark.parametrize(
    "module",
    ["_comparison", "_differences", "_training", "_classification", "_slides"],
)
def test_docstring_examples(module):
    result = doctest.testmod(importlib.import_module(f"idc_sklearn.plotting.{module}"))
    assert result.attempted > 0 and result.failed == 0


# --- rendering helpers ------------------------------------------------------------


def _render(figure) -> np.ndarray:
    """The figure drawn by Agg, as an (rows, cols, 3) uint8 RGB array."""
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def _pixel(image: np.ndarray, ax, x: float, y: float) -> np.ndarray:
    """The rendered colour at data point (x, y) of ``ax``, as int RGB."""
    column, row = ax.transData.transform((x, y))
    return image[int(round(image.shape[0] - row)), int(round(column))].astype(int)


def _legend(ax) -> list[str]:
    return [text.get_text() for text in ax.get_legend().get_texts()]


# --- slide_image ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiles():
    """Four distinct 10x10 patches on a 10-pixel grid, one cell of the 3x3 box empty
    and one patch padded (only its top 6 rows are image)."""
    rng = np.random.default_rng(0)
    patches = rng.integers(0, 200, size=(4, 10, 10, 3), dtype=np.uint8)
    x = np.array([101, 111, 101, 121])
    y = np.array([201, 201, 211, 221])
    heights = np.array([10, 10, 6, 10])
    widths = np.array([10, 10, 10, 10])
    return patches, x, y, heights, widths


def test_slide_image_places_each_patch_at_its_xy(tiles):
    patches, x, y, heights, widths = tiles
    slide = slide_image(patches, x, y)
    assert slide.shape == (30, 30, 3) and slide.dtype == np.uint8
    covered = np.zeros(slide.shape[:2], dtype=bool)
    for patch, left, top in zip(patches, x - 101, y - 201, strict=True):
        np.testing.assert_array_equal(slide[top : top + 10, left : left + 10], patch)
        covered[top : top + 10, left : left + 10] = True
    assert (slide[~covered] == 255).all()
    assert (~covered).sum() == 5 * 10 * 10


def test_slide_image_pastes_only_the_image_part_of_padded_patches(tiles):
    patches, x, y, heights, widths = tiles
    slide = slide_image(patches, x, y, heights=heights, widths=widths, background=7)
    np.testing.assert_array_equal(slide[10:16, 0:10], patches[2, :6])
    assert (slide[16:20, 0:10] == 7).all()


def test_slide_image_downsample_averages_blocks(tiles):
    patches, x, y, _, _ = tiles
    full = slide_image(patches, x, y).astype(float)
    small = slide_image(patches, x, y, downsample=2)
    assert small.shape == (15, 15, 3)
    blocks = full.reshape(15, 2, 15, 2, 3).mean(axis=(1, 3))
    assert np.abs(small - blocks).max() <= 1
    assert slide_image(patches, x, y, downsample=4).shape == (8, 8, 3)


@pytest.fixture(scope="module")
def sample():
    return load_idc_sample()


def test_slide_image_rebuilds_real_patients(sample):
    frame = sample.frame
    padded = frame[frame["height"] < 50]
    assert len(padded) > 0
    for patient in (padded["patient"].iloc[0], frame["patient"].iloc[-1]):
        rows = np.flatnonzero(frame["patient"] == patient)
        part = frame.iloc[rows]
        x, y = part["x"].to_numpy(), part["y"].to_numpy()
        slide = slide_image(
            sample.data[rows],
            x,
            y,
            heights=part["height"].to_numpy(),
            widths=part["width"].to_numpy(),
        )
        assert slide.shape[:2] == (
            (y + part["height"]).max() - y.min(),
            (x + part["width"]).max() - x.min(),
        )
        for i, row in enumerate(part.itertuples()):
            top, left = row.y - y.min(), row.x - x.min()
            np.testing.assert_array_equal(
                slide[top : top + row.height, left : left + row.width],
                sample.data[rows[i], : row.height, : row.width],
            )
            # The loader's zero padding is not pasted: background shows there.
            assert (
                slide[top + row.height : top + 50, left : left + row.width] == 255
            ).all()


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"x": [1, 2, 3]}, ValueError, r"x has 3 values; expected 4"),
        ({"y": [1.5, 2, 3, 4]}, ValueError, r"y must hold whole numbers"),
        ({"heights": [10, 10, 11, 10]}, ValueError, r"heights must be between 1"),
        ({"patches": np.zeros((4, 10, 10, 3))}, ValueError, r"uint8 RGB.*float64"),
        ({"patches": np.zeros((4, 10, 10), np.uint8)}, ValueError, r"\(n, height"),
        (
            {"downsample": 0},
            ValueError,
            r"downsample must be an int >= 1 \(1 keeps every pixel\); got 0",
        ),
        ({"background": (1, 2)}, ValueError, r"background must be"),
        ({"x": [0, 0, 0, 10**9]}, ValueError, r"x and y span"),
    ],
)
def test_slide_image_errors(tiles, change, error, match):
    patches, x, y, _, _ = tiles
    arguments = {"patches": patches, "x": x, "y": y, **change}
    with pytest.raises(error, match=match):
        slide_image(**arguments)


# --- slide heatmaps ---------------------------------------------------------------


@pytest.fixture(scope="module")
def grey_slide():
    """Grey 50x50 patches in an L: high probability on two, low on the other two."""
    patches = np.full((4, 50, 50, 3), 200, dtype=np.uint8)
    x = np.array([1, 51, 1, 101])
    y = np.array([1, 1, 51, 101])
    proba = np.array([0.95, 0.05, 0.05, 0.95])
    labels = np.array([1, 0, 1, 0])
    return patches, x, y, proba, labels


def _centre(x, y):
    return x + 25, y + 25


def test_heatmap_is_red_where_probable_blue_where_not(grey_slide):
    patches, x, y, proba, labels = grey_slide
    figure, axes, artists = plot_slide_heatmap(patches, x, y, proba, labels=labels)
    assert len(axes) == 2 and [ax.get_title() for ax in axes] == [
        "IDC probability",
        "true label",
    ]
    image = _render(figure)
    for ax, values in zip(axes, (proba, labels), strict=True):
        for xi, yi, value in zip(x, y, values, strict=True):
            red, _, blue = _pixel(image, ax, *_centre(xi, yi))
            if value > 0.5:
                assert red > blue + 40, (ax.get_title(), xi, yi)
            else:
                assert blue > red + 30, (ax.get_title(), xi, yi)
        # (101, 51) lies in the slide's box but under no patch: background, no colour.
        np.testing.assert_array_equal(_pixel(image, ax, 126, 76), [255, 255, 255])
    assert artists["colorbar"].ax.get_ylabel() == "IDC probability"
    assert artists["proba"].get_array().shape == (150, 150)
    assert artists["proba"].get_array().mask[75, 125]


def test_heatmap_alone_on_given_axes(grey_slide):
    patches, x, y, proba, _ = grey_slide
    figure = Figure()
    ax = figure.add_subplot()
    returned, axes, artists = plot_slide_heatmap(patches, x, y, proba, ax=ax)
    assert returned is figure and axes == [ax]
    assert "labels" not in artists and len(artists["slide"]) == 1
    with pytest.raises(ValueError, match="ax must be None or 2 matplotlib Axes"):
        plot_slide_heatmap(patches, x, y, proba, labels=[0, 1, 0, 1], ax=ax)


def test_heatmap_downsamples_large_slides_automatically():
    side = 40
    patches = np.zeros((side * side, 50, 50, 3), dtype=np.uint8)
    rows, cols = np.divmod(np.arange(side * side), side)
    _, _, artists = plot_slide_heatmap(
        patches, 1 + 50 * cols, 1 + 50 * rows, np.full(side * side, 0.5)
    )
    # 2,000 x 2,000 pixels, reduced by 3 to at most 800 a side.
    assert artists["slide"][0].get_array().shape == (667, 667, 3)
    _, _, artists = plot_slide_heatmap(
        patches[:4], [1, 51, 1, 51], [1, 1, 51, 51], np.full(4, 0.5), downsample=1
    )
    assert artists["slide"][0].get_array().shape == (100, 100, 3)


def test_heatmap_saves_png_of_the_figure_size(grey_slide, tmp_path):
    patches, x, y, proba, labels = grey_slide
    path = tmp_path / "heatmap.png"
    figure, _, _ = plot_slide_heatmap(patches, x, y, proba, labels=labels, path=path)
    with Image.open(path) as png:
        assert png.format == "PNG"
        assert png.size == tuple(
            np.round(figure.get_size_inches() * figure.dpi).astype(int)
        )


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"proba": [0.5, 0.5, 1.5, 0.5]}, ValueError, r"proba must hold prob.*1\.5"),
        ({"proba": np.full((4, 2), 0.5)}, ValueError, r"proba\[:, 1\]"),
        ({"proba": [0.5, 0.5]}, ValueError, r"proba has 2 values; expected 4"),
        ({"labels": [0, 1, 2, 1]}, ValueError, r"labels must be 0.*\[2\]"),
        ({"alpha": 2}, ValueError, r"alpha must be a number in \[0, 1\]; got 2"),
        ({"downsample": "fast"}, ValueError, r'"auto" or an int >= 1'),
        ({"path": "no/such/folder/h.png"}, FileNotFoundError, r"does not exist"),
        ({"path": "heatmap.svg"}, ValueError, r"does not end in \.png"),
    ],
)
def test_heatmap_errors(grey_slide, change, error, match):
    patches, x, y, proba, _ = grey_slide
    arguments = {"patches": patches, "x": x, "y": y, "proba": proba, **change}
    with pytest.raises(error, match=match):
        plot_slide_heatmap(**arguments)


def test_heatmap_of_several_maps_side_by_side(grey_slide):
    patches, x, y, proba, labels = grey_slide
    maps = {"model a": proba, "model b": 1 - proba}
    figure, axes, artists = plot_slide_heatmap(patches, x, y, maps, labels=labels)
    assert [ax.get_title() for ax in axes] == ["model a", "model b", "true label"]
    assert list(artists["proba"]) == ["model a", "model b"]
    assert len(artists["slide"]) == 3 and "labels" in artists
    image = _render(figure)
    for ax, values in zip(axes, (proba, 1 - proba, labels), strict=True):
        for xi, yi, value in zip(x, y, values, strict=True):
            red, _, blue = _pixel(image, ax, *_centre(xi, yi))
            assert (red > blue + 30) if value > 0.5 else (blue > red + 30)
    # One colour bar for every panel, on the first map's scale.
    assert artists["colorbar"].mappable is artists["proba"]["model a"]
    _, _, alone = plot_slide_heatmap(patches, x, y, proba)
    np.testing.assert_array_equal(
        artists["proba"]["model a"].get_array().filled(-1),
        alone["proba"].get_array().filled(-1),
    )


@pytest.mark.parametrize(
    ("maps", "match"),
    [
        ({}, "non-empty mapping of names"),
        ({1: [0.5] * 4}, r"names \(str\).*\[1\]"),
        ({"a": [0.5] * 4, "b": [0.5, 2, 0.5, 0.5]}, r"proba\['b'\] must hold prob"),
        ({"a": [0.5] * 3}, r"proba\['a'\] has 3 values; expected 4"),
    ],
)
def test_heatmap_maps_errors(grey_slide, maps, match):
    patches, x, y, _, _ = grey_slide
    with pytest.raises(ValueError, match=match):
        plot_slide_heatmap(patches, x, y, maps)


@pytest.fixture(scope="module")
def synthetic():
    return make_idc_patches(n_patients=3, patches_per_patient=12, random_state=0)


def test_patient_heatmap_from_each_loader(synthetic, sample):
    for dataset, patient in ((synthetic, "synth01"), (sample, 8863)):
        rows = np.flatnonzero(dataset.frame["patient"] == str(patient))
        proba = dataset.target * 0.9 + 0.05
        _, axes, artists = plot_patient_heatmap(dataset, proba, patient=patient)
        assert axes[0].get_title() == f"patient {patient}: IDC probability"
        # The probabilities of the whole dataset or of the patient alone: one figure.
        _, _, alone = plot_patient_heatmap(dataset, proba[rows], patient=patient)
        np.testing.assert_array_equal(
            artists["proba"].get_array().filled(-1),
            alone["proba"].get_array().filled(-1),
        )
        heat = artists["labels"].get_array()
        assert set(np.unique(heat.compressed())) <= {0.0, 1.0}
        assert heat.count() > 0


def test_patient_heatmap_from_load_idc(idc_sample_root, sample, tmp_path):
    from sklearn.utils import Bunch

    from idc_sklearn import load_idc

    # Patient 8863's files are in idc_sample and idc_more; the sample holds a draw.
    roots = [idc_sample_root, idc_sample_root.parent / "idc_more"]
    if not roots[1].is_dir():
        pytest.skip(f"the shared folder {roots[1]} is absent")
    loaded = load_idc(roots, patients=["8863"], progress=False)
    rows = np.flatnonzero(sample.frame["patient"] == "8863")
    names = {Path(path).name for path in sample.frame["path"].iloc[rows]}
    keep = np.flatnonzero([Path(path).name in names for path in loaded.frame["path"]])
    assert len(keep) == len(rows)
    drawn = Bunch(
        data=loaded.data[keep], frame=loaded.frame.iloc[keep].reset_index(drop=True)
    )
    proba = loaded.target[keep] * 0.9 + 0.05
    path = tmp_path / "8863.png"
    _, _, artists = plot_patient_heatmap(drawn, proba, path=path)
    _, _, expected = plot_patient_heatmap(sample, proba, patient="8863")
    # The same slide, downsampled to at most 800 pixels a side.
    np.testing.assert_array_equal(
        artists["slide"][0].get_array(), expected["slide"][0].get_array()
    )
    assert max(artists["slide"][0].get_array().shape) <= 800
    assert path.is_file()


def test_patient_heatmap_matches_the_slide(synthetic):
    rows = np.flatnonzero(synthetic.frame["patient"] == "synth02")
    part = synthetic.frame.iloc[rows]
    _, _, artists = plot_patient_heatmap(
        synthetic, np.full(len(rows), 0.5), patient="synth02", downsample=1
    )
    np.testing.assert_array_equal(
        artists["slide"][0].get_array(),
        slide_image(synthetic.data[rows], part["x"], part["y"]),
    )


@pytest.mark.parametrize(
    ("patient", "proba_length", "error", "match"),
    [
        ("synth09", None, ValueError, r"patient='synth09' is not in the dataset"),
        (None, None, ValueError, r"patient must name one of the dataset's 3"),
        ("synth00", 5, ValueError, r"proba has 5 values; expected one per patch"),
        (["synth00"], None, TypeError, r"patient must be a patient id"),
    ],
)
def test_patient_heatmap_errors(synthetic, patient, proba_length, error, match):
    n = len(synthetic.target) if proba_length is None else proba_length
    with pytest.raises(error, match=match):
        plot_patient_heatmap(synthetic, np.full(n, 0.5), patient=patient)
    with pytest.raises(TypeError, match="dataset must be a Bunch"):
        plot_patient_heatmap(synthetic.data, np.full(n, 0.5), patient="synth00")


def test_patient_heatmap_of_several_maps(synthetic):
    rows = np.flatnonzero(synthetic.frame["patient"] == "synth01")
    whole = synthetic.target * 0.9 + 0.05
    maps = {"dataset-long": whole, "patient-long": (1 - whole)[rows]}
    _, axes, artists = plot_patient_heatmap(synthetic, maps, patient="synth01")
    assert [ax.get_title() for ax in axes] == [
        "patient synth01: dataset-long",
        "patient-long",
        "true label",
    ]
    _, _, alone = plot_patient_heatmap(synthetic, whole, patient="synth01")
    np.testing.assert_array_equal(
        artists["proba"]["dataset-long"].get_array().filled(-1),
        alone["proba"].get_array().filled(-1),
    )
    with pytest.raises(ValueError, match=r"proba\['b'\] has 5 values; expected one"):
        plot_patient_heatmap(synthetic, {"a": whole, "b": whole[:5]}, patient="synth01")
    _, axes, _ = plot_patient_heatmap(
        synthetic, maps, patient="synth01", show_labels=False
    )
    assert len(axes) == 2


# --- whole-slide prediction -----------------------------------------------------------


@pytest.fixture(scope="module")
def slide_prediction():
    """A grey 600 x 400 slide, a 2 x 3 grid of 200-pixel tiles from (0, 0), one
    region around the top-left tile."""
    thumbnail = np.full((40, 60, 3), 200, np.uint8)
    proba = np.array([[0.95, np.nan, 0.05], [np.nan, 0.05, 0.95]], np.float32)
    square = [[0, 0], [200, 0], [200, 200], [0, 200], [0, 0]]
    regions = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [square]},
            }
        ],
    }
    return thumbnail, proba, regions


def test_slide_prediction_from_arrays(slide_prediction, tmp_path):
    thumbnail, proba, regions = slide_prediction
    path = tmp_path / "slide.png"
    figure, axes, artists = plot_slide_prediction(
        thumbnail,
        proba,
        dimensions=(600, 400),
        stride=(200, 200),
        regions=regions,
        title="slide",
        path=path,
    )
    (ax,) = axes
    assert ax.get_title() == "slide" and path.is_file()
    assert artists["proba"].get_array().shape == (2, 3)
    image = _render(figure)
    red, _, blue = _pixel(image, ax, 100, 100)
    assert red > blue + 40
    red, _, blue = _pixel(image, ax, 500, 100)
    assert blue > red + 30
    # No probability: the thumbnail's grey shows through.
    np.testing.assert_array_equal(_pixel(image, ax, 300, 100), [200, 200, 200])
    (outline,) = artists["regions"]
    (ring,) = regions["features"][0]["geometry"]["coordinates"]
    np.testing.assert_array_equal(outline.get_xydata(), ring)
    _, _, plain = plot_slide_prediction(
        thumbnail, proba, dimensions=(600, 400), stride=(100, 100), origin=(50, 0)
    )
    assert plain["regions"] == [] and plain["proba"].get_extent() == [50, 350, 200, 0]


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"thumbnail": np.zeros((4, 6), np.uint8)}, ValueError, "thumbnail must be"),
        ({"probability_map": np.zeros(3)}, ValueError, "probability_map must be a 2-D"),
        ({"dimensions": (600,)}, ValueError, r"dimensions must be \(x, y\)"),
        ({"stride": (0, 200)}, ValueError, "stride must be .* positive"),
        ({"origin": (-1, 0)}, ValueError, "origin must be .* non-negative"),
        ({"regions": [[0, 0]]}, TypeError, "regions must be None or a GeoJSON"),
        ({"alpha": 2}, ValueError, r"alpha must be a number in \[0, 1\]"),
        ({"path": "slide.svg"}, ValueError, r"does not end in \.png"),
    ],
)
def test_slide_prediction_errors(slide_prediction, change, error, match):
    thumbnail, proba, _ = slide_prediction
    arguments = {
        "thumbnail": thumbnail,
        "probability_map": proba,
        "dimensions": (600, 400),
        "stride": (200, 200),
        **change,
    }
    with pytest.raises(error, match=match):
        plot_slide_prediction(**arguments)


def test_plotting_never_imports_wholeslide():
    """The slide figure takes arrays: no import of wholeslide, even in a function,
    so the import between the two goes one way (SlideResult.plot -> plotting)."""
    import ast

    import idc_sklearn.plotting

    folder = Path(idc_sklearn.plotting.__file__).parent
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            # idc_sklearn.wholeslide or ..wholeslide; plotting's own _wholeslide is not
            assert not any("wholeslide" in n.split(".") for n in names), path.name


# --- learning curves ------------------------------------------------------------------


HISTORY = [
    {"epoch": 1, "train_loss": 0.7, "valid_loss": 0.6, "valid_bacc": 0.70,
     "valid_bacc_best": True, "event_lr": 1e-3},
    {"epoch": 2, "train_loss": 0.5, "valid_loss": 0.5, "valid_bacc": 0.80,
     "valid_bacc_best": True, "event_lr": 1e-3},
    {"epoch": 3, "train_loss": 0.4, "valid_loss": 0.7, "valid_bacc": 0.75,
     "valid_bacc_best": False, "event_lr": 5e-4},
    {"epoch": 4, "train_loss": 0.3, "valid_loss": 0.8, "valid_bacc": 0.72,
     "valid_bacc_best": False, "event_lr": 2.5e-4},
]  # fmt: skip


@pytest.fixture(scope="module")
def fitted_net():
    from idc_sklearn import MLBNInceptionClassifier

    data = make_idc_patches(
        n_patients=4, patches_per_patient=12, patch_size=16, random_state=0
    )
    net = MLBNInceptionClassifier(
        filters=(3, 3),
        head_units=(4,),
        patch_shape=(16, 16, 3),
        max_epochs=3,
        verbose=0,
        random_state=0,
    )
    return net.fit(data.data, data.target, groups=data.groups)


def test_learning_curves_of_a_fitted_net(fitted_net):
    figure, axes, lines = plot_learning_curves(fitted_net)
    assert [ax.get_title() for ax in axes] == [
        "loss",
        "validation score",
        "learning rate",
    ]
    history = fitted_net.history_
    for column in ("train_loss", "valid_loss", "valid_bacc", "event_lr"):
        np.testing.assert_array_equal(lines[column].get_xdata(), [1, 2, 3])
        np.testing.assert_allclose(lines[column].get_ydata(), history[:, column])
    best = max(i for i, row in enumerate(history) if row["valid_bacc_best"]) + 1
    assert lines["best_epoch"].get_xdata()[0] == best
    assert axes[2].get_yscale() == "log"
    assert _legend(axes[0]) == ["train", "validation", f"best epoch ({best})"]


def test_learning_curves_mark_the_best_epoch_and_scale_lr(tmp_path):
    path = tmp_path / "curves.png"
    figure, axes, lines = plot_learning_curves(HISTORY, path=path)
    assert lines["best_epoch"].get_xdata() == [2.0, 2.0]
    np.testing.assert_allclose(
        lines["event_lr"].get_ydata(), [1e-3, 1e-3, 5e-4, 2.5e-4]
    )
    with Image.open(path) as png:
        assert png.size == tuple(
            np.round(figure.get_size_inches() * figure.dpi).astype(int)
        )


def test_learning_curves_skip_absent_columns():
    history = [{"epoch": e, "train_loss": 1 / e, "event_cp": e == 2} for e in (1, 2, 3)]
    figure, axes, lines = plot_learning_curves(history)
    assert [ax.get_title() for ax in axes] == ["loss"]
    assert set(lines) == {"train_loss", "best_epoch"}
    assert lines["best_epoch"].get_xdata()[0] == 2
    # An epoch that lacks a value leaves a gap, not a shifted curve.
    history[1] = {"epoch": 2}
    _, _, lines = plot_learning_curves(history)
    np.testing.assert_array_equal(lines["train_loss"].get_ydata(), [1, np.nan, 1 / 3])
    # No best-epoch column: no marker.
    _, _, lines = plot_learning_curves([{"train_loss": 0.5}, {"train_loss": 0.4}])
    assert "best_epoch" not in lines
    np.testing.assert_array_equal(lines["train_loss"].get_xdata(), [1, 2])


def test_learning_curves_errors():
    from idc_sklearn import MLBNInceptionClassifier

    with pytest.raises(ValueError, match="history is empty"):
        plot_learning_curves([])
    with pytest.raises(ValueError, match=r"records none of .*it records \['dur'"):
        plot_learning_curves([{"dur": 1.0, "epoch": 1}])
    with pytest.raises(TypeError, match=r"MLBNInceptionClassifier with no history"):
        plot_learning_curves(MLBNInceptionClassifier())
    with pytest.raises(TypeError, match="net must be a fitted skorch net"):
        plot_learning_curves("history.json")
    with pytest.raises(ValueError, match="ax must be None or 3 matplotlib Axes"):
        plot_learning_curves(HISTORY, ax=Figure().add_subplot())


# --- ROC, precision-recall, confusion matrix ------------------------------------------


@pytest.fixture(scope="module")
def predictions():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    scores = {
        "good": np.clip(y * 0.6 + rng.random(200) * 0.5, 0, 1),
        "chance": rng.random(200),
    }
    return y, scores


@pytest.mark.parametrize(
    ("plot", "metric", "short"),
    [
        (plot_roc_curves, roc_auc_score, "AUC"),
        (plot_precision_recall_curves, average_precision_score, "AP"),
    ],
)
def test_curves_of_several_models_on_one_axis(predictions, plot, metric, short):
    y, scores = predictions
    figure, ax, displays = plot(y, scores)
    assert list(displays) == ["good", "chance"]
    legend = _legend(ax)
    for name, values in scores.items():
        assert f"{name} ({short} = {metric(y, values):.2f})" in legend
        assert displays[name].line_.axes is ax
    assert len(legend) == 3 and legend[-1].startswith("Chance level")
    # A DataFrame's columns are models too, drawn on the axes given.
    ax = Figure().add_subplot()
    _, returned, displays = plot(y, pd.DataFrame(scores), ax=ax)
    assert returned is ax and list(displays) == ["good", "chance"]


@pytest.mark.parametrize("plot", [plot_roc_curves, plot_precision_recall_curves])
def test_curves_errors(predictions, plot):
    y, scores = predictions
    with pytest.raises(ValueError, match=r"scores\['good'\] has 10 values; expected"):
        plot(y, {"good": scores["good"][:10]})
    with pytest.raises(ValueError, match=r"proba\[:, 1\]"):
        plot(y, {"good": np.c_[1 - scores["good"], scores["good"]]})
    with pytest.raises(TypeError, match="scores must be a mapping"):
        plot(y, scores["good"])
    with pytest.raises(ValueError, match="scores is empty"):
        plot(y, {})
    with pytest.raises(ValueError, match=r"pos_label='IDC' is not among"):
        plot(y, scores, pos_label="IDC")


def test_confusion_matrix_counts_and_names(tmp_path):
    y_true = [0, 0, 0, 1, 1]
    y_pred = [0, 1, 0, 1, 0]
    path = tmp_path / "cm.png"
    figure, ax, display = plot_confusion_matrix(y_true, y_pred, path=path)
    np.testing.assert_array_equal(display.confusion_matrix, [[2, 1], [1, 1]])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["non-IDC", "IDC"]
    assert [t.get_text() for t in display.text_.ravel()] == ["2", "1", "1", "1"]
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # One class only still draws both; rates with normalize.
    _, _, display = plot_confusion_matrix([1, 1], [1, 1], normalize="true")
    assert display.confusion_matrix.shape == (2, 2)
    _, ax, _ = plot_confusion_matrix(["a", "b"], ["a", "a"])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b"]
    with pytest.raises(ValueError, match="y_pred has 1 labels; expected 2"):
        plot_confusion_matrix([0, 1], [0])


# --- paired differences and per-patient scores ------------------------------------


def _differences():
    differences = pd.DataFrame(
        {
            "difference": [0.01, 0.06, -0.05],
            "low": [-0.02, 0.03, -0.08],
            "high": [0.04, 0.09, -0.01],
            "n_patients": [20, 20, 20],
        },
        index=pd.Index(["features-rf", "color-logreg", "texture-svm"], name="model"),
    )
    differences.attrs.update(reference="mlbn-inception", best="features-rf")
    return differences


def test_forest_plot_one_row_per_model_coloured_by_verdict(tmp_path):
    path = tmp_path / "forest.png"
    fig, ax, artists = plot_paired_differences(_differences(), path=path)
    assert list(artists) == ["features-rf", "color-logreg", "texture-svm"]
    # The first row on top, and its interval spans low to high.
    ticks = {t.get_text(): t.get_position()[1] for t in ax.get_yticklabels()}
    assert ticks["features-rf"] > ticks["color-logreg"] > ticks["texture-svm"]
    colours = {
        name: matplotlib.colors.to_hex(container.lines[0].get_color())
        for name, container in artists.items()
    }
    assert colours == {
        "features-rf": matplotlib.colors.to_hex("tab:gray"),
        "color-logreg": matplotlib.colors.to_hex("tab:green"),
        "texture-svm": matplotlib.colors.to_hex("tab:red"),
    }
    segments = artists["color-logreg"].lines[2][0].get_segments()[0]
    np.testing.assert_allclose(segments[:, 0], [0.03, 0.09])
    assert "mlbn-inception" in ax.get_xlabel()
    assert path.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("differences", "error", "match"),
    [
        ([0.1], TypeError, "differences must be the pandas DataFrame"),
        (pd.DataFrame({"difference": [0.1]}), ValueError, r"lacks the columns \['low'"),
        (
            pd.DataFrame(columns=["difference", "low", "high"]),
            ValueError,
            "has no rows",
        ),
        (
            pd.DataFrame({"difference": [np.nan], "low": [0.0], "high": [1.0]}),
            ValueError,
            "NaN or infinity",
        ),
    ],
)
def test_forest_plot_errors(differences, error, match):
    with pytest.raises(error, match=match):
        plot_paired_differences(differences)


def _patients():
    # p1 and p2 show both classes (p2 the harder), p3 one class.
    return pd.DataFrame(
        {
            "model": ["a"] * 3 + ["b"] * 3,
            "patient": ["p1", "p2", "p3"] * 2,
            "n_patches": [10, 8, 5] * 2,
            "n_idc": [4, 3, 0] * 2,
            "balanced_accuracy": [0.9, 0.6, 1.0, 0.8, 0.5, 0.4],
        }
    )


def test_patient_scores_put_mixed_patients_first_hardest_first():
    fig, ax, artists = plot_patient_scores(_patients())
    assert [t.get_text() for t in ax.get_xticklabels()] == ["p2", "p1", "p3"]
    assert list(artists) == ["a", "b"]
    # One dot per patient and model, at its patient's position and score.
    x, y = artists["b"].get_data()
    np.testing.assert_allclose(np.round(x), [1, 0, 2])
    np.testing.assert_allclose(y, [0.8, 0.5, 0.4])
    # The band of patients with both classes covers the first two positions.
    (band,) = ax.patches
    assert (band.get_x(), band.get_x() + band.get_width()) == (-0.5, 1.5)
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["both classes (2)", "one class only (1)"]


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        (lambda f: f.to_numpy(), TypeError, "patients must be the pandas DataFrame"),
        (
            lambda f: f.drop(columns="n_idc"),
            ValueError,
            r"lacks the columns \['n_idc'\]",
        ),
        (lambda f: f.iloc[:0], ValueError, "has no rows"),
    ],
)
def test_patient_scores_errors(change, error, match):
    with pytest.raises(error, match=match):
        plot_patient_scores(change(_patients()))
    with pytest.raises(ValueError, match=r"lacks the columns \['roc_auc'\]"):
        plot_patient_scores(_patients(), metric="roc_auc")

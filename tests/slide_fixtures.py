"""What the whole-slide tests share: a real patient's slide, models, recorders.

The slide is patient 8863's whole 50x50 patches laid out at their archive
coordinates and written as a pyramidal TIFF (``write_slide``), read back through
OpenSlide. A test module takes the fixtures with ``pytest_plugins =
["slide_fixtures"]`` and imports the helpers; each fixture skips, with its reason,
where the data or an optional dependency is absent.

PYTEST_DONT_REWRITE: the module holds no assertion, and is imported for its
helpers before pytest loads it as a plugin.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import IDC_SAMPLE, SHARED_DATA
from sklearn.base import BaseEstimator, ClassifierMixin

PATIENT = "8863"  # 619 patches of both classes in idc_sample and idc_more
FOLDERS = [IDC_SAMPLE, SHARED_DATA / "idc_more"]


def needs_slides():
    """Skip unless the slides extra's reader and writer are installed."""
    pytest.importorskip(
        "openslide", reason="OpenSlide is absent: pip install 'idc_sklearn[slides]'"
    )
    pytest.importorskip("tifffile", reason="tifffile is absent (slides extra)")


def needs_shapely():
    pytest.importorskip("shapely", reason="shapely is absent (slides extra)")


@pytest.fixture(scope="module")
def patient():
    """The patient's whole 50x50 patches, with their archive coordinates."""
    if not all(folder.is_dir() for folder in FOLDERS):
        pytest.skip(f"the real IDC patches are absent: {FOLDERS} do not all exist")
    from idc_sklearn import load_idc

    idc = load_idc(FOLDERS, patients=[PATIENT], progress=False)
    whole = ((idc.frame["height"] == 50) & (idc.frame["width"] == 50)).to_numpy()
    frame = idc.frame[whole].drop_duplicates(["x", "y"])
    keep = frame.index.to_numpy()
    return (
        idc.data[keep],
        idc.target[keep],
        frame["x"].to_numpy(),
        frame["y"].to_numpy(),
    )


def lay_out(patches, x, y, scale=1):
    """The patches at their archive coordinates (x, y) on white, ``scale`` x larger."""
    height, width = y.max() + 50 + 37, x.max() + 50 + 23
    image = np.full((height, width, 3), 255, np.uint8)
    for patch, left, top in zip(patches, x, y, strict=True):
        image[top : top + 50, left : left + 50] = patch
    return image.repeat(scale, 0).repeat(scale, 1) if scale > 1 else image


@pytest.fixture(scope="module")
def slide(patient, tmp_path_factory):
    """The patient's slide at 4 um per pixel, the archive's resolution."""
    needs_slides()
    from idc_sklearn import write_slide

    path = tmp_path_factory.mktemp("slides") / f"{PATIENT}.tif"
    write_slide(lay_out(patient[0], patient[2], patient[3]), path, mpp=4.0)
    return path


@pytest.fixture(scope="module")
def model():
    from idc_sklearn import load_pretrained

    return load_pretrained("mlbn-small", device="cpu")


@pytest.fixture(scope="module")
def cheap(patient):
    """A handcrafted baseline (a Pipeline) fitted on the patient: fast to predict."""
    from idc_sklearn import make_baseline

    return make_baseline("color-logreg").fit(patient[0], patient[1])


class Oracle(ClassifierMixin, BaseEstimator):
    """A perfect model: the label of each training patch, 0 for any other."""

    patch_shape = (50, 50, 3)

    def fit(self, X, y):
        self.labels_ = {p.tobytes(): int(t) for p, t in zip(X, y, strict=True)}
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X):
        idc = np.array([self.labels_.get(p.tobytes(), 0) for p in X], float)
        return np.column_stack([1 - idc, idc])


class Recorder(ClassifierMixin, BaseEstimator):
    """Keeps every batch of tiles it is asked to predict."""

    patch_shape = (50, 50, 3)

    def fit(self, X, y):
        self.classes_, self.seen_ = np.array([0, 1]), []
        return self

    def predict_proba(self, X):
        self.seen_.append(np.array(X))
        return np.full((len(X), 2), 0.5)


def tile_index(result, x, y):
    """Each archive patch's row of the tile table (-1 where it is not a tile)."""
    rows = {
        (a, b): i
        for i, (a, b) in enumerate(zip(result.tiles.x, result.tiles.y, strict=True))
    }
    return np.array([rows.get((a, b), -1) for a, b in zip(x, y, strict=True)])

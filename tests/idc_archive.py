"""Small archives in the IDC layout for the datasets tests, copied from the sample.

Shared by ``test_datasets_loader.py``, ``test_datasets_scanner.py``,
``test_datasets_decode.py`` and ``test_datasets_cache.py``; the sample itself is
conftest's ``idc_sample_root`` (skipped, with its reason, where it is absent).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from idc_sklearn import load_idc

CORNER = "8864/0/8864_idx5_x3751_y2901_class0.png"  # 32x42 (width x height)


def load(root, **kwargs):
    """``load_idc`` without its progress bar."""
    kwargs.setdefault("progress", False)
    return load_idc(root, **kwargs)


def rgb_pixels(path) -> np.ndarray:
    """A PNG's pixels as Pillow converts them to RGB."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def copy_patients(src: Path, dst: Path, patients, per_class=None) -> Path:
    """Copy ``patients``' patches (the first ``per_class`` of each class) to ``dst``."""
    for patient in patients:
        for label in ("0", "1"):
            names = sorted(p.name for p in (src / patient / label).glob("*.png"))
            if per_class is not None:
                names = names[:per_class]
            if names:
                (dst / patient / label).mkdir(parents=True, exist_ok=True)
            for name in names:
                shutil.copy2(src / patient / label / name, dst / patient / label / name)
    return dst


def copy_subset(sample_root: Path, tmp_path: Path) -> Path:
    """Patients 8864 (28 edge patches, both classes) and 8957 (class 1), copied."""
    root = copy_patients(sample_root, tmp_path / "subset", ["8864", "8957"], 12)
    shutil.copy2(sample_root / CORNER, root / CORNER)
    return root

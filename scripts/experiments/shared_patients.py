"""What the scripts that train on ``../shared`` have in common: where the real patches
are, the per-patient cap, and the machine a figure came from."""

from __future__ import annotations

import datetime
import platform
import subprocess
from pathlib import Path

import numpy as np
import torch

from idc_sklearn import load_idc

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED = REPO_ROOT / ".." / "shared" / "data"
# Every real patch in ../shared: 27,595 patches of 116 patients.
FOLDERS = ("idc_sample", "idc_more", "idc_trainval")
# The other patches of the idc_trainval patients who had more than 300: with FOLDERS,
# every patch of the 116 patients (37,682).
EXTRA_FOLDER = "idc_trainval_more"
SPLIT = SHARED / "cruz_roa_split"
CACHE = REPO_ROOT / ".cache" / "idc_split"


def load_shared(cache: Path = CACHE, folders=FOLDERS):
    """``load_idc`` of the folders as one dataset (cached under ``.cache``)."""
    return load_idc(
        [SHARED / folder for folder in folders], cache=cache, progress=False
    )


def cap_per_patient(y, groups, cap, seed=0) -> np.ndarray:
    """Indices of at most ``cap`` patches per patient, keeping its class ratio.

    A seeded draw per patient and class (``round(cap * share)`` of each class);
    patients with at most ``cap`` patches are kept whole, and ``cap=None`` keeps all.
    """
    if cap is None:
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    keep = []
    for patient in np.unique(groups):
        idx = np.flatnonzero(groups == patient)
        if len(idx) <= cap:
            keep.append(idx)
            continue
        for label in (0, 1):
            cls = idx[y[idx] == label]
            n = round(cap * len(cls) / len(idx))
            keep.append(rng.choice(cls, n, replace=False))
    return np.sort(np.concatenate(keep))


def cpu_description() -> tuple[str, list[str]]:
    """The CPU's model name (``lscpu``) and its bfloat16 units."""
    try:
        lscpu = subprocess.run(
            ["lscpu"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown", []
    fields = dict(line.split(":", 1) for line in lscpu.splitlines() if ":" in line)
    model = fields.get("Model name", platform.processor() or "unknown").strip()
    flags = fields.get("Flags", "").split()
    return model, sorted(f for f in flags if f in ("avx512_bf16", "amx_bf16"))


def machine() -> dict:
    """What the figures came from."""
    model, bf16 = cpu_description()
    return {
        "cpu": model,
        "bf16_units": bf16,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "date": datetime.date.today().isoformat(),
    }

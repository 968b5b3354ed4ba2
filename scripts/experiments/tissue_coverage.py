"""How much of the archive's tissue ``predict_slide``'s tissue mask keeps.

Each patient of ``../shared/data/idc_trainval`` is rebuilt as a slide: its whole
50x50 patches pasted at their archive coordinates on white (``slide_image``), written
as a pyramidal TIFF at the archive's 4.0 um per pixel (``write_slide``). The
patches' grid then starts at the slide's (0, 0), so each tile of ``predict_slide``'s
default grid is one archive patch or a patch-sized gap. ``predict_slide`` runs with
its default settings and a constant model (the tiles it keeps are what is measured,
not their scores); per patient, the table gives the share of IDC patches and of all
patches whose tile was kept, and the kept tiles that hold no patch pixel (pure
background). The archive cut every patch from tissue, so each patch left out is
tissue left unscored.

    python scripts/experiments/tissue_coverage.py --patients 24 --before \\
        --output results/tissue_coverage/drawn.csv

``--held-out`` measures the other patients of the folder instead of the draw (the
draw chose the method; the others check it). ``--min-tissue`` and
``--tissue-threshold`` pass other settings to ``predict_slide``; ``--before``
measures Otsu's threshold too, the default before issue 24.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.dummy import DummyClassifier

from idc_sklearn import ARCHIVE_MPP, load_idc, predict_slide, write_slide
from idc_sklearn.plotting import slide_image

REPO_ROOT = Path(__file__).resolve().parents[2]
FOLDER = REPO_ROOT / ".." / "shared" / "data" / "idc_trainval"
CACHE = REPO_ROOT / ".cache" / "idc_trainval"
PATCH = 50


def load_patients(folder=FOLDER, cache=CACHE, patients=None):
    """Every whole 50x50 patch of ``folder`` (of ``patients``; None: all), one per
    archive position."""
    idc = load_idc(folder, cache=cache, patients=patients, progress=False)
    frame = idc.frame
    whole = ((frame["height"] == PATCH) & (frame["width"] == PATCH)).to_numpy()
    frame = frame[whole].drop_duplicates(["patient", "x", "y"])
    return idc.data[frame.index.to_numpy()], frame.reset_index(drop=True)


def draw_patients(frame: pd.DataFrame, n: int, seed: int = 0) -> list[str]:
    """``n`` patients drawn with ``seed``, sorted (every patient has IDC patches)."""
    patients = np.unique(frame["patient"].astype(str))
    rng = np.random.default_rng(seed)
    drawn = rng.choice(patients, size=min(n, len(patients)), replace=False)
    return sorted(drawn, key=int)


def patient_slide(patches, x, y, path: Path) -> np.ndarray:
    """Write the patches as a slide at ``path``; return where a patch lies (the
    slide's pixels, True on a patch)."""
    image = slide_image(patches, x, y)
    write_slide(image, path, mpp=ARCHIVE_MPP)
    laid = np.zeros(image.shape[:2], bool)
    for left, top in zip(x - x.min(), y - y.min(), strict=True):
        laid[top : top + PATCH, left : left + PATCH] = True
    return laid


def coverage(patches, target, x, y, workdir: Path, **settings) -> dict:
    """The share of the patches (all, IDC) whose tile ``predict_slide`` keeps, and
    its kept tiles with no patch pixel, for one patient's patches."""
    x, y = np.asarray(x), np.asarray(y)
    path = Path(workdir) / "patient.tif"
    laid = patient_slide(patches, x, y, path)
    constant = DummyClassifier(strategy="prior").fit(patches[:2], [0, 1])
    result = predict_slide(constant, path, num_workers=0, progress=False, **settings)
    kept = set(zip(result.tiles["x"], result.tiles["y"], strict=True))
    covered = np.array(
        [(a, b) in kept for a, b in zip(x - x.min(), y - y.min(), strict=True)]
    )
    background = sum(not laid[b : b + PATCH, a : a + PATCH].any() for a, b in kept)
    idc = np.asarray(target) == 1
    return {
        "patches": len(x),
        "idc_patches": int(idc.sum()),
        "tiles": len(kept),
        "covered": int(covered.sum()),
        "idc_covered": int(covered[idc].sum()),
        "background_tiles": int(background),
    }


def measure(data, frame, patients, **settings) -> pd.DataFrame:
    """``coverage`` of each patient, one row each, with its shares."""
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for patient in patients:
            pick = (frame["patient"].astype(str) == patient).to_numpy()
            part = frame[pick]
            row = coverage(
                data[pick],
                part["target"].to_numpy(),
                part["x"].to_numpy(),
                part["y"].to_numpy(),
                Path(workdir),
                **settings,
            )
            rows.append({"patient": patient, **row})
    table = pd.DataFrame(rows)
    table["idc_share"] = table["idc_covered"] / table["idc_patches"]
    table["share"] = table["covered"] / table["patches"]
    return table


def totals(table: pd.DataFrame) -> dict:
    """The patches of every patient together."""
    return {
        "patients": len(table),
        "idc_share": table["idc_covered"].sum() / table["idc_patches"].sum(),
        "share": table["covered"].sum() / table["patches"].sum(),
        "background_tiles": int(table["background_tiles"].sum()),
    }


def markdown(table: pd.DataFrame, before: pd.DataFrame | None = None) -> str:
    """The table as the rows of docs/wholeslide.md, with its totals last; with
    ``before`` (the same patients under other settings), each share as
    "before -> now"."""

    def shares(now, then, name):
        return (
            f"{now[name]:.1%}"
            if then is None
            else f"{then[name]:.1%} → {now[name]:.1%}"
        )

    lines = [
        "| patient | patches | IDC patches | IDC covered | all covered | "
        "background tiles |",
        "|---|---|---|---|---|---|",
    ]
    for i, row in table.iterrows():
        then = None if before is None else before.loc[i]
        lines.append(
            f"| {row.patient} | {row.patches} | {row.idc_patches} | "
            f"{shares(row, then, 'idc_share')} | {shares(row, then, 'share')} | "
            f"{row.background_tiles} |"
        )
    total = totals(table)
    then = None if before is None else totals(before)
    lines.append(
        f"| **{total['patients']} patients** | {table['patches'].sum():,} | "
        f"{table['idc_patches'].sum():,} | **{shares(total, then, 'idc_share')}** | "
        f"**{shares(total, then, 'share')}** | **{total['background_tiles']}** |"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--held-out", action="store_true", help="the patients the draw left out"
    )
    parser.add_argument("--min-tissue", type=float)
    parser.add_argument("--tissue-threshold")
    parser.add_argument(
        "--before",
        action="store_true",
        help="also measure Otsu's threshold (the default before issue 24), and "
        "give each share as before -> now",
    )
    parser.add_argument("--output", type=Path, help="a CSV of the table")
    args = parser.parse_args()
    settings = {}
    if args.min_tissue is not None:
        settings["min_tissue"] = args.min_tissue
    if args.tissue_threshold is not None:
        threshold = args.tissue_threshold
        settings["tissue_threshold"] = (
            threshold if threshold == "otsu" else float(threshold)
        )
    data, frame = load_patients()
    patients = draw_patients(frame, args.patients, args.seed)
    if args.held_out:
        drawn = set(patients)
        patients = sorted(set(frame["patient"].astype(str)) - drawn, key=int)
    table = measure(data, frame, patients, **settings)
    before = None
    if args.before:
        before = measure(data, frame, patients, tissue_threshold="otsu")
    if args.output is not None:
        measured = ["tiles", "covered", "idc_covered", "background_tiles"]
        saved = table
        if before is not None:
            saved = table.join(before[measured].add_suffix("_otsu"))
        saved.to_csv(args.output, index=False)
    print(markdown(table, before))


if __name__ == "__main__":
    main()

"""Build the IDC sample shipped in the package from the shared folders' PNG files.

Reads ``../shared/data/idc_sample``, ``idc_more`` and ``idc_trainval`` as one dataset
with ``load_idc`` (``pad="zero"``), leaves out the test patients of the paper's split
(``../shared/data/cruz_roa_split/cases_test.txt``), draws ``--n-patches`` patches by
patient and class (seeded) and writes ``idc_sklearn/datasets/data/idc_sample.npz``: a
zip of ``.npy`` members (the patches, labels, patient ids, x, y, height and width) that
``numpy.load`` reads. The draw gives every (patient, class) the same quota, or one
more, and smaller groups whole, so every patient keeps both classes where it has
both. The members carry a fixed time stamp, so a rerun on the same files writes the
same bytes::

    python scripts/build/build_idc_sample.py
    python scripts/build/build_idc_sample.py --source DIR --source DIR2 --output OUT.npz

The frame's paths are not stored: they follow from patient, class, x and y, which is
checked here for every file, relative to the folder it was found in, before anything
is written.
"""

from __future__ import annotations

import argparse
import io
import os
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from idc_sklearn.datasets import load_idc, load_idc_sample, read_patient_split

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED = REPO_ROOT / ".." / "shared" / "data"
SOURCES = [SHARED / name for name in ("idc_sample", "idc_more", "idc_trainval")]
SPLIT = SHARED / "cruz_roa_split"
OUTPUT = REPO_ROOT / "idc_sklearn" / "datasets" / "data" / "idc_sample.npz"
# The members of the file, in the order they are written: the arrays load_idc_sample
# reads (tests/test_datasets_sample.py checks the shipped file's members).
MEMBERS = ("data", "target", "patient", "x", "y", "height", "width")
# About as many patches as fit in MAX_BYTES with LZMA (5.6 KB a patch), with room to
# spare for a liblzma that compresses a little worse.
N_PATCHES = 2_800
SEED = 2019
# The package's one data file must stay under this size.
MAX_BYTES = 16_000_000
# LZMA is the smallest of zip's methods that still loads in about a second (see
# docs/data.md); deflate, numpy's own savez_compressed, is over the 16 MB budget.
COMPRESSION = {
    "lzma": zipfile.ZIP_LZMA,
    "bzip2": zipfile.ZIP_BZIP2,
    "deflate": zipfile.ZIP_DEFLATED,
}
# The earliest time a zip entry can carry: any fixed stamp makes reruns identical.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def draw(groups, target, n: int, seed: int) -> np.ndarray:
    """Indices of ``n`` rows, drawn by (patient, class), in their original order.

    Every (patient, class) group gets the largest common quota that fits ``n``, and
    the rows left over go one each to groups with room, chosen at random; a group
    smaller than its quota is taken whole.
    """
    codes, _ = pd.MultiIndex.from_arrays([groups, target]).factorize()
    sizes = np.bincount(codes)
    n = min(n, len(codes))
    level = max(q for q in range(sizes.max() + 1) if np.minimum(sizes, q).sum() <= n)
    quota = np.minimum(sizes, level)
    rng = np.random.default_rng(seed)
    extra = n - quota.sum()
    if extra:
        quota[rng.choice(np.flatnonzero(sizes > level), extra, replace=False)] += 1
    keep = [
        rng.permutation(np.flatnonzero(codes == group))[:count]
        for group, count in enumerate(quota)
    ]
    return np.sort(np.concatenate(keep))


def archive_path(patient: str, target: int, x: int, y: int) -> str:
    """A patch's path in its folder, as the archive names it (docs/data.md): what
    load_idc_sample rebuilds from patient, class, x and y."""
    return os.path.join(
        patient, str(target), f"{patient}_idx5_x{x}_y{y}_class{target}.png"
    )


def sample_arrays(
    sources: list[Path], left_out: set[str], n: int, seed: int
) -> dict[str, np.ndarray]:
    """Load ``sources``, draw ``n`` patches and return the sample's members by name."""
    idc = load_idc(sources, progress=False)
    if idc.skipped:
        raise SystemExit(
            f"{len(idc.skipped)} files of {', '.join(map(str, sources))} were "
            f"skipped by load_idc, e.g. {idc.skipped[0]}; the sources must load whole."
        )
    frame = idc.frame
    roots = [Path(os.path.abspath(source)) for source in sources]
    for row in frame.itertuples():
        expected = archive_path(row.patient, row.target, row.x, row.y)
        if not any(Path(row.path) == root / expected for root in roots):
            raise SystemExit(
                f"{row.path} is not at {expected} under any of "
                f"{', '.join(map(str, roots))}; the sample file rebuilds paths from "
                "patient, class, x and y and cannot store it."
            )
    rows = np.flatnonzero(~frame["patient"].isin(left_out).to_numpy())
    rows = rows[draw(idc.groups[rows], idc.target[rows], n, seed)]
    arrays = {
        "data": idc.data[rows],
        "target": idc.target[rows],
        "patient": np.array(frame["patient"].iloc[rows].tolist(), dtype=str),
        **{
            name: frame[name].to_numpy()[rows] for name in ("x", "y", "height", "width")
        },
    }
    return {name: arrays[name] for name in MEMBERS}


def write_sample(arrays: dict[str, np.ndarray], output: Path, compression: int):
    """Write ``arrays`` as a zip of ``.npy`` members; replace ``output`` at the end.

    A file over MAX_BYTES is not written.
    """
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".tmp")
    with zipfile.ZipFile(partial, "w") as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, array, allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_EPOCH)
            info.compress_type = compression
            info.external_attr = 0o644 << 16
            archive.writestr(info, buffer.getvalue())
    size = partial.stat().st_size
    if size > MAX_BYTES:
        partial.unlink()
        raise SystemExit(
            f"{output} would be {size:,} bytes, over the {MAX_BYTES:,} allowed; "
            "draw fewer patches (--n-patches)."
        )
    os.replace(partial, output)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--source",
        action="append",
        type=Path,
        metavar="DIR",
        help="a folder of <patient>/<class>/*.png; repeat for several (default: "
        "idc_sample, idc_more and idc_trainval of ../shared/data)",
    )
    parser.add_argument(
        "--split",
        type=Path,
        default=SPLIT,
        metavar="DIR",
        help="folder of the paper's split, whose test patients are left out "
        "(default: %(default)s)",
    )
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--n-patches", type=int, default=N_PATCHES)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--compression", choices=list(COMPRESSION), default="lzma")
    args = parser.parse_args(argv)

    left_out = set(read_patient_split(args.split)["test"])
    sources = args.source or SOURCES
    arrays = sample_arrays(sources, left_out, args.n_patches, args.seed)
    write_sample(arrays, args.output, COMPRESSION[args.compression])
    target, patient = arrays["target"], arrays["patient"]
    classes = pd.crosstab(patient, target).reindex(columns=[0, 1], fill_value=0)
    print(
        f"{args.output}: {args.output.stat().st_size:,} bytes "
        f"({args.compression}; {arrays['data'].nbytes:,} bytes of patches)"
    )
    print(
        f"{len(target)} patches of {len(classes)} patients (seed {args.seed}): "
        f"{int((target == 0).sum())} class 0, {int((target == 1).sum())} class 1, "
        f"{int((classes > 0).all(axis=1).sum())} patients with both classes, "
        f"{int(((arrays['height'] < 50) | (arrays['width'] < 50)).sum())} edge "
        "patches"
    )
    if args.output.resolve() == OUTPUT.resolve():
        start = time.perf_counter()
        load_idc_sample()
        print(f"load_idc_sample: {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()

"""Build the IDC sample shipped in the package from the sample's PNG files.

Reads ``../shared/data/idc_sample`` with ``load_idc`` (``pad="zero"``) and writes
``idc_sklearn/datasets/data/idc_sample.npz``: a zip of ``.npy`` members (the patches,
labels, patient ids, x, y, height and width) that ``numpy.load`` reads. The members
carry a fixed time stamp, so a rerun on the same files writes the same bytes::

    python scripts/build_idc_sample.py
    python scripts/build_idc_sample.py SOURCE OUTPUT --compression bzip2

The frame's paths are not stored: they follow from patient, class, x and y, which is
checked here for every file before anything is written.
"""

from __future__ import annotations

import argparse
import io
import os
import time
import zipfile
from pathlib import Path

import numpy as np

from idc_sklearn.datasets import load_idc
from idc_sklearn.datasets._sample import (
    SAMPLE_ARRAYS,
    SAMPLE_FILE,
    load_idc_sample,
    sample_path,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
SOURCE = REPO_ROOT / ".." / "shared" / "data" / "idc_sample"
OUTPUT = REPO_ROOT / "idc_sklearn" / "datasets" / "data" / SAMPLE_FILE
# LZMA is the smallest of zip's methods that still loads in about a second (see
# docs/data.md); deflate, numpy's own savez_compressed, is over the 16 MB budget.
COMPRESSION = {
    "lzma": zipfile.ZIP_LZMA,
    "bzip2": zipfile.ZIP_BZIP2,
    "deflate": zipfile.ZIP_DEFLATED,
}
# The earliest time a zip entry can carry: any fixed stamp makes reruns identical.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def sample_arrays(source: Path) -> dict[str, np.ndarray]:
    """Load ``source`` and return the members of the sample file, by name."""
    idc = load_idc(source, progress=False)
    if idc.skipped:
        raise SystemExit(
            f"{source} has {len(idc.skipped)} files that load_idc skipped, e.g. "
            f"{idc.skipped[0]}; the sample must load whole."
        )
    frame = idc.frame
    root = os.path.abspath(source)
    for row in frame.itertuples():
        expected = sample_path(row.patient, row.target, row.x, row.y)
        if os.path.relpath(row.path, root) != expected:
            raise SystemExit(
                f"{row.path} is not at {expected} under {root}; the sample file "
                "rebuilds paths from patient, class, x and y and cannot store it."
            )
    arrays = {
        "data": idc.data,
        "target": idc.target,
        "patient": np.array(frame["patient"].tolist(), dtype=str),
        **{name: frame[name].to_numpy() for name in ("x", "y", "height", "width")},
    }
    return {name: arrays[name] for name in SAMPLE_ARRAYS}


def write_sample(arrays: dict[str, np.ndarray], output: Path, compression: int):
    """Write ``arrays`` as a zip of ``.npy`` members; replace ``output`` at the end."""
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
    os.replace(partial, output)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", nargs="?", type=Path, default=SOURCE)
    parser.add_argument("output", nargs="?", type=Path, default=OUTPUT)
    parser.add_argument("--compression", choices=list(COMPRESSION), default="lzma")
    args = parser.parse_args(argv)

    arrays = sample_arrays(args.source)
    write_sample(arrays, args.output, COMPRESSION[args.compression])
    target = arrays["target"]
    print(
        f"{args.output}: {args.output.stat().st_size:,} bytes "
        f"({args.compression}; {arrays['data'].nbytes:,} bytes of patches)"
    )
    print(
        f"{len(target)} patches of {len(np.unique(arrays['patient']))} patients: "
        f"{int((target == 0).sum())} class 0, {int((target == 1).sum())} class 1, "
        f"{int(((arrays['height'] < 50) | (arrays['width'] < 50)).sum())} edge patches"
    )
    if args.output.resolve() == OUTPUT.resolve():
        start = time.perf_counter()
        load_idc_sample()
        print(f"load_idc_sample: {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()

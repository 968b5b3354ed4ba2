"""Whole-slide inference: tiles per second against predict_proba, peak memory against
slide size.

**Throughput.** A slide is rebuilt from the built-in sample's real patches, laid
edge to edge on a grid (``--grid`` x ``--grid`` tiles) and written as a tiled,
pyramidal TIFF at ``--mpp`` microns per pixel (4 is the archive's own resolution;
1 is a 10x scan, read at pyramid level 2). ``predict_slide`` runs over it (tissue
detection, reading through OpenSlide by DataLoader workers, prediction) and, in the
same run, alternated, ``predict_proba`` runs on the same tiles already in memory.
The ratio of their rates is what the issue's target (at least 0.8) reads.

**Memory.** Each slide side runs in a fresh subprocess: a sparse pyramidal TIFF of
that side at 0.25 um per pixel (a 40x scan; 100,000 x 100,000 is 30 GB of RGB) with
the same 1,600 x 1,600 pixels of tissue, predicted with ``num_workers=0``. It
reports the growth of the peak resident memory over ``predict_slide``.

Examples
--------
python benchmarks/bench_wholeslide.py                        # both, quick
python benchmarks/bench_wholeslide.py --grid 40 --mpp 1 4 --rounds 3
python benchmarks/bench_wholeslide.py --sides 10000 100000 200000 --no-throughput
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TISSUE = 1600  # level-0 pixels a side of tissue in the memory runs: 2 x 2 tiles
TILE = 256


def _sparse_tiles(n: int, scale: int):
    """The tiles of one level: tissue at the top left, empty (sparse) elsewhere.

    tifffile writes a None tile as empty (offset and byte count 0), which
    OpenSlide reads as transparent; the first must be an array.
    """
    for i in range(-(-n // TILE)):
        rows = (np.arange(i * TILE, (i + 1) * TILE) * scale < TISSUE)[:, None]
        for j in range(-(-n // TILE)):
            cols = (np.arange(j * TILE, (j + 1) * TILE) * scale < TISSUE)[None, :]
            if (rows & cols).any() or i == j == 0:
                tile = np.full((TILE, TILE, 3), 255, np.uint8)
                tile[rows & cols] = (190, 90, 160)
                yield tile
            else:
                yield None


def write_sparse_slide(path: str, side: int, mpp: float = 0.25) -> None:
    """A ``side`` x ``side`` pyramidal TIFF, empty but for the tissue corner."""
    import tifffile

    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        n, scale = side, 1
        while True:
            tif.write(
                _sparse_tiles(n, scale),
                shape=(n, n, 3),
                dtype=np.uint8,
                tile=(TILE, TILE),
                photometric="rgb",
                compression="zlib",
                resolution=(1e4 / (mpp * scale),) * 2,
                resolutionunit="CENTIMETER",
                subfiletype=int(scale > 1),
            )
            if n <= 1024:
                break
            n, scale = n // 4, scale * 4


def _status_mb(field: str) -> float:
    """A memory figure of this process from /proc/self/status, in MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise KeyError(field)


def memory_child(side: int, path: str) -> dict:
    """Run in a fresh process: peak memory of predict_slide on a sparse slide.

    The kernel's high-water mark is reset just before (``clear_refs`` 5), so the
    growth is the peak during ``predict_slide`` over the memory in use before it.
    """
    from idc_sklearn import load_pretrained, predict_slide

    write_sparse_slide(path, side)
    model = load_pretrained("mlbn-small", device="cpu")
    model.predict_proba(np.zeros((4, 50, 50, 3), np.uint8))  # the network built
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = _status_mb("VmRSS")
    start = time.perf_counter()
    result = predict_slide(model, path, num_workers=0, progress=False)
    seconds = time.perf_counter() - start
    peak = _status_mb("VmHWM")
    return {
        "side": side,
        "slide_gb": side * side * 3 / 1e9,
        "grid_cells": int(result.probability_map.size),
        "tiles": len(result.tiles),
        "rss_before_mb": before,
        "peak_mb": peak,
        "growth_mb": peak - before,
        "seconds": seconds,
    }


def measure_memory(side: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        out = subprocess.run(
            [sys.executable, __file__, "--memory-child", str(side), f"{folder}/s.tif"],
            capture_output=True,
            text=True,
            check=True,
        )
    return json.loads(out.stdout.splitlines()[-1])


def throughput(grid: int, mpp: float, rounds: int, workers: list[int]) -> list[dict]:
    from PIL import Image

    from idc_sklearn import load_idc_sample, load_pretrained, predict_slide
    from idc_sklearn.wholeslide import write_slide

    idc = load_idc_sample()
    tiles = idc.data[: grid * grid]
    image = (
        tiles.reshape(grid, grid, 50, 50, 3)
        .swapaxes(1, 2)
        .reshape(grid * 50, grid * 50, 3)
    )
    scale = round(4 / mpp)
    if scale > 1:
        image = np.asarray(
            Image.fromarray(image).resize(
                (image.shape[1] * scale, image.shape[0] * scale),
                Image.Resampling.NEAREST,
            )
        )
    model = load_pretrained("mlbn-small", device="cpu")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "grid.tif"
        write_slide(image, path, mpp=mpp)
        # Warm both paths once (thread pools, the folded network).
        model.predict_proba(tiles[:256])
        n = len(predict_slide(model, path, min_tissue=0.0, progress=False).tiles)
        for _ in range(rounds):
            start = time.perf_counter()
            model.predict_proba(tiles[:n])
            memory_s = time.perf_counter() - start
            for w in workers:
                start = time.perf_counter()
                result = predict_slide(
                    model, path, min_tissue=0.0, num_workers=w, progress=False
                )
                slide_s = time.perf_counter() - start
                rows.append(
                    {
                        "mpp": mpp,
                        "workers": w,
                        "tiles": len(result.tiles),
                        "slide_tiles_per_s": len(result.tiles) / slide_s,
                        "memory_tiles_per_s": n / memory_s,
                        "ratio": (len(result.tiles) / slide_s) / (n / memory_s),
                    }
                )
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grid", type=int, default=30, help="tiles a side")
    parser.add_argument("--mpp", type=float, nargs="+", default=[4.0, 1.0])
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sides", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--no-throughput", action="store_true")
    parser.add_argument("--memory-child", nargs=2, metavar=("SIDE", "PATH"))
    args = parser.parse_args(argv)
    if args.memory_child:
        print(json.dumps(memory_child(int(args.memory_child[0]), args.memory_child[1])))
        return
    import pandas as pd
    import torch

    print(
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    if not args.no_throughput:
        rows = [
            row
            for mpp in args.mpp
            for row in throughput(args.grid, mpp, args.rounds, args.workers)
        ]
        table = pd.DataFrame(rows).groupby(["mpp", "workers"]).median()
        print(table.to_markdown(floatfmt=".2f"))
    table = pd.DataFrame([measure_memory(side) for side in args.sides])
    print(table.to_markdown(index=False, floatfmt=".2f"))


if __name__ == "__main__":
    main()

"""A cohort of slides on a Dask cluster: slides per minute with 1 worker and with 2.

``--slides`` slides are built from the built-in sample's real patches, each a
different draw of ``--grid`` x ``--grid`` patches laid edge to edge, scaled to
``--mpp`` microns per pixel (1: a 10x scan, read at pyramid level 2) and written as
pyramidal TIFFs. ``predict_slides`` runs the pretrained ``mlbn-small`` over all of
them on a ``LocalCluster`` of one worker process and on one of two (one thread
each, as ``docs/scale_out.md`` advises), alternated over ``--rounds`` rounds in one
run, and, with ``--local``, here in this process with torch's own threads. Both
clusters are started, and their workers have imported torch and the library,
before the clock starts; each timed run writes a fresh folder (``resume=False``)
and includes sending the model to the workers.

Examples
--------
python benchmarks/bench_cohort.py                # 8 slides of 20 x 20 tiles, 2 rounds
python benchmarks/bench_cohort.py --grid 40 --rounds 3 --local
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np


def write_cohort(folder: Path, n: int, grid: int, mpp: float) -> list[Path]:
    """``n`` slides, each ``grid`` x ``grid`` real patches in a different draw."""
    from PIL import Image

    from idc_sklearn import load_idc_sample, write_slide

    patches = load_idc_sample().data
    scale = round(4 / mpp)
    paths = []
    for i in range(n):
        pick = np.random.default_rng(i).choice(len(patches), grid * grid, False)
        image = (
            patches[pick]
            .reshape(grid, grid, 50, 50, 3)
            .swapaxes(1, 2)
            .reshape(grid * 50, grid * 50, 3)
        )
        if scale > 1:
            size = (image.shape[1] * scale, image.shape[0] * scale)
            image = np.asarray(
                Image.fromarray(image).resize(size, Image.Resampling.NEAREST)
            )
        path = folder / f"slide{i:02d}.tif"
        write_slide(image, path, mpp=mpp)
        paths.append(path)
    return paths


def _warm() -> str:
    """Run on each worker before timing: torch and the library imported."""
    import torch

    import idc_sklearn.wholeslide  # noqa: F401

    return torch.__version__


def timed(model, slides, folder: Path, client) -> dict:
    from idc_sklearn import predict_slides

    start = time.perf_counter()
    table = predict_slides(
        model, slides, folder, client=client, resume=False, progress=False
    )
    seconds = time.perf_counter() - start
    assert (table["status"] == "done").all(), table["error"].tolist()
    return {
        "seconds": seconds,
        "slides_per_minute": 60 * len(slides) / seconds,
        "tiles": int(table["tiles"].sum()),
        "workers_used": table["worker"].nunique(),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slides", type=int, default=8)
    parser.add_argument("--grid", type=int, default=20, help="tiles a side")
    parser.add_argument("--mpp", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--local", action="store_true", help="also run here, without a cluster"
    )
    args = parser.parse_args(argv)
    import pandas as pd
    import torch
    from distributed import Client, LocalCluster

    from idc_sklearn import load_pretrained

    print(
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads here; {args.slides} slides of "
        f"{args.grid} x {args.grid} tiles at {args.mpp:g} um/px"
    )
    model = load_pretrained("mlbn-small", device="cpu")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        slides = write_cohort(folder, args.slides, args.grid, args.mpp)
        clusters = {
            n: LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",
                worker_dashboard_address=":0",
            )
            for n in (1, 2)
        }
        clients = {n: Client(cluster) for n, cluster in clusters.items()}
        try:
            for client in clients.values():
                client.run(_warm)
            runs = [(f"{n} worker{'s' * (n > 1)}", c) for n, c in clients.items()]
            if args.local:
                runs.append(("here, no cluster", None))
            for r in range(args.rounds):
                for name, client in runs:
                    out = folder / f"out-{r}-{name.replace(' ', '_')}"
                    rows.append({"run": name, **timed(model, slides, out, client)})
                    print(rows[-1], flush=True)
        finally:
            for n in clients:
                clients[n].close()
                clusters[n].close()
    table = pd.DataFrame(rows).groupby("run", sort=False).median()
    table["tiles_per_s"] = table["tiles"] / table["seconds"]
    print(table.to_markdown(floatfmt=".2f"))
    rate = table["slides_per_minute"]
    ratio = rate["2 workers"] / rate["1 worker"]
    print(f"2 workers / 1 worker, slides per minute: {ratio:.2f}")


if __name__ == "__main__":
    main()

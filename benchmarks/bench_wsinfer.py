"""Whole-slide inference against the field's tool: predict_slide and ``wsinfer run``.

One slide and one model, in one run: the built-in sample's real patches laid edge
to edge (``--grid`` x ``--grid`` tiles, repeated where the grid holds more than the
sample's 2,800) and written as a pyramidal TIFF at 4 µm per pixel, the archive's
resolution, and the pretrained ``mlbn-small`` on the CPU, exported with
``export_wsinfer`` for WSInfer. Each round, alternated:

- ``predict_slide`` in this process, the model loaded and warmed once;
- ``idc-sklearn slide``, the command end to end (start, model, tissue, tiles,
  outputs written);
- ``wsinfer run`` end to end, from its own venv (``tests/wsinfer_client.py``:
  ``$IDC_SKLEARN_WSINFER`` or ``.venv-wsinfer``), offline, with its defaults
  (batch 32, ``min(cores, 8)`` reading workers).

Each rate is the tiles the tool scored over its wall time; each tool lays its own
tissue mask, so the counts differ a little. The tiles both scored are checked to
agree (``docs/wsinfer.md``). Prints the medians over the rounds, and the ratios
against ``wsinfer run``.

Examples
--------
python benchmarks/bench_wsinfer.py                 # 50 x 50 tiles, 2 rounds
python benchmarks/bench_wsinfer.py --grid 70 --rounds 3
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from wsinfer_client import run_wsinfer, wsinfer_executable  # noqa: E402

SIDE = 50


def write_grid_slide(path: Path, grid: int) -> None:
    """``grid`` x ``grid`` real patches of the sample, edge to edge, at 4 um/px."""
    from idc_sklearn import ARCHIVE_MPP, load_idc_sample, write_slide

    patches = load_idc_sample().data
    tiles = patches[np.arange(grid * grid) % len(patches)]
    image = (
        tiles.reshape(grid, grid, SIDE, SIDE, 3)
        .swapaxes(1, 2)
        .reshape(grid * SIDE, grid * SIDE, 3)
    )
    write_slide(image, path, mpp=ARCHIVE_MPP)


def timed_predict_slide(model, slide: Path) -> tuple[int, float, object]:
    from idc_sklearn import predict_slide

    start = time.perf_counter()
    result = predict_slide(model, slide, progress=False)
    return len(result.tiles), time.perf_counter() - start, result.tiles


def timed_cli(slide: Path, output: Path) -> tuple[int, float]:
    import pandas as pd

    command = [sys.executable, "-m", "idc_sklearn", "slide", "mlbn-small", str(slide)]
    command += ["--output", str(output), "--device", "cpu", "--quiet"]
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPO)
    seconds = time.perf_counter() - start
    return len(pd.read_csv(output / slide.name / "tiles.csv")), seconds


def timed_wsinfer(executable, slides: Path, model: Path, work: Path):
    import pandas as pd

    start = time.perf_counter()
    run_wsinfer(executable, slides, model, work / "results", home=work / "home")
    seconds = time.perf_counter() - start
    csv = next((work / "results" / "model-outputs-csv").glob("*.csv"))
    table = pd.read_csv(csv)
    return len(table), seconds, table


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grid", type=int, default=50, help="tiles a side")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    executable = wsinfer_executable()
    if executable is None:
        sys.exit("no wsinfer: set IDC_SKLEARN_WSINFER or make .venv-wsinfer")
    import pandas as pd
    import torch

    from idc_sklearn import export_wsinfer, load_pretrained
    from idc_sklearn._machine import cpu_name

    print(f"{cpu_name()}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    model = load_pretrained("mlbn-small", device="cpu")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        slide = folder / "slides" / "grid.tif"
        slide.parent.mkdir()
        write_grid_slide(slide, args.grid)
        export_wsinfer(model, folder / "model")
        model.predict_proba(np.zeros((256, SIDE, SIDE, 3), np.uint8))  # warmed
        for round_ in range(args.rounds):
            work = folder / f"round{round_}"
            work.mkdir()
            ours_n, ours_s, ours = timed_predict_slide(model, slide)
            cli_n, cli_s = timed_cli(slide, work / "idc")
            theirs_n, theirs_s, theirs = timed_wsinfer(
                executable, slide.parent, folder / "model", work
            )
            both = ours.merge(theirs, left_on=["x", "y"], right_on=["minx", "miny"])
            rows.append(
                {
                    "predict_slide tiles": ours_n,
                    "predict_slide tiles/s": ours_n / ours_s,
                    "idc-sklearn slide tiles/s": cli_n / cli_s,
                    "wsinfer run tiles": theirs_n,
                    "wsinfer run tiles/s": theirs_n / theirs_s,
                    "tiles both scored": len(both),
                    "largest difference": float(
                        (both["probability"] - both["prob_IDC"]).abs().max()
                    ),
                }
            )
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows).median()
    print(table.to_string(float_format=lambda v: f"{v:.3g}"))
    theirs = table["wsinfer run tiles/s"]
    ours, cli = table["predict_slide tiles/s"], table["idc-sklearn slide tiles/s"]
    print(
        f"predict_slide / wsinfer run: {ours / theirs:.2f}; "
        f"idc-sklearn slide / wsinfer run: {cli / theirs:.2f}"
    )


if __name__ == "__main__":
    main()

"""Benchmark load_idc (files per second, cached reload) and make_idc_patches.

Default run (under two minutes on 2 cores): load the real sample
(``../shared/data/idc_sample``) with 1 and 2 workers, build a cache and time the
memory-mapped reload, and time the synthetic generator on one core::

    python benchmarks/bench_load_idc.py
    python benchmarks/bench_load_idc.py --root /data/IDC_regular_ps50_idx5

``--synthetic-full N`` writes N synthetic 50x50 PNGs in the archive's layout (about
1,700 a patient, a few edge crops among them) and loads them in a fresh process,
reporting its time and peak resident memory: ``--synthetic-full 277524`` is the full
archive. ``--colour-histogram`` adds the balanced accuracy of a colour histogram with
logistic regression under ``GroupKFold(5)`` by patient on ``make_idc_patches``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from idc_sklearn import load_idc, make_idc_patches

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE = REPO_ROOT / ".." / "shared" / "data" / "idc_sample"
PER_PATIENT = 1700


def _best_time(func, repeat: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - start)
    return best, result


def _peak_rss_mib() -> float:
    """Peak resident memory of this process in MiB.

    Linux carries ``ru_maxrss`` over an exec from the parent that forked the
    process, so a fresh process started by a large parent would report the parent's
    peak; /proc's VmHWM is this process's own. ``getrusage`` is the fallback.
    """
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_loader(root: Path, workers: list[int], repeat: int) -> None:
    print(f"load_idc on {root.resolve()}")
    rows = []
    for n_jobs in workers:
        # The first call with n_jobs > 1 also starts the worker processes.
        first, bunch = _best_time(
            lambda n_jobs=n_jobs: load_idc(root, n_jobs=n_jobs, progress=False), 1
        )
        best, bunch = _best_time(
            lambda n_jobs=n_jobs: load_idc(root, n_jobs=n_jobs, progress=False),
            repeat,
        )
        n = len(bunch.target)
        rows.append((n_jobs, n / best, n / first))
    base = rows[0][1]
    print(f"  {'n_jobs':>6}  {'files/s':>9}  {'ratio':>6}  {'first call files/s':>18}")
    for n_jobs, rate, first_rate in rows:
        print(f"  {n_jobs:>6}  {rate:>9.0f}  {rate / base:>6.2f}  {first_rate:>18.0f}")
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        build, bunch = _best_time(
            lambda: load_idc(root, cache=cache, progress=False, n_jobs=workers[-1]), 1
        )
        reload, cached = _best_time(
            lambda: load_idc(root, cache=cache, progress=False), repeat
        )
        assert np.array_equal(cached.data, bunch.data)
        uncached = len(bunch.target) / base
        print(
            f"  cache: build {build:.2f} s (n_jobs={workers[-1]}), reload "
            f"{reload:.3f} s ({reload / uncached:.2f} x the 1-worker load of "
            f"{uncached:.2f} s), {cached.data.nbytes / 2**20:.1f} MiB memory-mapped"
        )


def bench_generator(repeat: int) -> None:
    for size in (50, 32):
        make_idc_patches(patch_size=size, random_state=0)
        cpu = float("inf")
        for _ in range(repeat):
            start = time.process_time()
            make_idc_patches(patch_size=size, random_state=0)
            cpu = min(cpu, time.process_time() - start)
        wall, bunch = _best_time(
            lambda size=size: make_idc_patches(patch_size=size, random_state=0), repeat
        )
        n = len(bunch.target)
        # It runs on one core; CPU time is the figure other load on the machine
        # disturbs least.
        print(
            f"make_idc_patches(patch_size={size}): {n} patches in {wall:.2f} s, "
            f"{n / wall:.0f} patches/s wall, {n / cpu:.0f} patches/s of CPU time"
        )


def write_synthetic_archive(root: Path, n: int) -> None:
    """Write ``n`` synthetic PNGs as ``<root>/<patient>/<0|1>/<name>.png``."""
    from PIL import Image

    n_patients = max(1, -(-n // PER_PATIENT))
    written = 0
    for p in range(n_patients):
        count = min(PER_PATIENT, n - written)
        bunch = make_idc_patches(
            n_patients=1, patches_per_patient=count, random_state=p
        )
        patient = str(10000 + p)
        for label in ("0", "1"):
            (root / patient / label).mkdir(parents=True, exist_ok=True)
        frame = bunch.frame
        for i, (x, y, target) in enumerate(
            frame[["x", "y", "target"]].itertuples(index=False)
        ):
            patch = bunch.data[i]
            if i % 97 == 0:  # about 1% edge patches, cut at the slide's border
                patch = patch[: 50 - i % 13 - 1]
            name = f"{patient}_idx5_x{x}_y{y}_class{target}.png"
            Image.fromarray(patch).save(root / patient / str(target) / name)
        written += count
        print(f"\r  wrote {written}/{n} PNGs", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)


def measure_load(root: Path, n_jobs: int, cache: Path | None) -> dict:
    start = time.perf_counter()
    bunch = load_idc(root, n_jobs=n_jobs, cache=cache, progress=False)
    seconds = time.perf_counter() - start
    return {
        "n": len(bunch.target),
        "seconds": seconds,
        "files_per_s": len(bunch.target) / seconds,
        "data_mib": bunch.data.nbytes / 2**20,
        "peak_rss_mib": _peak_rss_mib(),
        "memmap": isinstance(bunch.data, np.memmap),
    }


def _in_fresh_process(root: Path, n_jobs: int, cache: Path | None) -> dict:
    command = [sys.executable, __file__, "--measure-load", str(root)]
    command += ["--n-jobs", str(n_jobs)]
    if cache is not None:
        command += ["--cache", str(cache)]
    out = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_full(n: int, n_jobs: int, workdir: Path | None) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="idc_full_", dir=workdir))
    try:
        root = tmp / "archive"
        start = time.perf_counter()
        write_synthetic_archive(root, n)
        seconds = time.perf_counter() - start
        print(f"synthetic archive: {n} PNGs written in {seconds:.0f} s")
        plain = _in_fresh_process(root, n_jobs, None)
        built = _in_fresh_process(root, n_jobs, tmp / "cache")
        cached = _in_fresh_process(root, n_jobs, tmp / "cache")
        for name, m in (("load", plain), ("load + cache build", built)):
            print(
                f"  {name} (n_jobs={n_jobs}): {m['n']} patches in {m['seconds']:.1f} s "
                f"({m['files_per_s']:.0f} files/s); data {m['data_mib']:.0f} MiB, "
                f"peak RSS {m['peak_rss_mib']:.0f} MiB"
            )
        print(
            f"  cached reload: {cached['seconds']:.2f} s, memory-mapped, "
            f"peak RSS {cached['peak_rss_mib']:.0f} MiB"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bench_colour_histogram() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import GroupKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    bunch = make_idc_patches(random_state=0)
    n = len(bunch.target)
    flat = bunch.data.reshape(n, -1, 3).astype(np.int64)
    parts = []
    for c in range(3):
        index = flat[:, :, c] * 16 // 256 + 16 * np.arange(n)[:, None]
        parts.append(np.bincount(index.ravel(), minlength=16 * n).reshape(n, 16))
    features = np.hstack([*parts, flat.mean(1), flat.std(1)]).astype(float)
    model = make_pipeline(
        StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=3000)
    )
    predicted = cross_val_predict(
        model, features, bunch.target, groups=bunch.groups, cv=GroupKFold(5)
    )
    score = balanced_accuracy_score(bunch.target, predicted)
    print(
        "colour histogram (3 x 16 bins + mean, std) + LogisticRegression(balanced), "
        f"GroupKFold(5) by patient on make_idc_patches(random_state=0): "
        f"balanced accuracy {score:.3f}"
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=SAMPLE)
    parser.add_argument("--workers", default="1,2", help="n_jobs values, e.g. 1,2")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--synthetic-full", type=int, metavar="N")
    parser.add_argument("--workdir", type=Path, help="where to write --synthetic-full")
    parser.add_argument("--colour-histogram", action="store_true")
    parser.add_argument("--measure-load", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--n-jobs", type=int, default=2, help=argparse.SUPPRESS)
    parser.add_argument("--cache", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure_load is not None:
        print(json.dumps(measure_load(args.measure_load, args.n_jobs, args.cache)))
        return
    print(f"{os.cpu_count()} CPUs, numpy {np.__version__}, {time.strftime('%Y-%m-%d')}")
    workers = [int(w) for w in args.workers.split(",")]
    if args.root.is_dir():
        bench_loader(args.root, workers, args.repeat)
    else:
        print(f"no archive at {args.root}: skipping the loader benchmark")
    bench_generator(args.repeat)
    if args.colour_histogram:
        bench_colour_histogram()
    if args.synthetic_full:
        bench_full(args.synthetic_full, workers[-1], args.workdir)


if __name__ == "__main__":
    main()

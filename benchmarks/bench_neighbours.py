"""smooth_neighbours at the full archive's size, against the plain per-patch loop.

The per-patient context of ``mlbn-hgb-context`` costs two passes over the
probabilities: ``smooth_neighbours`` (each patch's neighbours within two steps on
its slide) and ``adapt_to_patients`` (EM per patient). This generates positions
like the archive's (277,524 patches of 279 patients, each patient's patches a
random share of the cells of its own grid, ``x = 1 + 50 k``), checks that the
vectorised ``smooth_neighbours`` gives what a per-patch loop over a dictionary of
positions gives, and times both side by side on the same subset, alternating, then
the vectorised one alone on every patch, with its peak of allocated memory
(``tracemalloc``). The ratio is the loop's time over the library's. ::

    python benchmarks/bench_neighbours.py
    python benchmarks/bench_neighbours.py --patches 277524 --subset 20000 --rounds 3
"""

from __future__ import annotations

import argparse
import platform
import time
import tracemalloc

import numpy as np

from idc_sklearn import adapt_to_patients, smooth_neighbours
from idc_sklearn._machine import cpu_name


def archive_like(n: int, n_patients: int, seed: int = 0):
    """``n`` probabilities, positions and patients shaped like the archive's."""
    rng = np.random.default_rng(seed)
    groups = np.sort(rng.integers(0, n_patients, n)).astype(str)
    _, counts = np.unique(groups, return_counts=True)
    coords = []
    for count in counts:
        # A square grid with room for the patient's patches at about 60% filled.
        side = int(np.ceil(np.sqrt(count / 0.6)))
        cells = rng.choice(side * side, size=count, replace=False)
        coords.append(np.column_stack([cells % side, cells // side]))
    coords = 1 + 50 * np.concatenate(coords)
    return rng.random(n), coords.astype(float), groups


def loop(proba, coords, groups, weight=0.75, stride=50.0, radius=2):
    """The plain way: a dictionary of positions, each patch's window looked up."""
    grid = np.rint(coords / stride).astype(int)
    where: dict = {}
    for i, (g, (x, y)) in enumerate(zip(groups, grid, strict=True)):
        where.setdefault((g, x, y), []).append(i)
    out = proba.copy()
    for i, (g, (x, y)) in enumerate(zip(groups, grid, strict=True)):
        total = mass = 0.0
        for dy in range(-radius, radius + 1):
            for dx in range(-radius, radius + 1):
                w = np.exp(-(dx * dx + dy * dy) / 2)
                for j in where.get((g, x + dx, y + dy), ()):
                    if j != i:
                        total += w * proba[j]
                        mass += w
        if mass:
            out[i] = (1 - weight) * proba[i] + weight * total / mass
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patches", type=int, default=277_524)
    parser.add_argument("--patients", type=int, default=279)
    parser.add_argument("--subset", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"machine: {cpu_name()}, {platform.machine()}, numpy {np.__version__}")
    proba, coords, groups = archive_like(args.patches, args.patients)
    part = slice(0, args.subset)  # the first patients' patches, whole
    sub = (proba[part], coords[part], groups[part])
    np.testing.assert_allclose(smooth_neighbours(*sub), loop(*sub), atol=1e-12)
    times = {"loop": [], "smooth_neighbours": []}
    for _ in range(args.rounds):
        for name, fn in (("loop", loop), ("smooth_neighbours", smooth_neighbours)):
            start = time.perf_counter()
            fn(*sub)
            times[name].append(time.perf_counter() - start)
    best = {name: min(t) for name, t in times.items()}
    print(
        f"{args.subset:,} patches: loop {best['loop']:.2f} s, smooth_neighbours "
        f"{best['smooth_neighbours'] * 1e3:.1f} ms; ratio "
        f"{best['loop'] / best['smooth_neighbours']:.0f}x"
    )
    tracemalloc.start()
    start = time.perf_counter()
    smoothed = smooth_neighbours(proba, coords, groups)
    smooth_s = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    start = time.perf_counter()
    adapt_to_patients(smoothed, groups, strength=300)
    adapt_s = time.perf_counter() - start
    print(
        f"{args.patches:,} patches of {args.patients} patients: smooth_neighbours "
        f"{smooth_s:.2f} s (peak {peak / 2**20:.0f} MiB allocated, "
        f"{peak / proba.nbytes:.1f}x the probabilities), adapt_to_patients "
        f"{adapt_s:.2f} s"
    )


if __name__ == "__main__":
    main()

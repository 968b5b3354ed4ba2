"""Distance to the CPU's limit: the estimator's FLOP/s over the machine's matmul rate.

Everything is measured side by side in one run, because absolute times drift on a
shared machine:

1. the machine's dense matrix-multiply rate (``torch.mm`` of 2048x2048 matrices, in
   float32, and in bfloat16 with ``--bf16``) on the same threads;
2. the network's FLOPs per patch, counted by :class:`torch.utils.flop_counter.
   FlopCounterMode` (training: forward + backward);
3. patches per second through ``MLBNInceptionClassifier.predict_proba`` and ``fit``
   in several settings (weight memory format, inference batch size, precision).

Each line prints the achieved FLOP/s as a fraction of the matmul rate of the same
precision: the issue's targets are 0.6 for inference and 0.5 for training, through
the estimator.

Examples
--------
python benchmarks/bench_cpu_efficiency.py --preset small --n 512        # quick
python benchmarks/bench_cpu_efficiency.py --preset paper --n 128 --train-n 64
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from idc_sklearn import MLBNInceptionClassifier
from idc_sklearn.batching import prepare_patches

PRESETS = {
    "paper": {
        "filters": (64, 64, 128, 128, 256, 256, 512, 512),
        "head_units": (256, 256),
    },
    "small": {"filters": (8, 8, 16, 16, 32, 32, 64, 64), "head_units": (64, 64)},
}


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return platform.processor() or "unknown CPU"
    for line in out.splitlines():
        if line.startswith("Model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def matmul_rate(dtype: torch.dtype, size: int = 2048, seconds: float = 2.0) -> float:
    a = torch.randn(size, size).to(dtype)
    b = torch.randn(size, size).to(dtype)
    torch.mm(a, b)
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        torch.mm(a, b)
        n += 1
    return 2 * size**3 * n / elapsed


def flops_per_patch(clf, batch: np.ndarray, training: bool) -> float:
    module = clf.module_
    module.train(training)
    x = prepare_patches(torch.from_numpy(batch))
    with FlopCounterMode(display=False) as counter:
        out = module(x)
        if training:
            out.sum().backward()
    module.zero_grad(set_to_none=True)
    return counter.get_total_flops() / len(batch)


def make_estimator(preset: str, **params) -> MLBNInceptionClassifier:
    clf = MLBNInceptionClassifier(
        **PRESETS[preset],
        max_epochs=1,
        train_split=None,
        verbose=0,
        random_state=0,
        device="cpu",
        callbacks__bn_recalibration=None,
        **params,
    )
    return clf.initialize()


def set_memory_format(clf, channels_last: bool) -> None:
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    clf.module_.to(memory_format=fmt)


def time_predict(clf, X: np.ndarray, repeats: int = 2) -> float:
    clf.predict_proba(X[: clf.batch_size])  # warm-up
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        clf.predict_proba(X)
        best = min(best, time.perf_counter() - start)
    return len(X) / best


def time_fit(clf, X: np.ndarray, y: np.ndarray) -> float:
    clf.partial_fit(X[: clf.batch_size * 2], y[: clf.batch_size * 2])  # warm-up
    start = time.perf_counter()
    clf.partial_fit(X, y)
    return len(X) / (time.perf_counter() - start)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="small")
    parser.add_argument("--n", type=int, default=512, help="patches to predict")
    parser.add_argument("--train-n", type=int, default=256, help="patches to fit")
    parser.add_argument("--bf16", action="store_true", help="also bfloat16 runs")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(args.n, 50, 50, 3), dtype=np.uint8)
    y = rng.integers(0, 2, size=args.n)
    print(
        f"# bench_cpu_efficiency: preset={args.preset} on {cpu_model()}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}"
    )
    rates = {"float32": matmul_rate(torch.float32)}
    if args.bf16:
        rates["bfloat16"] = matmul_rate(torch.bfloat16)
    for name, rate in rates.items():
        print(f"matmul {name}: {rate / 1e9:.1f} GFLOP/s")

    probe = make_estimator(args.preset)
    forward = flops_per_patch(probe, X[:8], training=False)
    train = flops_per_patch(probe, X[:8], training=True)
    print(
        f"FLOPs per patch: forward {forward / 1e9:.3f} G, "
        f"training {train / 1e9:.3f} G"
    )

    precisions = ["float32", *(["bfloat16"] if args.bf16 else [])]
    print(
        "\nwork       precision  layout          batch  patches/s  GFLOP/s"
        "  of matmul"
    )

    def report(work, precision, layout, batch, rate, flops):
        achieved = rate * flops
        print(
            f"{work:10s} {precision:10s} {layout:15s} {batch:5d}  {rate:9.1f}  "
            f"{achieved / 1e9:7.1f}  {achieved / rates[precision]:9.2f}"
        )

    for precision in precisions:
        for channels_last in (False, True):
            layout = "channels-last" if channels_last else "NCHW weights"
            for batch in (32, 128):
                clf = make_estimator(
                    args.preset, precision=precision, iterator_valid__batch_size=batch
                )
                set_memory_format(clf, channels_last)
                rate = time_predict(clf, X)
                report("inference", precision, layout, batch, rate, forward)
        for channels_last in (False, True):
            layout = "channels-last" if channels_last else "NCHW weights"
            clf = make_estimator(args.preset, precision=precision, batch_size=32)
            set_memory_format(clf, channels_last)
            rate = time_fit(clf, X[: args.train_n], y[: args.train_n])
            report("training", precision, layout, 32, rate, train)


if __name__ == "__main__":
    main()

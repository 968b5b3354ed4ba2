"""Training throughput of MLBNInceptionClassifier against plain PyTorch and the limit.

Three ways to train the same network for one epoch on the same uint8 patches,
measured side by side in one run (absolute times drift on a shared machine; the
ratios are the result):

- ``estimator``: ``MLBNInceptionClassifier.fit`` (skorch loop, per-batch uint8 ->
  float conversion on the device, no validation split);
- ``plain``: a hand-written PyTorch loop over a shuffled ``DataLoader`` of the
  uint8 tensor, converting each batch on the device the same way;
- ``limit``: forward + backward + Adam step on one batch already on the device,
  repeated: the machine's ceiling for this network and batch size.

Prints patches per second for each and the ratios estimator/plain and
estimator/limit, plus the peak resident memory.

Examples
--------
python benchmarks/bench_training.py --preset small --n 2000          # CPU, quick
python benchmarks/bench_training.py --preset paper --n 20000 --batch-size 32 256
"""

from __future__ import annotations

import argparse
import platform
import resource
import time

import numpy as np
import torch
from torch import nn

from idc_sklearn import PRESETS, MLBNInception, MLBNInceptionClassifier
from idc_sklearn.batching import prepare_patches


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _data(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 256, size=(n, 50, 50, 3), dtype=np.uint8)
    y = rng.integers(0, 2, size=n)
    return X, y


# Estimator settings compared with --variants (issue 9's GPU levers).
VARIANTS = {
    "float32": {},
    "float32+eager": {"inference": "eager"},  # BatchNorm not folded for inference
    "bf16": {"precision": "bfloat16"},
    "bf16+resident": {"precision": "bfloat16", "data_on_device": True},
    "bf16+resident+compile": {
        "precision": "bfloat16",
        "data_on_device": True,
        "compile": True,
    },
    # CUDA graphs for the launch-bound batch 32
    "bf16+resident+compile-graphs": {
        "precision": "bfloat16",
        "data_on_device": True,
        "compile": True,
        "compile__mode": "reduce-overhead",
    },
    # training eager, inference compiled with frozen weights
    "bf16+resident+inference-compile": {
        "precision": "bfloat16",
        "data_on_device": True,
        "inference": "compile",
    },
}


def run_estimator(X, y, preset, batch_size, device, **params) -> float:
    clf = MLBNInceptionClassifier(
        **PRESETS[preset],
        batch_size=batch_size,
        max_epochs=1,
        train_split=None,
        verbose=0,
        device=device,
        random_state=0,
        **params,
    )
    # a first short fit warms up kernels and allocators
    clf.fit(X[: batch_size * 4], y[: batch_size * 4])
    _sync(device)
    start = time.perf_counter()
    clf.fit(X, y)
    _sync(device)
    return len(X) / (time.perf_counter() - start)


def _new_model(preset, device):
    torch.manual_seed(0)
    model = MLBNInception(**PRESETS[preset]).to(device)
    return model, torch.optim.Adam(model.parameters(), lr=1e-3), nn.CrossEntropyLoss()


def _step(model, optimizer, loss_fn, xb, yb):
    optimizer.zero_grad(set_to_none=True)
    loss = loss_fn(model(prepare_patches(xb)), yb)
    loss.backward()
    optimizer.step()


def run_plain(X, y, preset, batch_size, device) -> float:
    model, optimizer, loss_fn = _new_model(preset, device)
    model.train()
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        pin_memory=device.startswith("cuda"),
    )
    for i, (xb, yb) in enumerate(loader):  # warm-up
        _step(model, optimizer, loss_fn, xb.to(device), yb.to(device))
        if i == 3:
            break
    _sync(device)
    start = time.perf_counter()
    for xb, yb in loader:
        xb = xb.to(device, non_blocking=True)
        yb = yb.to(device, non_blocking=True)
        _step(model, optimizer, loss_fn, xb, yb)
    _sync(device)
    return len(X) / (time.perf_counter() - start)


def run_limit(X, y, preset, batch_size, device, steps: int) -> float:
    model, optimizer, loss_fn = _new_model(preset, device)
    model.train()
    xb = torch.from_numpy(X[:batch_size]).to(device)
    yb = torch.from_numpy(y[:batch_size]).to(device)
    for _ in range(3):
        _step(model, optimizer, loss_fn, xb, yb)
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        _step(model, optimizer, loss_fn, xb, yb)
    _sync(device)
    return steps * batch_size / (time.perf_counter() - start)


def matmul_rate(device: str, dtype: torch.dtype, size: int) -> float:
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    torch.mm(a, b)
    _sync(device)
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < 1.0 or n < 3:
        torch.mm(a, b)
        n += 1
        _sync(device)
    return 2 * size**3 * n / elapsed


def run_predict(X, preset, device, batch_size, **params) -> float:
    clf = MLBNInceptionClassifier(
        **PRESETS[preset],
        device=device,
        verbose=0,
        random_state=0,
        iterator_valid__batch_size=batch_size,
        **params,
    ).initialize()
    clf.predict_proba(X[: batch_size * 2])  # warm-up (and compile)
    _sync(device)
    start = time.perf_counter()
    clf.predict_proba(X)
    _sync(device)
    return len(X) / (time.perf_counter() - start)


def run_variants(X, y, args) -> None:
    """Training and inference of each variant, against the bf16 matmul peak."""
    # FLOPs per patch of the paper network, counted as issue 9 counts them.
    forward = 3.27e9 if args.preset == "paper" else None
    size = 8192 if args.device.startswith("cuda") else 2048
    peak = matmul_rate(args.device, torch.bfloat16, size)
    print(f"\nbf16 matmul rate: {peak / 1e12:.1f} TFLOP/s")
    width = max(len("variant"), *map(len, args.variants))
    print(f"{'variant':{width}s} batch  train/s  of peak  infer/s  of peak")
    for name in args.variants:
        params = VARIANTS[name]
        for batch_size in args.batch_size:
            train = run_estimator(X, y, args.preset, batch_size, args.device, **params)
            infer = run_predict(X, args.preset, args.device, 1024, **params)
            share = (
                (f"{train * 3 * forward / peak:7.2f}", f"{infer * forward / peak:7.2f}")
                if forward
                else ("      -", "      -")
            )
            print(
                f"{name:{width}s} {batch_size:5d}  {train:7.0f}  {share[0]}  "
                f"{infer:7.0f}  {share[1]}"
            )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="small")
    parser.add_argument("--n", type=int, default=2000, help="patches per epoch")
    parser.add_argument("--batch-size", type=int, nargs="+", default=[32])
    parser.add_argument(
        "--device", default="cuda" if torch.cuda.is_available() else "cpu"
    )
    parser.add_argument(
        "--variants",
        nargs="*",
        choices=sorted(VARIANTS),
        default=[],
        help="also time these estimator settings, training and inference",
    )
    args = parser.parse_args(argv)

    X, y = _data(args.n)
    device_name = (
        torch.cuda.get_device_name()
        if args.device.startswith("cuda")
        else platform.processor() or "cpu"
    )
    print(
        f"# bench_training: preset={args.preset} n={args.n} device={args.device} "
        f"({device_name}), torch {torch.__version__}, "
        f"{torch.get_num_threads()} CPU threads"
    )
    print("batch  estimator/s  plain/s  limit/s  est/plain  est/limit")
    for batch_size in args.batch_size:
        steps = max(5, min(50, args.n // batch_size))
        est = run_estimator(X, y, args.preset, batch_size, args.device)
        plain = run_plain(X, y, args.preset, batch_size, args.device)
        limit = run_limit(X, y, args.preset, batch_size, args.device, steps)
        print(
            f"{batch_size:5d}  {est:11.0f}  {plain:7.0f}  {limit:7.0f}  "
            f"{est / plain:9.2f}  {est / limit:9.2f}"
        )
    if args.variants:
        run_variants(X, y, args)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak_mb:.0f} MB; data {X.nbytes / 1e6:.0f} MB uint8")


if __name__ == "__main__":
    main()

"""Training cost of the MLBN network's widths on this machine, and where it goes.

Issue 26 asks whether the wider presets (``medium``, half the paper's widths, and
``paper``) can be screened by ``scripts/experiments/cv_select.py`` on a CPU. This
measures, side by side in alternating rounds (absolute times drift on a shared
machine; the ratios are the result):

- the estimator's training throughput per preset, as ``cv_select`` trains (batch
  32, ``augment="dihedral"``, ``precision="auto"``, BatchNorm recalibration after
  each epoch), one epoch of random uint8 patches after a warm-up fit;
- the ratio of each preset's time per patch to ``small``'s;
- what one seed of ``cv_select`` (five folds, ten epochs of about 5,200 training
  patches) costs in training steps alone at that rate;
- with ``--profile``, where a training step's time goes (``torch.profiler``, the
  operators grouped by kind).

Examples
--------
python benchmarks/bench_widths.py --threads 1 --rounds 2
python benchmarks/bench_widths.py --presets small medium --profile
"""

from __future__ import annotations

import argparse
import platform
import time
from collections import defaultdict

import numpy as np
import torch
from bench_training import _data

from idc_sklearn import PRESETS, MLBNInceptionClassifier

#: cv_select's budget for one seed: folds x epochs x training patches per fold.
CV_SEED_PATCHES = 5 * 10 * 5200

#: Operator names (substrings of aten's) grouped into the kinds a step spends on.
KINDS = {
    "convolution": ("convolution",),
    "max pooling": ("max_pool",),
    "batch norm": ("batch_norm",),
    "ReLU": ("threshold_backward", "relu", "clamp_min"),
    "optimizer": ("Optimizer.step", "_foreach", "addcdiv", "lerp", "sqrt"),
    "concatenation": ("aten::cat",),
    "dense": ("addmm", "aten::mm"),
}


def _model(preset: str) -> MLBNInceptionClassifier:
    return MLBNInceptionClassifier(
        **PRESETS[preset],
        augment="dihedral",
        precision="auto",
        batch_size=32,
        max_epochs=1,
        train_split=None,
        verbose=0,
        random_state=0,
    )


def train_rate(model: MLBNInceptionClassifier, X, y) -> float:
    """Patches per second of one more epoch of ``model`` on ``X`` (warm)."""
    start = time.perf_counter()
    model.partial_fit(X, y)
    return len(X) / (time.perf_counter() - start)


def profile_step(model: MLBNInceptionClassifier, X, y) -> dict[str, float]:
    """Shares of a training epoch's self CPU time, by kind of operator."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        model.partial_fit(X, y)
    shares: dict[str, float] = defaultdict(float)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    for event in events:
        kind = next(
            (k for k, names in KINDS.items() if any(n in event.key for n in names)),
            "other",
        )
        shares[kind] += event.self_cpu_time_total / total
    return dict(shares)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--presets", nargs="+", default=["small", "medium", "paper"], choices=PRESETS
    )
    parser.add_argument(
        "--n", type=int, default=320, help="patches per measured epoch of small"
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{args.threads} thread(s)"
    )
    X, y = _data(args.n)
    # Wider networks get fewer patches, so that each round takes similar time.
    sizes = {
        p: max(32, args.n // {"paper": 8, "medium": 3}.get(p, 1)) for p in args.presets
    }
    models = {}
    for preset in args.presets:
        models[preset] = _model(preset).fit(X[:64], y[:64])  # warm-up
    rates = defaultdict(list)
    for round_ in range(args.rounds):
        for preset, model in models.items():
            n = sizes[preset]
            rates[preset].append(train_rate(model, X[:n], y[:n]))
            print(f"round {round_ + 1} {preset}: {rates[preset][-1]:.1f} patches/s")
    reference = float(np.median(rates[args.presets[0]]))
    print(
        f"\n{'preset':8s} {'patches/s':>10s} {'time / ' + args.presets[0]:>14s} "
        f"{'cv_select seed, h':>18s}"
    )
    for preset in args.presets:
        rate = float(np.median(rates[preset]))
        hours = CV_SEED_PATCHES / rate / 3600
        print(f"{preset:8s} {rate:10.1f} {reference / rate:14.2f} {hours:18.1f}")
    if args.profile:
        print("\nShare of a training epoch's CPU time, by kind of operator:")
        shares = {
            p: profile_step(m, X[: sizes[p]], y[: sizes[p]]) for p, m in models.items()
        }
        kinds = [*KINDS, "other"]
        print(f"{'kind':14s} " + " ".join(f"{p:>8s}" for p in shares))
        for kind in kinds:
            print(
                f"{kind:14s} "
                + " ".join(f"{shares[p].get(kind, 0.0):8.1%}" for p in shares)
            )


if __name__ == "__main__":
    main()

"""Cost of the bn_recalibration callback: epoch time with and without it.

Fits the small MLBN network on patches of the built-in sample twice each way,
alternating, and prints the best epoch time of each and their ratio, measured side by
side in one run (this machine is noisy; absolute times drift). Record the ratio with
`lscpu`'s model name.

    python benchmarks/bench_bn_recalibration.py --n-patches 800 --threads 1
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from idc_sklearn import PRESETS, MLBNInceptionClassifier, load_idc_sample


def epoch_seconds(X, y, groups, recalibrate: bool, epochs: int) -> float:
    clf = MLBNInceptionClassifier(
        **PRESETS["small"], max_epochs=epochs, verbose=0, random_state=0, device="cpu"
    )
    if not recalibrate:
        clf.set_params(callbacks__bn_recalibration=None)
    clf.fit(X, y, groups=groups)
    return float(np.mean(clf.history[:, "dur"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-patches", type=int, default=800)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_idc_sample()
    rng = np.random.default_rng(0)
    idx = rng.choice(len(data.target), args.n_patches, replace=False)
    X, y, groups = data.data[idx], data.target[idx], data.groups[idx]
    times: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(args.repeat):
        for recalibrate in (True, False):
            times[recalibrate].append(
                epoch_seconds(X, y, groups, recalibrate, args.epochs)
            )
    best = {key: min(values) for key, values in times.items()}
    print(
        f"{args.n_patches} patches, {args.threads} thread(s): epoch {best[True]:.2f} s "
        f"with recalibration, {best[False]:.2f} s without; "
        f"ratio {best[True] / best[False]:.2f}"
    )


if __name__ == "__main__":
    main()

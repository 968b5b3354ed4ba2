"""Peak memory of fit and predict at full scale: the data, and what comes on top.

Each size runs in a fresh subprocess, which generates ``n`` uint8 patches of 50x50x3
(the full archive is 277,524: 2.08 GB), measures its resident memory before
touching the estimator, then fits a ``PatchNetClassifier`` for one epoch with the
default recipe (patient validation split, per-epoch over-sampling, BatchNorm
recalibration, early stopping's copy of the best weights) and predicts every patch.
The network is minimal (pooling, one 3x3 convolution, BatchNorm, a linear layer):
its activations are a constant of a few MB, so what grows is what the estimator
does with the data, and a full-archive run takes minutes on a CPU. It reports:

- ``peak``: the process's peak resident memory (``ru_maxrss``);
- ``target``: the issue's bound, 1.25 x the array + 0.5 GB, plus the interpreter,
  torch and the library as loaded before the data (``base``);
- the slope between two sizes: extra peak memory per extra data byte (1.0 means
  only the data itself grows with the data).

Examples
--------
python benchmarks/bench_memory.py --sizes 4000 24000           # the slope, quick
python benchmarks/bench_memory.py --sizes 24000 277524         # full scale
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
import numpy as np
import torch

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096

from torch import nn
from idc_sklearn import PatchNetClassifier

class MinimalNet(nn.Module):
    # A network that costs next to nothing, so the data path is what is measured.

    def __init__(self, n_classes=2, in_channels=3, patch_size=50):
        super().__init__()
        self.layers = nn.Sequential(
            nn.AvgPool2d(5), nn.Conv2d(in_channels, 4, 3), nn.BatchNorm2d(4),
            nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, n_classes))

    def forward(self, x):
        return self.layers(x)

n = int(sys.argv[1])
base = rss()
rng = np.random.default_rng(0)
X = np.empty((n, 50, 50, 3), dtype=np.uint8)
for start in range(0, n, 8192):  # filled in chunks: no temporary the size of X
    X[start : start + 8192] = rng.integers(0, 256, X[start : start + 8192].shape,
                                            dtype=np.uint8)
y = (np.arange(n) % 5 == 0).astype(np.int64)       # 20% IDC
groups = np.arange(n) // max(1, n // 40)           # 40 patients
with_data = rss()
clf = PatchNetClassifier(MinimalNet, resample="over", batch_size=256, max_epochs=1,
                         verbose=0, random_state=0, device="cpu")
start = time.perf_counter()
clf.fit(X, y, groups=groups)
fit_s = time.perf_counter() - start
start = time.perf_counter()
proba = clf.predict_proba(X)
predict_s = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"n": n, "nbytes": X.nbytes, "base": base, "with_data": with_data,
                  "peak": peak, "fit_s": fit_s, "predict_s": predict_s}))
"""


def measure(n: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(n)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4000, 24000])
    args = parser.parse_args(argv)
    from bench_cpu_efficiency import cpu_model

    print(f"# bench_memory on {cpu_model()}")
    print(
        "patches   data MB  base MB  peak MB  target MB  peak/target  fit s  predict s"
    )
    results = []
    for n in args.sizes:
        r = measure(n)
        results.append(r)
        target = r["base"] + 1.25 * r["nbytes"] + 0.5e9
        print(
            f"{r['n']:7d}  {r['nbytes'] / 1e6:8.0f}  {r['base'] / 1e6:7.0f}  "
            f"{r['peak'] / 1e6:7.0f}  {target / 1e6:9.0f}  {r['peak'] / target:11.2f}"
            f"  {r['fit_s']:5.1f}  {r['predict_s']:9.1f}"
        )
    if len(results) >= 2:
        a, b = results[0], results[-1]
        slope = (b["peak"] - a["peak"]) / (b["nbytes"] - a["nbytes"])
        print(f"extra peak memory per extra data byte: {slope:.3f}")


if __name__ == "__main__":
    main()

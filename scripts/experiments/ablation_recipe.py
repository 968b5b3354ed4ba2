"""Why the ablation (Inception without multi-level BN) predicted one class, and the fix.

Trains the small MLBN network with and without multi-level BN on
``../shared/data/idc_sample`` (2,695 patches, 19 patients: the built-in sample before
it was redrawn from all three shared folders) under a few recipes and scores
each on the 6,349 further real patches of ``../shared/data/idc_more`` (the same
patients but for one; held back from training). For each run it records the
per-epoch history, the spread of the network's features across patches at
initialisation and after training, the held-back scores with the BatchNorm statistics
as training left them and re-measured, and the time an epoch took.

    python scripts/experiments/ablation_recipe.py --epochs 6 --out ablation.json
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from idc_sklearn import (
    PRESETS,
    MLBNInception,
    MLBNInceptionClassifier,
    load_idc,
)
from idc_sklearn.callbacks import recalibrate_batchnorm

RECIPES = {
    # name: (multilevel_bn, init, BatchNorm recalibration)
    "no-mlbn, torch init, no recal (before)": (False, "torch", False),
    "no-mlbn, torch init, recal": (False, "torch", True),
    "no-mlbn, glorot init, no recal": (False, "glorot", False),
    "no-mlbn, glorot init, recal": (False, "glorot", True),
    "mlbn, torch init, no recal (before)": (True, "torch", False),
    "mlbn, torch init, recal": (True, "torch", True),
    "mlbn, glorot init, recal": (True, "glorot", True),
}


def feature_spread(net: torch.nn.Module, X: np.ndarray) -> tuple[float, float]:
    """Mean and mean across-patch standard deviation of the flattened features."""
    was = net.training
    net.eval()
    with torch.no_grad():
        x = torch.from_numpy(X[:256]).permute(0, 3, 1, 2).float() / 255
        features = net.flatten(net.features(x))
    net.train(was)
    return float(features.mean()), float(features.std(dim=0).mean())


def scores(clf, X, y) -> dict:
    proba = clf.predict_proba(X)[:, 1]
    return {
        "balanced_accuracy": balanced_accuracy_score(y, proba >= 0.5),
        "roc_auc": roc_auc_score(y, proba),
        "share_predicted_idc": float((proba >= 0.5).mean()),
    }


def run(name, recipe, train, held, epochs, seed) -> dict:
    multilevel_bn, init, recal = recipe
    clf = MLBNInceptionClassifier(
        **PRESETS["small"],
        multilevel_bn=multilevel_bn,
        init=init,
        max_epochs=epochs,
        random_state=seed,
        device="cpu",
        verbose=0,
    )
    if not recal:
        clf.set_params(callbacks__bn_recalibration=None)
    torch.manual_seed(seed)
    spread_init = feature_spread(
        MLBNInception(**PRESETS["small"], multilevel_bn=multilevel_bn, init=init),
        held.data,
    )
    start = time.perf_counter()
    clf.fit(train.data, train.target, groups=train.groups)
    seconds = time.perf_counter() - start
    result = {
        "recipe": name,
        "seed": seed,
        "epochs_run": len(clf.history),
        "best_epoch": int(np.argmax(clf.history[:, "valid_bacc"])) + 1,
        "valid_bacc": [round(v, 4) for v in clf.history[:, "valid_bacc"]],
        "epoch_seconds": round(float(np.mean(clf.history[:, "dur"])), 2),
        "fit_seconds": round(seconds, 1),
        "feature_mean_std_init": spread_init,
        "feature_mean_std_trained": feature_spread(clf.module_, held.data),
        "held_back": scores(clf, held.data, held.target),
    }
    if not recal:
        # The same trained weights with BatchNorm statistics re-measured afterwards.
        batches = (
            torch.from_numpy(train.data[i : i + 256]).permute(0, 3, 1, 2).float() / 255
            for i in range(0, len(train.data), 256)
        )
        recalibrate_batchnorm(clf.module_, batches)
        result["held_back_recalibrated_after"] = scores(clf, held.data, held.target)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--more", default="../shared/data/idc_more")
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES))
    parser.add_argument("--out", default="ablation.json")
    args = parser.parse_args()
    train = load_idc(Path(args.more).parent / "idc_sample", progress=False)
    held = load_idc(args.more, cache="/tmp/idc_more_cache", progress=False)
    cpu = (
        subprocess.run(
            ["sh", "-c", "lscpu | grep 'Model name'"], capture_output=True, text=True
        )
        .stdout.split(":")[-1]
        .strip()
    )
    results = {
        "machine": f"{cpu}, {torch.get_num_threads()} threads, "
        f"Python {platform.python_version()}, torch {torch.__version__}",
        "runs": [],
    }
    for seed in args.seeds:
        for name in args.recipes:
            result = run(name, RECIPES[name], train, held, args.epochs, seed)
            print(json.dumps(result), flush=True)
            results["runs"].append(result)
            with open(args.out, "w") as f:
                json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()

"""Screen: BatchNorm statistics adapted to each held-out patient (AdaBN).

Issue 26 asks what generalises across patients' stains. AdaBN (Li et al., 2016)
adapts a trained network to a new domain without labels: each BatchNorm layer's
running mean and variance are measured again on the new domain's inputs. Here a
patient is the domain: before predicting a held-out patient, the statistics are
re-estimated on that patient's patches (``idc_sklearn.callbacks.recalibrate_batchnorm``)
and, with ``alpha < 1``, mixed with the training statistics
(``alpha * patient + (1 - alpha) * training``).

One ``cv_select`` fold: the network is ``cv_select``'s ``base`` (same folds, the
same 60 training patches per patient, the same recipe and seed), trained once and
kept in ``.cache/adabn``, then scored on the fold's held-out patients with and
without adaptation. Paired intervals are over the fold's patients, against the
same network unadapted. ::

    python scripts/experiments/adabn_screen.py --fold 0 --threads 1
"""

from __future__ import annotations

import argparse
import json
import pickle
import time
from pathlib import Path

import numpy as np
import torch
from cv_select import CAP, build
from recipe_search import load_split_patches
from shared_patients import CACHE, REPO_ROOT, cap_per_patient, machine
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from sklearn.model_selection import GroupKFold

from idc_sklearn import paired_bootstrap
from idc_sklearn.callbacks import recalibrate_batchnorm

ALPHAS = (1.0, 0.5, 0.25)


def fitted(fold: int, seed: int, X, y, groups, folds, work: Path):
    """``base`` trained on the fold's training patients (kept in ``work``)."""
    path = work / f"base-s{seed}-f{fold}.pkl"
    if path.exists():
        with open(path, "rb") as f:
            return pickle.load(f)
    train, _ = folds[fold]
    train = train[cap_per_patient(y[train], groups[train], CAP, seed)]
    model = build({}, seed, work / f"checkpoint-s{seed}-f{fold}")
    start = time.perf_counter()
    model.fit(X[train], y[train], groups=groups[train])
    print(f"fit: {time.perf_counter() - start:.0f} s", flush=True)
    with open(path, "wb") as f:
        pickle.dump(model, f)
    return model


def adapted_proba(model, X, groups, alpha: float) -> np.ndarray:
    """Each patient's probabilities with the statistics measured on its patches."""
    trained = {k: v.clone() for k, v in model.module_.state_dict().items()}
    proba = np.empty(len(X))
    try:
        for patient in np.unique(groups):
            mine = groups == patient
            batches = (
                model.prepare_batch(torch.from_numpy(X[mine][i : i + 64]))
                for i in range(0, int(mine.sum()), 64)
            )
            with torch.no_grad():
                recalibrate_batchnorm(model.module_, batches)
            measured = model.module_.state_dict()
            model.module_.load_state_dict(
                {
                    k: alpha * measured[k] + (1 - alpha) * v if "running_" in k else v
                    for k, v in trained.items()
                }
            )
            proba[mine] = model.predict_proba(X[mine])[:, 1]
            model.module_.load_state_dict(trained)
    finally:
        model.module_.load_state_dict(trained)
    return proba


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cache", default=str(CACHE))
    parser.add_argument("--work", default=str(REPO_ROOT / ".cache" / "adabn"))
    parser.add_argument("--out", default=str(REPO_ROOT / "results" / "adabn"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    work, out = Path(args.work), Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    X, y, groups, _, _ = load_split_patches(Path(args.cache))
    folds = list(GroupKFold(5).split(X, y, groups))
    model = fitted(args.fold, args.seed, X, y, groups, folds, work)
    # The eager network: its BatchNorm statistics are changed in place below, and
    # the folded copy of inference="fold" would not see them.
    model.set_params(inference="eager")
    _, test = folds[args.fold]
    X_test, y_test, g_test = X[test], y[test], groups[test]
    probas = {"none": model.predict_proba(X_test)[:, 1]}
    for alpha in ALPHAS:
        probas[f"adabn alpha={alpha}"] = adapted_proba(model, X_test, g_test, alpha)
    unadapted = (probas["none"] > 0.5).astype(int)
    rows = []
    for name, proba in probas.items():
        calls = (proba > 0.5).astype(int)
        paired = paired_bootstrap(y_test, calls, unadapted, g_test)
        rows.append(
            {
                "model": name,
                "balanced_accuracy": round(balanced_accuracy_score(y_test, calls), 4),
                "roc_auc": round(roc_auc_score(y_test, proba), 4),
                "idc_called": round(float(calls.mean()), 4),
                "minus_unadapted": [
                    round(paired[k], 4) for k in ("difference", "low", "high")
                ],
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    result = {
        "fold": args.fold,
        "seed": args.seed,
        "patients": len(np.unique(g_test)),
        "patches": len(y_test),
        "rows": rows,
        "machine": machine(),
    }
    (out / f"s{args.seed}-f{args.fold}.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

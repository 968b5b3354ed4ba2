"""The recipe search of the paper's protocol: each lever trained on the split's training
patients and scored on its validation patients (``docs/results.md``, "The recipe").

Every real patch in ``../shared`` of the paper's split is loaded (``idc_sample``,
``idc_more``, ``idc_trainval``): the split's training patients train, its validation
patients choose, and its test patients (8864, 8918) are never read. Each run is one
recipe (a base and the levers it changes) and one seed. It trains for ``--epochs``
epochs, scoring the validation patients after every epoch (``valid_bacc``, patch
balanced accuracy pooled over them), so one run also shows how the score moves with
training length; early stopping keeps the best epoch's weights, as the library's
recipe does. Then the validation patients are scored with and without test-time
augmentation, and the probabilities of every validation patch are saved, for paired
intervals over patients (``scripts/experiments/recipe_table.py``).

Training patches are capped per patient (``--cap``, a seeded draw that keeps each
patient's class ratio) to fit the CPU budget; validation patients stay whole.

Runs append one JSON line each to ``<out>/runs.jsonl`` and are skipped when already
there; each trains with ``checkpoint_dir=<out>/ckpt/<run>``, so an interrupted search
resumes where it stopped::

    python scripts/experiments/recipe_search.py --out results/recipe --threads 2
    python scripts/experiments/recipe_search.py --out results/recipe \\
        --runs base aug-all --seeds 0 1
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import scipy.special
import torch
from shared_patients import (
    CACHE,
    REPO_ROOT,
    SPLIT,
    cap_per_patient,
    load_shared,
    machine,
)
from sklearn.pipeline import make_pipeline

from idc_sklearn import (
    MacenkoNormalizer,
    MLBNInceptionClassifier,
    PatientValidSplit,
    make_baseline,
    patient_scores,
    read_patient_split,
)
from idc_sklearn.handcrafted import BASELINES

SMALL = {"filters": (8, 8, 16, 16, 32, 32, 64, 64), "head_units": (64, 64)}
MEDIUM = {"filters": (32, 32, 64, 64, 128, 128, 256, 256), "head_units": (128, 128)}

# The base: the library's defaults on the small preset (the paper's recipe at an
# eighth of its widths), trained in bfloat16 where the CPU has bf16 units.
BASE = {**SMALL}
# Each run: the levers it sets on top of BASE ("macenko" puts the normaliser in
# front). The levers alone first, then combinations of the ones that won.
RUNS = {
    "base": {},
    "aug-all": {"augment": "all"},
    "aug-dihedral": {"augment": "dihedral"},
    "aug-hed": {"augment": "hed"},
    "no-mlbn": {"multilevel_bn": False},
    "weight-decay": {"optimizer": torch.optim.AdamW, "optimizer__weight_decay": 0.05},
    "label-smoothing": {"criterion__label_smoothing": 0.1},
    "class-weight": {"resample": None, "class_weight": "balanced"},
    "macenko": {"macenko": True},
    "aug-all+wd": {
        "augment": "all",
        "optimizer": torch.optim.AdamW,
        "optimizer__weight_decay": 0.05,
    },
    "aug-all+ls": {"augment": "all", "criterion__label_smoothing": 0.1},
    "aug-all+no-mlbn": {"augment": "all", "multilevel_bn": False},
    "medium": {**MEDIUM},
    # The base in float32: bfloat16's scores against float32's.
    "float32": {"precision": "float32"},
    # The two levers that helped alone (flips and rotations; class weights in place
    # of over-sampling), together.
    "aug-dihedral+cw": {
        "augment": "dihedral",
        "resample": None,
        "class_weight": "balanced",
    },
}
HISTORY = ("epoch", "train_loss", "valid_loss", "valid_bacc", "dur")


def load_split_patches(cache: Path):
    """Every shared patch of the split's training and validation patients."""
    split = read_patient_split(SPLIT)
    train, val = set(split["train"]), set(split["val"])
    idc = load_shared(cache)
    groups = idc.groups.astype(str)
    # The split's patients that ../shared holds; the test patients are never read.
    train &= set(groups)
    val &= set(groups)
    keep = np.isin(groups, sorted(train | val))
    return (
        np.asarray(idc.data[keep]),
        idc.target[keep],
        groups[keep],
        sorted(train),
        sorted(val),
    )


def build(levers: dict, seed: int, epochs: int, val_patients, checkpoint_dir):
    params = {**BASE, **levers}
    macenko = params.pop("macenko", False)
    clf = MLBNInceptionClassifier(
        max_epochs=epochs,
        precision=params.pop("precision", "bfloat16"),
        train_split=PatientValidSplit(valid_groups=val_patients),
        random_state=seed,
        checkpoint_dir=str(checkpoint_dir),
        verbose=0,
        **params,
    )
    return make_pipeline(MacenkoNormalizer(), clf) if macenko else clf


def scores(y, proba, groups) -> dict:
    """Pooled balanced accuracy and ROC AUC, and the mean of the per-patient
    balanced accuracies, from ``patient_scores`` (IDC where ``proba > 0.5``, as
    ``predict`` calls it)."""
    table = patient_scores(y, proba, groups)
    return {
        "balanced_accuracy": float(table.loc["pooled", "balanced_accuracy"]),
        "roc_auc": float(table.loc["pooled", "roc_auc"]),
        "patient_balanced_accuracy": float(table.loc["mean", "balanced_accuracy"]),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="results/recipe")
    parser.add_argument(
        "--runs",
        nargs="+",
        choices=sorted(RUNS) + sorted(BASELINES),
        default=list(RUNS) + list(BASELINES),
        help="recipes, and handcrafted baselines trained on the same patches",
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument(
        "--cap", type=int, default=60, help="training patches per patient"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", default=str(CACHE))
    parser.add_argument(
        "--checkpoints", default=str(REPO_ROOT / ".cache" / "recipe_checkpoints")
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    (out / "predictions").mkdir(parents=True, exist_ok=True)
    log = out / "runs.jsonl"
    ckpt = Path(args.checkpoints)
    done = set()
    if log.exists():
        done = {
            (r["run"], r["seed"], r["epochs"], r["cap"])
            for r in map(json.loads, log.read_text().splitlines())
        }

    X, y, groups, train_patients, val_patients = load_split_patches(Path(args.cache))
    is_val = np.isin(groups, val_patients)
    train_idx = np.flatnonzero(~is_val)
    train_idx = train_idx[cap_per_patient(y[train_idx], groups[train_idx], args.cap)]
    val_idx = np.flatnonzero(is_val)
    fit_idx = np.concatenate([train_idx, val_idx])
    print(
        f"train: {len(train_idx)} patches of {len(np.unique(groups[train_idx]))} "
        f"patients (cap {args.cap}); val: {len(val_idx)} patches of "
        f"{len(np.unique(groups[val_idx]))} patients",
        flush=True,
    )
    for seed in args.seeds:
        for run in args.runs:
            key = (run, seed, args.epochs, args.cap)
            if key in done:
                continue
            tag = f"{run}-s{seed}-e{args.epochs}-c{args.cap}"
            Xv, yv, gv = X[val_idx], y[val_idx], groups[val_idx]
            start = time.perf_counter()
            if run in BASELINES:
                # The handcrafted baselines train on the same capped patches; they
                # have no epochs and no test-time augmentation.
                model = make_baseline(run, random_state=seed)
                model.fit(X[train_idx], y[train_idx])
                fit_s = time.perf_counter() - start
                history, best = [], None
                if hasattr(model, "predict_proba"):
                    proba = model.predict_proba(Xv)[:, 1]
                else:
                    # texture-svm: its decision function through the logistic, so
                    # 0.5 is its decision threshold and the ranking (AUC) is kept.
                    proba = scipy.special.expit(model.decision_function(Xv))
                proba_tta = proba
            else:
                model = build(RUNS[run], seed, args.epochs, val_patients, ckpt / tag)
                model.fit(
                    X[fit_idx], y[fit_idx], **_groups_param(model, groups[fit_idx])
                )
                fit_s = time.perf_counter() - start
                net = model[-1] if hasattr(model, "steps") else model
                history = [{k: row.get(k) for k in HISTORY} for row in net.history]
                best = max(history, key=lambda r: r["valid_bacc"])["epoch"]
                proba = model.predict_proba(Xv)[:, 1]
                net.set_params(tta=True)
                proba_tta = model.predict_proba(Xv)[:, 1]
            np.savez_compressed(
                out / "predictions" / f"{tag}.npz",
                proba=proba.astype(np.float32),
                proba_tta=proba_tta.astype(np.float32),
                y=yv,
                groups=gv,
            )
            record = {
                "run": run,
                "seed": seed,
                "epochs": args.epochs,
                "cap": args.cap,
                "levers": {
                    k: getattr(v, "__name__", v) for k, v in RUNS.get(run, {}).items()
                },
                "train_patches": len(train_idx),
                "val_patches": len(val_idx),
                "best_epoch": best,
                "fit_s": round(fit_s, 1),
                "val": scores(yv, proba, gv),
                "val_tta": scores(yv, proba_tta, gv),
                "history": history,
                "machine": machine(),
            }
            with open(log, "a") as f:
                f.write(json.dumps(record) + "\n")
            val, tta = record["val"], record["val_tta"]
            print(
                f"{tag}: best epoch {best}, val bacc {val['balanced_accuracy']:.3f} "
                f"(tta {tta['balanced_accuracy']:.3f}), auc {val['roc_auc']:.3f}, "
                f"{fit_s:.0f} s",
                flush=True,
            )


def _groups_param(model, groups) -> dict:
    if hasattr(model, "steps"):
        return {f"{model.steps[-1][0]}__groups": groups}
    return {"groups": groups}


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()

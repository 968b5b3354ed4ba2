"""Train the model that ships in the package as ``load_pretrained("mlbn-small")``.

Every real patch in ``../shared`` (``idc_sample``, ``idc_more``, ``idc_trainval``) of
the 114 patients the paper's split allows to train on is loaded: all of them but the
split's test patients (8864 and 8918 are in ``../shared``), which are never read.
``MLBNInceptionClassifier`` is built from ``RECIPE`` below, the one place to change
the recipe. Two protocols:

- ``--validate`` (the paper's, and the shipped model's): train on the split's training
  patients (and the 3 patients outside the split), hold out its 29 validation patients
  for early stopping and the learning-rate plateau, and score them at the end, with
  95% intervals from a bootstrap over those patients, against ``features-hgb``
  trained on the same patches (the paired difference and its interval). That is the
  card's ``validation`` block.
- without it: train on all 114 patients for ``--max-epochs`` epochs
  (``train_split=None``: no early stopping, no learning-rate plateau; the BatchNorm
  statistics are measured on the training patches at the end), with the
  ``validation`` block copied from ``--validation-json`` (null without it).

It writes two files into ``idc_sklearn/pretrained_models/`` (``--output-dir``):
``<name>.safetensors`` with :func:`idc_sklearn.save_model` (the weights; Adam's
moments are left out, so the file is a third of the size and fine-tuning starts a
fresh optimiser), and ``<name>.json``, the model card that
:func:`idc_sklearn.pretrained_card` reads: the training patients and their patches by
class, the recipe, the seed, the epochs and their losses, the machine, the versions,
the time taken and the checksum of the weights file, and the ``validation`` block.

Training writes its state after every epoch to ``<checkpoint-dir>/<run>``, where the
run is named by the model, recipe, seed, epochs and cap: the same command again after
an interruption resumes after the last complete epoch. The command that wrote the
shipped files is in their card (``command``); a short trial::

    python scripts/build/train_pretrained.py --max-epochs 2 --cap 60 --threads 1
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import scipy.stats
import torch
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from idc_sklearn import (
    PRESETS,
    PRETRAINED,
    MLBNInceptionClassifier,
    PatientValidSplit,
    __version__,
    make_baseline,
    paired_bootstrap,
    read_patient_split,
    save_model,
)

# Where the real patches are and the per-patient cap: what the experiments that train
# on ../shared share (scripts/experiments/shared_patients.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
from shared_patients import (  # noqa: E402
    CACHE,
    EXTRA_FOLDER,
    FOLDERS,
    REPO_ROOT,
    SPLIT,
    cap_per_patient,
    cpu_description,
    load_shared,
)

# The package folder load_pretrained reads (package data, see setup.py).
PACKAGE_FOLDER = REPO_ROOT / "idc_sklearn" / "pretrained_models"

# The recipe of the shipped model: MLBNInceptionClassifier's parameters, the one
# place to change it. "precision": "auto" trains in bfloat16 where the CPU or GPU has
# bfloat16 units (AVX-512 BF16, AMX) and in float32 elsewhere, where bfloat16 would be
# emulated; the shipped model predicts in float32 either way.
RECIPE = {
    **PRESETS["small"],
    "dropout": 0.4,
    "multilevel_bn": True,
    "init": "glorot",
    "resample": "over",
    "class_weight": None,
    # Flips and 90-degree rotations, chosen on the validation patients over no
    # augmentation, HED jitter and both (docs/results.md, "The recipe").
    "augment": "dihedral",
    "optimizer": torch.optim.Adam,
    "lr": 1e-3,
    "batch_size": 32,
    "precision": "auto",
    # With --validate: stop 3 epochs after the validation patients' last gain
    # (the paper's 10 outlasts a CPU budget of a few epochs), the best restored.
    "callbacks__early_stopping__patience": 3,
}
# Each network that ships, by name, and its recipe. Cross-validation by patient
# (scripts/experiments/cv_select.py, docs/results.md) kept RECIPE against every lever
# it screened (EMA, SWA, label smoothing, cosine schedule, colour jitter, widths):
# "mlbn-small-all" is RECIPE trained on every patch of every patient it may see.
RECIPES = {"mlbn-small": RECIPE, "mlbn-small-all": RECIPE}
# The library's description of the data; the card repeats it.
DATA = {
    "source": (
        "IDC_regular_ps50_idx5 (Janowczyk & Madabhushi 2016, J Pathol Inform 7:29; "
        "Kaggle 'Breast Histopathology Images'): the real patches of ../shared/data"
    ),
    "scan": "whole-slide H&E images of breast cancer, scanned at 40x",
    "magnification": "2.5x",
    "patch_size": [50, 50],
    "labels": "0: no IDC, 1: IDC, per patch, from coarse region annotations",
}


def trained_precision(precision: str, device: str, bf16_units: list[str]) -> str:
    """What ``precision`` computed in on ``device``: ``"auto"`` is bfloat16 where the
    device has bfloat16 units (a GPU that supports it; a CPU whose flags, read by
    ``lscpu``, name AVX-512 BF16 or AMX), as the estimator decides, else float32."""
    device_type = torch.device(device).type
    if precision != "auto":
        return precision
    if device_type == "cuda":
        units = torch.cuda.is_bf16_supported()
    else:
        units = device_type == "cpu" and bool(bf16_units)
    return "bfloat16" if units else "float32"


def load_training_patches(cache: Path, cap: int | None, seed: int, folders=FOLDERS):
    """The patches of every shared patient but the split's test patients."""
    test = set(read_patient_split(SPLIT)["test"])
    idc = load_shared(cache, folders)
    groups = idc.groups.astype(str)
    allowed = ~np.isin(groups, sorted(test))
    rows = np.flatnonzero(allowed)
    rows = rows[cap_per_patient(idc.target[rows], groups[rows], cap, seed)]
    excluded = sorted(str(patient) for patient in set(groups[~allowed]))
    return np.asarray(idc.data[rows]), idc.target[rows], groups[rows], excluded


def recipe_json(recipe: dict) -> dict:
    """The recipe as JSON: classes by name, tuples as lists, a callback as its
    class and parameters."""
    return {key: _json_value(value) for key, value in recipe.items()}


def _json_value(value):
    if isinstance(value, type):
        return value.__name__
    if isinstance(value, tuple):
        return list(value)
    if hasattr(value, "get_params"):
        return {"class": type(value).__name__, **value.get_params(deep=False)}
    return value


def run_name(name: str, recipe: dict, seed: int, epochs: int, cap) -> str:
    """The checkpoint folder of one run: another recipe never meets its checkpoint."""
    text = json.dumps(recipe_json(recipe), sort_keys=True)
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    return f"{name}-s{seed}-e{epochs}-c{cap or 'all'}-{digest}"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def bootstrap_interval(y, proba, groups, metric, seed=0, n_resamples=2000) -> list:
    """The 95% percentile interval of ``metric``, resampling whole patients.

    :func:`scipy.stats.bootstrap` draws patients with replacement; each resample
    scores all the patches of the patients drawn (twice if drawn twice).
    """
    rows = [np.flatnonzero(groups == p) for p in np.unique(groups)]

    def statistic(drawn):
        idx = np.concatenate([rows[int(i)] for i in drawn])
        return metric(y[idx], proba[idx])

    result = scipy.stats.bootstrap(
        (np.arange(len(rows)),),
        statistic,
        vectorized=False,
        n_resamples=n_resamples,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    interval = result.confidence_interval
    return [round(float(interval.low), 4), round(float(interval.high), 4)]


def _bacc(y, proba):
    # IDC where the probability exceeds 0.5, as predict calls it (a tie is no IDC).
    return balanced_accuracy_score(y, proba > 0.5)


def scores_with_intervals(y, proba, groups, seed) -> dict:
    """Balanced accuracy and ROC AUC over the patches, each with its interval."""
    return {
        "balanced_accuracy": round(float(_bacc(y, proba)), 4),
        "balanced_accuracy_95": bootstrap_interval(y, proba, groups, _bacc, seed),
        "roc_auc": round(float(roc_auc_score(y, proba)), 4),
        "roc_auc_95": bootstrap_interval(y, proba, groups, roc_auc_score, seed),
    }


def validate(clf, X, y, groups, val_patients, seed) -> dict:
    """The validation patients' scores, and the lead over features-hgb on them."""
    is_val = np.isin(groups, val_patients)
    Xv, yv, gv = X[is_val], y[is_val], groups[is_val]
    tta = clf.tta
    proba = clf.set_params(tta=False).predict_proba(Xv)[:, 1]
    proba_tta = clf.set_params(tta=True).predict_proba(Xv)[:, 1]
    clf.set_params(tta=tta)
    baseline = make_baseline("features-hgb", random_state=seed)
    baseline.fit(X[~is_val], y[~is_val])
    proba_hgb = baseline.predict_proba(Xv)[:, 1]
    shipped = proba_tta if tta else proba
    lead = paired_bootstrap(yv, shipped > 0.5, proba_hgb > 0.5, gv, random_state=seed)
    return {
        "patients": len(val_patients),
        "patches": int(is_val.sum()),
        "idc_patches": int(yv.sum()),
        "train_patients": len(np.unique(groups[~is_val])),
        "train_patches": int((~is_val).sum()),
        "best_epoch": int(
            max(clf.history_, key=lambda row: row["valid_bacc"])["epoch"]
        ),
        "model": scores_with_intervals(yv, proba, gv, seed),
        "model_tta": scores_with_intervals(yv, proba_tta, gv, seed),
        "features-hgb": scores_with_intervals(yv, proba_hgb, gv, seed),
        "lead_over_features-hgb": {
            "balanced_accuracy": round(float(lead["difference"]), 4),
            "balanced_accuracy_95": [
                round(float(lead["low"]), 4),
                round(float(lead["high"]), 4),
            ],
            "with_tta": bool(tta),
        },
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--name", default="mlbn-small", choices=sorted(RECIPES))
    parser.add_argument("--max-epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--cap",
        type=int,
        default=None,
        help="at most this many patches per patient, a seeded draw keeping its "
        "class ratio (default: every patch)",
    )
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count(), help="torch's CPU threads"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--cache",
        default=str(CACHE),
        help="load_idc's cache of the shared folders (shared with "
        "scripts/experiments/recipe_search.py)",
    )
    parser.add_argument(
        "--checkpoint-dir", default=str(REPO_ROOT / ".cache" / "pretrained_checkpoint")
    )
    parser.add_argument(
        "--output-dir",
        default=str(PACKAGE_FOLDER),
        help="where the weights and the card go (default: the package's folder)",
    )
    parser.add_argument(
        "--validate",
        action="store_true",
        help="hold out the split's validation patients: early stopping on them, and "
        "the card's validation scores (the paper's protocol)",
    )
    parser.add_argument(
        "--validation-json",
        default=None,
        help="a JSON file of validation results for the card's 'validation' block",
    )
    parser.add_argument(
        "--every-patch",
        action="store_true",
        help=f"also the {EXTRA_FOLDER} folder: every patch of the training patients",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    validation = None
    if args.validation_json is not None:
        validation = json.loads(Path(args.validation_json).read_text("utf-8"))

    started = time.perf_counter()
    folders = (*FOLDERS, EXTRA_FOLDER) if args.every_patch else FOLDERS
    X, y, groups, excluded = load_training_patches(
        Path(args.cache), args.cap, args.seed, folders
    )
    patients = sorted(str(patient) for patient in set(groups))
    print(
        f"{len(X)} patches of {len(patients)} patients ({int(y.sum())} IDC); "
        f"left out the split's test patients {excluded}",
        flush=True,
    )

    cpu, bf16_units = cpu_description()
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    recipe = {**RECIPES[args.name]}
    checkpoint = Path(args.checkpoint_dir) / run_name(
        args.name, recipe, args.seed, args.max_epochs, args.cap
    )
    val_patients = None
    if args.validate:
        val_patients = sorted(set(read_patient_split(SPLIT)["val"]) & set(patients))
        checkpoint = checkpoint.with_name(checkpoint.name + "-validated")
    clf = MLBNInceptionClassifier(
        **recipe,
        max_epochs=args.max_epochs,
        train_split=(
            None
            if val_patients is None
            else PatientValidSplit(valid_groups=val_patients)
        ),
        random_state=args.seed,
        device=args.device,
        checkpoint_dir=str(checkpoint),
    )
    fit_start = time.perf_counter()
    clf.fit(X, y, groups=groups)
    fit_s = time.perf_counter() - fit_start
    if val_patients is not None:
        validation = validate(clf, X, y, groups, val_patients, args.seed)
        print(json.dumps(validation, indent=1), flush=True)

    # What ships: the weights and the BatchNorm statistics, predicting in float32
    # wherever it is loaded, with no checkpoint folder of this machine's, no
    # validation patients of the split (fine-tuning trains on all it is given) and a
    # fresh optimiser (Adam's moments would double the file).
    clf.set_params(
        precision="float32", checkpoint_dir=None, device="auto", train_split=None
    )
    clf.initialize_optimizer()
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    entry = PRETRAINED[args.name]
    weights = out / entry["file"]
    save_model(clf, weights)

    counts = {
        patient: [int(n) for n in np.bincount(y[groups == patient], minlength=2)]
        for patient in patients
    }
    card = {
        "name": args.name,
        "description": entry["description"],
        "estimator": "idc_sklearn.MLBNInceptionClassifier",
        "classes": [0, 1],
        "file": entry["file"],
        "file_bytes": weights.stat().st_size,
        "sha256": file_sha256(weights),
        "data": {
            **DATA,
            "folders": list(folders),
            "split": (
                "cruz_roa_split: its training patients (and the 3 outside it) "
                "train, its validation patients choose the epoch"
                if val_patients is not None
                else "cruz_roa_split: every patient but its test patients trains"
            ),
            "excluded_patients": excluded,
            "patients": len(patients),
            "patches": len(y),
            "patches_by_class": {"0": int((y == 0).sum()), "1": int((y == 1).sum())},
            "validation_patients": val_patients,
            "cap_per_patient": args.cap,
            "patches_by_patient": counts,
        },
        "recipe": recipe_json(recipe),
        "training": {
            "precision": trained_precision(
                recipe["precision"], clf.device_, bf16_units
            ),
            "train_split": (
                None
                if val_patients is None
                else f"the split's {len(val_patients)} validation patients"
            ),
            "max_epochs": args.max_epochs,
            "epochs": [
                {
                    key: round(row[key], 5)
                    for key in (
                        "epoch",
                        "train_loss",
                        "valid_loss",
                        "valid_bacc",
                        "dur",
                    )
                    if key in row
                }
                for row in clf.history_
            ],
            "seed": args.seed,
            # Training time over every epoch, whether or not this run resumed;
            # fit_s and total_s are this run's, from a checkpoint or not.
            "train_s": round(sum(row["dur"] for row in clf.history_), 1),
            "fit_s": round(fit_s, 1),
            "total_s": round(time.perf_counter() - started, 1),
        },
        "machine": {
            "cpu": cpu,
            "bf16_units": bf16_units,
            "threads": torch.get_num_threads(),
            "device": clf.device_,
            "gpu": torch.cuda.get_device_name() if device.startswith("cuda") else None,
        },
        "versions": {
            "idc_sklearn": __version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "date": datetime.date.today().isoformat(),
        "command": " ".join(["python", *sys.argv]),
        "validation": validation,
    }
    # Written whole under another name, then renamed: never half a card.
    partial = out / (entry["card"] + ".partial")
    partial.write_text(json.dumps(card, indent=1) + "\n", encoding="utf-8")
    partial.replace(out / entry["card"])
    print(
        f"Trained {len(clf.history_)} epochs (at most {args.max_epochs}) in "
        f"{fit_s:.0f} s; wrote {weights} "
        f"({card['file_bytes'] / 1e6:.1f} MB) and {out / entry['card']}.",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Train and score one width of the MLBN network on a lent GPU, fold by fold, from
the file ``gpu_data.py`` packs, within a time budget; then fold the results into
``results/cv_select`` for ``cv_select.py --table``.

The protocol is ``cv_select.build``'s: ``MLBNInceptionClassifier(**PRESETS[width],
**cv_select.BASE)``, 10 epochs, batch 32, ``precision="auto"``, a fifth of the
training patients held out inside each fold for early stopping, the seed as
``random_state``; the held-out patients' packed patches are scored with and
without test-time augmentation. What differs from a ``cv_select`` run is the data:
the packed draw of 60 patches per patient (the same class counts per patient, other
patches), and held-out scores on that draw only. Each fold writes
``<out>/predictions/gpu-<width>-s<seed>-f<fold>.npz`` (``proba``, ``proba_tta``,
``y``, ``groups``, and ``rows`` and ``position``: each patch's row in the split
and its index in the fold's full held-out set) and a line of
``<out>/folds.jsonl`` in ``cv_select``'s format, with a ``subset`` field: the table
compares these runs with every other model on the packed rows only.

A fold that cannot finish before ``--budget-s`` is not started, or is stopped
between epochs, and the script exits with status 3; a rerun with ``--resume-from``
the earlier output skips the folds done. ::

    python scripts/experiments/gpu_width.py paper --out $OUT          # on the GPU
    python scripts/experiments/gpu_width.py --merge <files_at>        # here, after
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
from cv_select import BASE, EPOCHS
from gpu_data import DEFAULT_OUT, file_sha256, load
from recipe_search import scores
from shared_patients import REPO_ROOT, machine
from skorch.callbacks import Callback

from idc_sklearn import PRESETS, MLBNInceptionClassifier

PREFIX = "gpu-"
OUT_OF_TIME = 3


class OutOfTime(Exception):
    """The fold cannot finish before the deadline."""


class Deadline(Callback):
    """Print each epoch; stop training once the epochs left (and the scoring,
    about one epoch's time) can no longer finish before ``deadline``."""

    def __init__(self, deadline: float, label: str):
        self.deadline = deadline
        self.label = label

    def on_train_begin(self, net, **kwargs):
        self.start_ = time.monotonic()

    def on_epoch_end(self, net, **kwargs):
        row = net.history[-1]
        done = len(net.history)
        per_epoch = (time.monotonic() - self.start_) / done
        print(
            f"  {self.label} epoch {done}: train_loss {row['train_loss']:.4f}, "
            f"valid_bacc {row.get('valid_bacc', float('nan')):.3f}, "
            f"{row['dur']:.1f} s",
            flush=True,
        )
        left = net.max_epochs - done
        if left and time.monotonic() + (left + 1) * per_epoch > self.deadline:
            raise OutOfTime(
                f"{self.label}: {left} epochs of {per_epoch:.1f} s and the scoring "
                f"do not fit the {self.deadline - time.monotonic():.0f} s left"
            )


def model_name(width: str, epochs: int, batch_size: int) -> str:
    """``gpu-<width>``, with the settings that differ from ``cv_select``'s."""
    name = PREFIX + width
    if epochs != EPOCHS:
        name += f"-e{epochs}"
    if batch_size != 32:
        name += f"-b{batch_size}"
    return name


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return machine()["cpu"]


def computes_in(precision: str, device: str) -> str:
    """The dtype the forward pass runs in (``"auto"`` resolved)."""
    try:
        from idc_sklearn.precision import autocast_dtype

        dtype = autocast_dtype(precision, torch.device(device).type)
    except (ImportError, AttributeError, KeyError):
        return precision
    return "float32" if dtype is None else str(dtype).removeprefix("torch.")


def records(log: Path) -> list[dict]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line]


def merge(source: Path, into: Path, keep=None) -> int:
    """Copy ``source``'s folds (records and predictions; those ``keep(record)``
    accepts) into ``into``, skipping the (model, seed, fold) already there;
    returns how many were added."""
    have = {(r["model"], r["seed"], r["fold"]) for r in records(into / "folds.jsonl")}
    (into / "predictions").mkdir(parents=True, exist_ok=True)
    added = 0
    for record in records(source / "folds.jsonl"):
        key = (record["model"], record["seed"], record["fold"])
        name = f"{record['model']}-s{record['seed']}-f{record['fold']}.npz"
        if key in have or not (source / "predictions" / name).exists():
            continue
        if keep is not None and not keep(record):
            continue
        shutil.copyfile(source / "predictions" / name, into / "predictions" / name)
        with open(into / "folds.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        have.add(key)
        added += 1
    return added


def run(args) -> int:
    start = time.monotonic()
    deadline = start + args.budget_s
    out = Path(args.out)
    (out / "predictions").mkdir(parents=True, exist_ok=True)
    log = out / "folds.jsonl"
    data = load(args.data)
    meta = data["meta"]
    sha = file_sha256(Path(args.data))
    seed = meta["seed"] if args.seed is None else args.seed
    name = model_name(args.width, args.epochs, args.batch_size)

    def mine(record):
        return (
            record["model"] == name
            and record["seed"] == seed
            and (record.get("subset") or {}).get("sha256") == sha
        )

    for earlier in args.resume_from or []:
        if Path(earlier).is_dir() and Path(earlier).resolve() != out.resolve():
            print(f"resumed {merge(Path(earlier), out, mine)} folds from {earlier}")
    done = {r["fold"] for r in records(log) if mine(r)}
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.threads:
        torch.set_num_threads(args.threads)
    where = device_name(device)
    print(
        f"{name}, seed {seed}: {meta['patches']:,} patches of {meta['patients']} "
        f"patients ({meta['draw']}), loaded in {time.monotonic() - start:.1f} s; "
        f"{where}, {computes_in(args.precision, device)}; "
        f"folds done: {sorted(done) or 'none'}",
        flush=True,
    )
    X, y, groups, fold = data["X"], data["y"], data["groups"], data["fold"]
    longest = 0.0
    for k in args.folds:
        if k in done:
            continue
        if time.monotonic() + 1.1 * longest > deadline:
            print(
                f"stopping before fold {k}: a fold took {longest:.0f} s, "
                f"{deadline - time.monotonic():.0f} s are left",
                flush=True,
            )
            return OUT_OF_TIME
        fold_start = time.monotonic()
        train, test = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        model = MLBNInceptionClassifier(
            **{**BASE, **PRESETS[args.width]},
            max_epochs=args.epochs,
            batch_size=args.batch_size,
            precision=args.precision,
            device=args.device,
            data_on_device=args.data_on_device,
            random_state=seed,
            verbose=0,
            checkpoint_dir=None
            if args.checkpoints is None
            else str(Path(args.checkpoints) / f"{name}-s{seed}-f{k}"),
            callbacks=[("deadline", Deadline(deadline, f"fold {k}"))],
        )
        try:
            fit_start = time.perf_counter()
            model.fit(X[train], y[train], groups=groups[train])
            fit_s = time.perf_counter() - fit_start
        except OutOfTime as stop:
            print(f"stopping in fold {k}: {stop}; not recorded", flush=True)
            return OUT_OF_TIME
        score_start = time.perf_counter()
        proba = model.predict_proba(X[test])[:, 1]
        proba_tta = model.set_params(tta=True).predict_proba(X[test])[:, 1]
        score_s = time.perf_counter() - score_start
        np.savez_compressed(
            out / "predictions" / f"{name}-s{seed}-f{k}.npz",
            proba=proba.astype(np.float32),
            proba_tta=proba_tta.astype(np.float32),
            y=y[test],
            groups=groups[test],
            rows=data["rows"][test],
            position=data["position"][test],
        )
        valid = model.history[:, "valid_bacc"]
        record = {
            "model": name,
            "seed": seed,
            "fold": k,
            "cap": meta["cap"],
            "epochs": args.epochs,
            "train_patches": len(train),
            "test_patches": len(test),
            "best_epoch": int(np.argmax(valid)) + 1,
            "epochs_run": len(model.history),
            "inner_valid_bacc": float(np.max(valid)),
            "fit_s": round(fit_s, 1),
            "score_s": round(score_s, 1),
            "test": scores(y[test], proba, groups[test]),
            "test_tta": scores(y[test], proba_tta, groups[test]),
            "width": args.width,
            "batch_size": args.batch_size,
            "precision": args.precision,
            "computes_in": computes_in(args.precision, device),
            "data_on_device": args.data_on_device,
            "device": where,
            # The held-out rows are the packed draw: the table compares on them.
            "subset": {
                "data": Path(args.data).name,
                "sha256": sha,
                "draw": meta["draw"],
                "patches": meta["patches"],
            },
            "machine": {**machine(), "device": where},
        }
        with open(log, "a") as f:
            f.write(json.dumps(record) + "\n")
        longest = max(longest, time.monotonic() - fold_start)
        print(
            f"{name} s{seed}-f{k}: bacc {record['test']['balanced_accuracy']:.3f} "
            f"(tta {record['test_tta']['balanced_accuracy']:.3f}), fit {fit_s:.0f} s, "
            f"best epoch {record['best_epoch']}, {len(train)} train / {len(test)} "
            f"held-out patches",
            flush=True,
        )
        del model
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("width", nargs="?", choices=sorted(PRESETS))
    parser.add_argument("--data", default=str(DEFAULT_OUT))
    parser.add_argument("--out", default="gpu_results")
    parser.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument(
        "--seed", type=int, default=None, help="random_state (default: the draw's)"
    )
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument(
        "--batch-size",
        type=int,
        default=32,
        help="32 pairs with the CPU runs; another size is named -b<size>",
    )
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--data-on-device", action="store_true")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--budget-s", type=float, default=540)
    parser.add_argument("--checkpoints", default=None)
    parser.add_argument(
        "--resume-from", nargs="*", help="earlier outputs: their folds are skipped"
    )
    parser.add_argument(
        "--merge",
        default=None,
        help="copy this output's folds into --into, and do nothing else",
    )
    parser.add_argument("--into", default=str(REPO_ROOT / "results" / "cv_select"))
    args = parser.parse_args(argv)
    if args.merge:
        added = merge(Path(args.merge), Path(args.into))
        print(f"{added} folds added to {args.into}")
        return 0
    if args.width is None:
        parser.error("a width is needed")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())

"""The final table of the paper's protocol: ``GroupKFold(5)`` over the split's 111
train/val patients in ``../shared``, every model, several seeds, paired intervals.

Models: the MLBN network with the recipe chosen on the validation patients
(``scripts/experiments/recipe_search.py``), its ablation without multi-level BN under
the same recipe, the paper's two CNN baselines, and the handcrafted baselines. Inside
each training fold the CNNs hold out a fifth of the training patients for early
stopping, so nothing is chosen on the fold that is scored. Training patches are capped
per patient (``--cap``) to fit the CPU budget; test folds stay whole.

Each (seed, fold, model) appends a line to ``<out>/folds.jsonl`` and saves its test
predictions; a rerun skips what is done, and the CNNs train with ``checkpoint_dir``,
so the run resumes across sessions. ``--table`` prints the table from what is there::

    python scripts/experiments/split_cv.py --out results/split_cv --seeds 0 1
    python scripts/experiments/split_cv.py --out results/split_cv --table \\
        --figures docs/figures
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.special
import torch
from recipe_search import SMALL, load_split_patches, scores
from shared_patients import CACHE, REPO_ROOT, cap_per_patient, machine
from sklearn.model_selection import GroupKFold

from idc_sklearn import (
    CruzRoaCNNClassifier,
    JanowczykCNNClassifier,
    MLBNInceptionClassifier,
    make_baseline,
    paired_bootstrap,
    patient_scores,
    plot_paired_differences,
    plot_patient_scores,
)
from idc_sklearn.handcrafted import BASELINES

# The recipe chosen on the validation patients (docs/results.md, "The recipe"): dihedral
# augmentation won the screen; test-time augmentation added 0.002 there, not worth 8x
# the inference, so it stays off.
RECIPE = {"augment": "dihedral"}
EPOCHS = 10


def cnn_models(seed: int, checkpoints: Path, tag: str, epochs: int = EPOCHS) -> dict:
    common = {
        "max_epochs": epochs,
        "batch_size": 32,
        "precision": "auto",
        "random_state": seed,
        "verbose": 0,
    }

    def ckpt(name):
        return {"checkpoint_dir": str(checkpoints / f"{name}-{tag}")}

    return {
        "mlbn-inception": lambda: MLBNInceptionClassifier(
            **SMALL, **RECIPE, **common, **ckpt("mlbn")
        ),
        "inception-no-mlbn": lambda: MLBNInceptionClassifier(
            **SMALL, multilevel_bn=False, **RECIPE, **common, **ckpt("no-mlbn")
        ),
        "janowczyk-cnn": lambda: JanowczykCNNClassifier(**common, **ckpt("janowczyk")),
        "cruz-roa-cnn": lambda: CruzRoaCNNClassifier(**common, **ckpt("cruz-roa")),
    }


def run(args) -> None:
    out = Path(args.out)
    (out / "predictions").mkdir(parents=True, exist_ok=True)
    log = out / "folds.jsonl"
    done = set()
    if log.exists():
        done = {
            (r["model"], r["seed"], r["fold"]) for r in map(json.loads, _lines(log))
        }
    X, y, groups, train_patients, val_patients = load_split_patches(Path(args.cache))
    folds = list(GroupKFold(args.folds).split(X, y, groups))[: args.run_folds]
    chosen = range(len(folds)) if args.fold_indices is None else args.fold_indices
    for seed in args.seeds:
        for fold, (train, test) in enumerate(folds):
            if fold not in chosen:
                continue
            train = train[cap_per_patient(y[train], groups[train], args.cap, seed)]
            tag = f"s{seed}-f{fold}-c{args.cap}"
            models = {
                **cnn_models(seed, Path(args.checkpoints), tag, args.epochs),
                **{
                    name: (
                        lambda name=name, seed=seed: make_baseline(
                            name, random_state=seed
                        )
                    )
                    for name in BASELINES
                },
            }
            for name in args.models:
                if (name, seed, fold) in done:
                    continue
                model = models[name]()
                start = time.perf_counter()
                if name in BASELINES:
                    model.fit(X[train], y[train])
                else:
                    model.fit(X[train], y[train], groups=groups[train])
                fit_s = time.perf_counter() - start
                if hasattr(model, "predict_proba"):
                    proba = model.predict_proba(X[test])[:, 1]
                else:
                    # texture-svm: the SVM's margin through the logistic function,
                    # so 0 maps to 0.5 and the calls are predict's.
                    proba = scipy.special.expit(model.decision_function(X[test]))
                np.savez_compressed(
                    out / "predictions" / f"{name}-{tag}.npz",
                    proba=proba.astype(np.float32),
                    y=y[test],
                    groups=groups[test],
                )
                record = {
                    "model": name,
                    "seed": seed,
                    "fold": fold,
                    "cap": args.cap,
                    "train_patches": len(train),
                    "test_patches": len(test),
                    "fit_s": round(fit_s, 1),
                    "test": scores(y[test], proba, groups[test]),
                    "machine": machine(),
                }
                with open(log, "a") as f:
                    f.write(json.dumps(record) + "\n")
                print(
                    f"{name} {tag}: bacc {record['test']['balanced_accuracy']:.3f}, "
                    f"{fit_s:.0f} s",
                    flush=True,
                )


def _lines(path: Path):
    return path.read_text().splitlines()


def table(
    out: Path, reference: str = "mlbn-inception", figures: Path | None = None
) -> str:
    """Pooled out-of-fold scores per model and seed, and paired differences.

    With ``figures``, also writes there the forest plot of the paired differences
    (``split_cv_differences.png``, every seed) and the per-patient balanced accuracy
    of every model (``split_cv_patients.png``, the first seed).
    """
    records = [json.loads(line) for line in _lines(out / "folds.jsonl")]
    frame = pd.DataFrame(records)
    rows, pooled = [], {}
    for (model, seed), part in frame.groupby(["model", "seed"]):
        cap = part["cap"].iloc[0]
        preds = [
            np.load(out / "predictions" / f"{model}-s{seed}-f{f}-c{cap}.npz")
            for f in sorted(part["fold"])
        ]
        y = np.concatenate([p["y"] for p in preds])
        proba = np.concatenate([p["proba"] for p in preds])
        groups = np.concatenate([p["groups"] for p in preds])
        pooled[model, seed] = (y, proba, groups)
        rows.append(
            {
                "model": model,
                "seed": seed,
                "folds": len(part),
                **scores(y, proba, groups),
            }
        )
    lines = [pd.DataFrame(rows).to_markdown(index=False, floatfmt=".3f"), ""]
    diffs, forest = [], []
    for (model, seed), (y, proba, groups) in pooled.items():
        if model == reference or (reference, seed) not in pooled:
            continue
        y_ref, proba_ref, groups_ref = pooled[reference, seed]
        if len(y) != len(y_ref):
            continue  # not every fold is done for both
        # The folds are the same for every model, so the patches line up.
        np.testing.assert_array_equal(groups, groups_ref)
        result = paired_bootstrap(
            y_ref,
            (proba_ref > 0.5).astype(int),
            (proba > 0.5).astype(int),
            groups_ref,
        )
        forest.append(
            {
                "model": f"{model} (seed {seed})",
                **{key: result[key] for key in ("difference", "low", "high")},
            }
        )
        diffs.append(
            {
                "seed": seed,
                f"{reference} - model": model,
                "balanced accuracy difference": f"{result['difference']:+.3f}",
                "95% interval over patients": (
                    f"[{result['low']:+.3f}, {result['high']:+.3f}]"
                ),
            }
        )
    if diffs:
        lines.append(pd.DataFrame(diffs).to_markdown(index=False))
    if figures is not None and forest:
        _figures(figures, forest, pooled, reference)
    return "\n".join(lines)


def _figures(folder: Path, forest: list[dict], pooled: dict, reference: str) -> None:
    """The results page's figures, from the numbers of its tables."""
    folder.mkdir(parents=True, exist_ok=True)
    differences = pd.DataFrame(forest).set_index("model")
    # Each model's seeds together, the best other model first.
    order = differences.groupby(differences.index.str.split(" ").str[0])[
        "difference"
    ].transform("mean")
    differences = differences.assign(order=order).sort_values(
        ["order", "model"], kind="stable"
    )
    differences = differences.drop(columns="order")
    differences.attrs["reference"] = reference
    figure, _, _ = plot_paired_differences(differences)
    figure.savefig(folder / "split_cv_differences.png", dpi=110)
    first_seed = min(seed for _, seed in pooled)
    patients = pd.concat(
        patient_scores(y, proba, groups)
        .drop(index=["mean", "pooled"])
        .reset_index()
        .assign(model=model)
        for (model, seed), (y, proba, groups) in pooled.items()
        if seed == first_seed
    )
    figure, _, _ = plot_patient_scores(patients)
    figure.savefig(folder / "split_cv_patients.png", dpi=110)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="results/split_cv")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--cap", type=int, default=60)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument(
        "--run-folds", type=int, default=None, help="run only the first folds (smoke)"
    )
    parser.add_argument(
        "--fold-indices",
        type=int,
        nargs="+",
        help="run only these folds (0-based), e.g. to share the folds between two "
        "processes of one thread each",
    )
    parser.add_argument(
        "--models",
        nargs="+",
        default=[*cnn_models(0, Path(), ""), *BASELINES],
        choices=[*cnn_models(0, Path(), ""), *BASELINES],
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", default=str(CACHE))
    parser.add_argument(
        "--checkpoints", default=str(REPO_ROOT / ".cache" / "split_cv_checkpoints")
    )
    parser.add_argument("--table", action="store_true", help="print the table only")
    parser.add_argument(
        "--figures",
        default=None,
        help="folder for the results page's figures (docs/figures), drawn with the "
        "table",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    figures = None if args.figures is None else Path(args.figures)
    if args.table:
        print(table(Path(args.out), figures=figures))
        return
    run(args)
    print(table(Path(args.out), figures=figures))


if __name__ == "__main__":
    main()

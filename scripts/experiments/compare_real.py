"""The comparison on every real patch in ``../shared``: 9,044 patches of 20 patients.

Joins ``../shared/data/idc_sample`` (2,695 patches, the built-in sample before it
was redrawn from all three shared folders) and ``../shared/data/idc_more`` (6,349
more patches of the same patients and one more), in that order,
cross-validates the MLBN network, its ablation and the handcrafted baselines with
``GroupKFold`` by patient, every model balanced (the CNNs by ``resample="over"``,
the baselines by class weights), and writes the report of ``idc-sklearn compare``
(table, paired difference with its 95% interval, folds, predictions, patients) plus
the balanced accuracy within the patients that show both classes, where a patient's
stain cannot tell the classes apart.

    python scripts/experiments/compare_real.py --folds 5 --max-epochs 30 \\
        --out results_real
"""

from __future__ import annotations

import argparse
import datetime
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import GroupKFold

from idc_sklearn import (
    PRESETS,
    MLBNInceptionClassifier,
    compare_models,
    load_idc,
    make_baseline,
)
from idc_sklearn.report import write_report

# The patients of the shared data with patches of both classes.
MIXED = ("8863", "8864", "8865", "8867", "8975")


def load_real_patches(more: str):
    """The folders idc_sample (beside more) and more: patches, labels, patients."""
    sample = load_idc(Path(more).parent / "idc_sample", progress=False)
    extra = load_idc(more, cache="/tmp/idc_more_cache", progress=False)
    X = np.concatenate([sample.data, extra.data])
    y = np.concatenate([sample.target, extra.target])
    groups = np.concatenate([sample.groups, extra.groups]).astype(str)
    return X, y, groups


class SubsampledGroupKFold:
    """GroupKFold by patient whose training folds are cut to at most ``train_size``.

    The cut is a seeded random sample stratified by patient and class, so every
    training patient keeps its share; the test folds stay whole. It bounds the
    cost of CNN training on a CPU; every model sees the same patches.
    """

    def __init__(self, n_splits, train_size, random_state=0):
        self.n_splits = n_splits
        self.train_size = train_size
        self.random_state = random_state

    def get_n_splits(self, X=None, y=None, groups=None):
        return self.n_splits

    def split(self, X, y, groups):
        rng = np.random.default_rng(self.random_state)
        for train, test in GroupKFold(self.n_splits).split(X, y, groups):
            if self.train_size is not None and len(train) > self.train_size:
                strata = (
                    pd.Series(groups[train]).astype(str) + "/" + y[train].astype(str)
                )
                share = self.train_size / len(train)
                keep = [
                    rng.choice(idx, max(1, round(len(idx) * share)), replace=False)
                    for idx in strata.groupby(strata).indices.values()
                ]
                train = np.sort(train[np.concatenate(keep)])
            yield train, test

    def __repr__(self):
        return (
            f"GroupKFold({self.n_splits}) by patient, training folds cut to "
            f"{self.train_size} patches (stratified by patient and class)"
        )


def models(args) -> dict:
    cnn = {
        **PRESETS["small"],
        "max_epochs": args.max_epochs,
        "random_state": args.seed,
        "device": args.device,
        "verbose": 0,
    }
    chosen = {
        "mlbn-inception": MLBNInceptionClassifier(**cnn),
        "inception-no-mlbn": MLBNInceptionClassifier(**cnn, multilevel_bn=False),
    }
    for augment in args.augment:
        chosen[f"mlbn-inception-{augment}"] = MLBNInceptionClassifier(
            **cnn, augment=augment
        )
    for name in args.baselines:
        chosen[name] = make_baseline(name, random_state=args.seed)
    return chosen


def within_mixed(predictions: pd.DataFrame, names) -> pd.Series:
    mixed = predictions[predictions["patient"].astype(str).isin(MIXED)]
    return pd.Series(
        {
            name: balanced_accuracy_score(mixed["y_true"], mixed[f"{name}_pred"])
            for name in names
        },
        name="balanced_accuracy_mixed_patients",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--more", default="../shared/data/idc_more")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("--train-size", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--augment", nargs="*", default=[])
    parser.add_argument(
        "--baselines",
        nargs="*",
        default=["color-logreg", "texture-svm", "features-rf", "features-hgb"],
    )
    parser.add_argument("--out", default="results_real")
    args = parser.parse_args()
    started = time.perf_counter()
    X, y, groups = load_real_patches(args.more)
    chosen = models(args)
    cv = SubsampledGroupKFold(args.folds, args.train_size, random_state=args.seed)
    table, details = compare_models(chosen, X, y, groups, cv=cv, return_details=True)
    mixed = within_mixed(details.predictions, chosen)
    table["balanced_accuracy_mixed_patients"] = mixed
    cpu = (
        subprocess.run(
            ["sh", "-c", "lscpu | grep 'Model name'"], capture_output=True, text=True
        )
        .stdout.split(":")[-1]
        .strip()
    )
    stamp = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    description = (
        f"Data: idc_sample + {args.more}: {len(y):,} real patches of "
        f"{len(set(groups))} patients, {y.mean():.0%} IDC. Folds: {cv!r}. "
        "CNNs: small MLBN (filters 8..64, dense 64,64), "
        f'resample="over", at most {args.max_epochs} epochs with early stopping on '
        f"validation patients of the training fold. Machine: {cpu}, "
        f"{torch.get_num_threads()} threads, Python {platform.python_version()}, "
        f"torch {torch.__version__}; {stamp}; "
        f"{time.perf_counter() - started:.0f} s in all."
    )
    write_report(args.out, table, details, description=description)
    print(table.round(3).to_string())
    print(mixed.round(3).to_string())
    print(details.differences.round(3).to_string())


if __name__ == "__main__":
    main()

"""The ``idc-sklearn`` command line: compare, train, predict, heatmap and info.

Heavy modules (torch, the estimators, the data loaders) are imported once the
arguments are parsed, so ``--help`` and argument errors answer quickly.

Exit statuses: 0 on success; 2 for invalid arguments (argparse's usage message
naming the option); 1 for a fault found while running (a missing file, a file that
is not a model, patches of the wrong shape, an unknown patient), reported as one line
``idc-sklearn <command>: error: ...`` on stderr, without a traceback; 130 when
interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import re
import sys
import time
import warnings
from pathlib import Path

from idc_sklearn.report import format_difference, format_table

__all__ = ["CommandError", "build_parser", "format_table", "main"]

PROG = "idc-sklearn"
CNN_MODELS = ("mlbn-inception", "inception-no-mlbn", "janowczyk-cnn", "cruz-roa-cnn")
# The "small" preset: the MLBN network at an eighth of the paper's widths; with the
# synthetic data's default size, 8 models and 3 folds took about 3 minutes on 2 CPU
# cores (before the training recipe's oversampling and BatchNorm recalibration).
SMALL_FILTERS = (8, 8, 16, 16, 32, 32, 64, 64)
SMALL_HEAD_UNITS = (64, 64)
# The "tiny" preset: the smallest MLBN network that trains, for smoke runs and the
# command's own tests; its scores mean nothing.
TINY_FILTERS = (3, 3)
TINY_HEAD_UNITS = (8,)
NETWORKS = {
    "tiny": {"filters": TINY_FILTERS, "head_units": TINY_HEAD_UNITS},
    "small": {"filters": SMALL_FILTERS, "head_units": SMALL_HEAD_UNITS},
    "paper": {},
}
DEFAULT_EPOCHS = {"tiny": 5, "small": 5, "paper": 100}
# The small preset trains every CNN with the MLBN recipe's batch size: the CNN
# baselines' own 128 would leave them 3 optimiser steps an epoch on its data.
SMALL_BATCH_SIZE = 32
DEFAULT_FOLDS = 3
DEFAULT_N_PATIENTS = 12
DEFAULT_PATCHES_PER_PATIENT = 60
DEFAULT_PATCH_SIZE = 50
# The built-in sample is drawn to this many patches and split into this many folds by
# default, so that the README's main command, install included, runs in under 5
# minutes on 2 CPU cores (measured: docs/results.md).
DEFAULT_SAMPLE_PATCHES = 600
DEFAULT_SAMPLE_FOLDS = 2
DEFAULT_OUT = "idc_compare_results"
# --data names the built-in data by these words, anything else is a folder.
SAMPLE, SYNTHETIC = "sample", "synthetic"
_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


def _positive_int(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected an integer; got {text!r}"
            ) from None
        if value < minimum:
            raise argparse.ArgumentTypeError(
                f"expected an integer of at least {minimum}; got {value}"
            )
        return value

    return parse


def _device(text: str) -> str:
    if not _DEVICE.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"expected auto, cpu, cuda, cuda:<index> or mps; got {text!r}"
        )
    return text


def _model_names() -> tuple[str, ...]:
    from idc_sklearn.baselines import BASELINES

    return (*CNN_MODELS, *BASELINES)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``idc-sklearn`` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="The MLBN Inception network for IDC patches, and its baselines.",
        epilog=MAIN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    compare = commands.add_parser(
        "compare",
        help="cross-validate the MLBN network against the baselines by patient",
        description=(
            "Cross-validate the MLBN Inception network, its ablation without "
            "multi-level BN, the two CNN baselines of the paper and the handcrafted "
            "feature baselines with folds by patient; print the table and the "
            "paired difference of the MLBN network against the best other model "
            "with its 95% interval, and write comparison.csv, comparison.md, "
            "comparison.png, folds.csv, predictions.csv and patients.csv. Without "
            "--data it runs on the built-in real sample of the IDC archive and the "
            "small preset on a CPU; --n-patches makes a quicker run."
        ),
    )
    # Errors found after parsing are reported with the usage of "compare".
    compare.set_defaults(command_parser=compare, run=_run_compare)
    data = compare.add_argument_group("data")
    data.add_argument(
        "--data",
        metavar="{sample,synthetic,PATH}",
        help="'sample': the built-in real sample of the IDC archive (2,695 patches "
        "of 19 patients); 'synthetic': generated patches, sized by the options "
        "below; PATH: a folder of the IDC archive (<patient>/<0|1>/*.png) "
        "(default: sample, or synthetic with --n-patients, --patches-per-patient "
        "or --patch-size)",
    )
    data.add_argument(
        "--split",
        metavar="FOLDER",
        help="folder of cases_train.txt, cases_val.txt, cases_test.txt (the paper's "
        "patient split): train on train+val patients (val for early stopping), "
        "score on test patients, instead of folds; not with synthetic data",
    )
    data.add_argument(
        "--n-patches",
        type=_positive_int(2),
        metavar="N",
        help="real data: use N patches drawn at random, in proportion from every "
        "patient and class (seeded by --random-state) (default: "
        f"{DEFAULT_SAMPLE_PATCHES} of the built-in sample, sized for a run of a few "
        "minutes on a CPU; every patch of a PATH)",
    )
    data.add_argument(
        "--n-patients",
        type=_positive_int(2),
        metavar="N",
        help=f"synthetic data: number of patients (default: {DEFAULT_N_PATIENTS})",
    )
    data.add_argument(
        "--patches-per-patient",
        type=_positive_int(1),
        metavar="N",
        help="synthetic data: patches per patient (default: "
        f"{DEFAULT_PATCHES_PER_PATIENT})",
    )
    data.add_argument(
        "--patch-size",
        type=_positive_int(32),
        metavar="PIXELS",
        help=f"synthetic data: patch side, at least 32 (default: {DEFAULT_PATCH_SIZE})",
    )
    models = compare.add_argument_group("models and folds")
    models.add_argument(
        "--models",
        nargs="+",
        metavar="NAME",
        choices=_model_names(),
        help="models to compare (default: all): %(choices)s",
    )
    models.add_argument(
        "--preset",
        choices=("small", "paper"),
        default="small",
        help="network size: 'small' is the MLBN network with filters "
        f"{','.join(map(str, SMALL_FILTERS))} and dense layers "
        f"{','.join(map(str, SMALL_HEAD_UNITS))} for a CPU; 'paper' is the "
        "paper's full network (about 34 M parameters; a GPU job) (default: "
        "small)",
    )
    models.add_argument(
        "--max-epochs",
        type=_positive_int(1),
        metavar="N",
        help="epochs of every CNN; early stopping may end sooner (default: "
        f"{DEFAULT_EPOCHS['small']} with the small preset, "
        f"{DEFAULT_EPOCHS['paper']} with paper)",
    )
    models.add_argument(
        "--batch-size",
        type=_positive_int(2),
        metavar="N",
        help="batch size of every CNN (default: "
        f"{SMALL_BATCH_SIZE} with the small preset, each model's own with paper)",
    )
    models.add_argument(
        "--folds",
        type=_positive_int(2),
        metavar="K",
        help="number of GroupKFold folds by patient (default: "
        f"{DEFAULT_SAMPLE_FOLDS} on the built-in sample, {DEFAULT_FOLDS} otherwise)",
    )
    models.add_argument(
        "--device",
        type=_device,
        default="auto",
        help="device of the CNNs: auto (a GPU where present, else the CPU), cpu, "
        "cuda, cuda:N (default: auto)",
    )
    models.add_argument(
        "--random-state",
        type=int,
        default=0,
        metavar="SEED",
        help="seed of the synthetic data and of every model (default: 0)",
    )
    output = compare.add_argument_group("output")
    output.add_argument(
        "--out",
        metavar="DIR",
        default=DEFAULT_OUT,
        help=f"folder for the results (default: {DEFAULT_OUT})",
    )
    output.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bars or messages; only the table is printed",
    )
    _add_train(commands)
    _add_predict(commands)
    _add_heatmap(commands)
    _add_info(commands)
    return parser


def _check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    synthetic_only = {
        "--n-patients": args.n_patients,
        "--patches-per-patient": args.patches_per_patient,
        "--patch-size": args.patch_size,
    }
    given = [option for option, value in synthetic_only.items() if value]
    if args.data is None:
        args.data = SYNTHETIC if given else SAMPLE
    elif given and args.data != SYNTHETIC:
        parser.error(
            f"{given[0]} sets the synthetic data; it cannot be used with --data "
            f"{args.data}"
        )
    if args.data == SYNTHETIC:
        if args.split is not None:
            parser.error(
                "--split names patients of the IDC archive; it cannot be used with "
                "synthetic data (use --data sample or --data PATH)"
            )
        if args.n_patches is not None:
            parser.error(
                "--n-patches subsamples real data; size synthetic data with "
                "--n-patients and --patches-per-patient"
            )
    if args.split is not None and args.folds is not None:
        parser.error("--folds cannot be used with --split (one fixed split)")
    folds = args.folds or DEFAULT_FOLDS
    n_patients = args.n_patients or DEFAULT_N_PATIENTS
    if args.data == SYNTHETIC and folds > n_patients:
        parser.error(
            f"--folds {folds} needs at least as many patients; --n-patients is "
            f"{n_patients}"
        )


def _say(args, message: str) -> None:
    if not args.quiet:
        print(message, file=sys.stderr, flush=True)


def _load(parser, args):
    """Return the data Bunch, the cv argument and descriptions of data and folds."""
    # The split files are read first: a mistake there shows before a long load.
    split = _read_split(parser, args)
    if args.data == SYNTHETIC:
        idc, source = _synthetic(args)
    elif args.data == SAMPLE:
        from idc_sklearn.datasets import load_idc_sample

        idc, source = load_idc_sample(), "the built-in real sample load_idc_sample()"
        if args.n_patches is None:
            args.n_patches = DEFAULT_SAMPLE_PATCHES
        if args.folds is None and args.split is None:
            args.folds = DEFAULT_SAMPLE_FOLDS
    else:
        from idc_sklearn.datasets import load_idc

        _say(args, f"Loading the IDC patches of {args.data} ...")
        try:
            idc = load_idc(args.data, progress=not args.quiet)
        except (OSError, ValueError) as exc:
            parser.error(f"--data {args.data}: {exc}")
        source = f"IDC archive {args.data}"
    if args.n_patches is not None and args.n_patches < len(idc.target):
        idc = _subsample(idc, args.n_patches, args.random_state)
        source += (
            f", {args.n_patches:,} patches drawn by patient and class (seed "
            f"{args.random_state})"
        )
    n_patients = len(set(idc.groups.tolist()))
    source += (
        f": {len(idc.target):,} patches of {n_patients} patients, "
        f"{idc.target.mean():.0%} IDC"
    )
    if split is None:
        folds = args.folds or DEFAULT_FOLDS
        if folds > n_patients:
            parser.error(
                f"--folds {folds} is more than the {n_patients} patients of --data "
                f"{args.data}"
            )
        return idc, folds, source, f"GroupKFold({folds}) by patient"
    return idc, _restrict_split(parser, args, split, idc.groups), source, None


def _synthetic(args):
    from idc_sklearn.datasets import make_idc_patches

    options = {
        "n_patients": args.n_patients or DEFAULT_N_PATIENTS,
        "patches_per_patient": args.patches_per_patient or DEFAULT_PATCHES_PER_PATIENT,
        "patch_size": args.patch_size or DEFAULT_PATCH_SIZE,
        "random_state": args.random_state,
    }
    _say(args, "Generating synthetic patches ...")
    arguments = ", ".join(f"{key}={value}" for key, value in options.items())
    return make_idc_patches(**options), f"synthetic make_idc_patches({arguments})"


def _subsample(idc, n: int, seed: int):
    """``n`` patches, each (patient, class) stratum in proportion to its size.

    Each patch gets its stratum's rank (in random order) plus a uniform draw,
    over the stratum's size: the ``n`` smallest keep every stratum's share to
    within a patch.
    """
    import numpy as np
    import pandas as pd
    from sklearn.utils import Bunch

    rng = np.random.default_rng(seed)
    strata = pd.MultiIndex.from_arrays([idc.groups, idc.target]).factorize()[0]
    sizes = np.bincount(strata)
    order = np.lexsort((rng.random(len(strata)), strata))
    rank = np.empty(len(strata))
    rank[order] = np.arange(len(strata)) - (np.cumsum(sizes) - sizes)[strata[order]]
    position = (rank + rng.random(len(strata))) / sizes[strata]
    keep = np.sort(np.argsort(position, kind="stable")[:n])
    return Bunch(data=idc.data[keep], target=idc.target[keep], groups=idc.groups[keep])


def _read_split(parser, args) -> dict[str, list[str]] | None:
    if args.split is None:
        return None
    from idc_sklearn.datasets import read_patient_split

    try:
        return read_patient_split(args.split)
    except (OSError, ValueError) as exc:
        parser.error(f"--split {args.split}: {exc}")


def _restrict_split(parser, args, split, groups) -> dict[str, list[str]]:
    """The split without the patients --data lacks (a sample of the archive)."""
    present = set(map(str, groups.tolist()))
    kept = {part: [p for p in ids if p in present] for part, ids in split.items()}
    for part, ids in kept.items():
        if not ids:
            parser.error(
                f"--split {args.split}: none of the {len(split[part])} {part} "
                f"patients is in --data {args.data}"
            )
    dropped = sum(len(split[part]) - len(kept[part]) for part in split)
    if dropped:
        _say(
            args,
            f"{dropped} patients of --split are not in --data and are left out.",
        )
    return kept


def _make_models(args, patch_shape, names=None, **params) -> dict:
    """The models ``names`` (default: ``--models``, else all), with ``params`` set."""
    from idc_sklearn import (
        CruzRoaCNNClassifier,
        JanowczykCNNClassifier,
        MLBNInceptionClassifier,
        make_baseline,
    )

    names = names or args.models or _model_names()
    common = {
        "patch_shape": patch_shape,
        "max_epochs": args.max_epochs or DEFAULT_EPOCHS[args.preset],
        "device": args.device,
        "verbose": 0,
        "random_state": args.random_state,
    }
    common.update(params)
    batch_size = args.batch_size or (
        SMALL_BATCH_SIZE if args.preset != "paper" else None
    )
    if batch_size is not None:
        common["batch_size"] = batch_size
    network = NETWORKS[args.preset]
    factories = {
        "mlbn-inception": lambda: MLBNInceptionClassifier(**network, **common),
        "inception-no-mlbn": lambda: MLBNInceptionClassifier(
            **network, multilevel_bn=False, **common
        ),
        "janowczyk-cnn": lambda: JanowczykCNNClassifier(
            crop_size=min(32, *patch_shape[:2]), **common
        ),
        "cruz-roa-cnn": lambda: CruzRoaCNNClassifier(**common),
    }
    models = {}
    for name in _model_names():
        if name not in names:
            continue
        if name in factories:
            models[name] = factories[name]()
        else:
            models[name] = make_baseline(
                name, patch_shape=patch_shape, random_state=args.random_state
            )
    return models


def _machine(device: str) -> str:
    import torch

    from idc_sklearn.classifier import resolve_device

    resolved = resolve_device(device)
    if resolved.startswith("cuda"):
        resolved = f"{resolved} ({torch.cuda.get_device_name(torch.device(resolved))})"
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, torch {torch.__version__}, "
        f"CNNs on {resolved}"
    )


def _check_device(parser, device: str) -> None:
    """Fail before any work where the requested device is absent."""
    import torch

    if device.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(device.partition(":")[2] or 0)
        if index >= count:
            parser.error(
                f"--device {device}: this machine has {count} CUDA GPU(s); "
                "use --device cpu or auto"
            )
    elif device == "mps" and not torch.backends.mps.is_available():
        parser.error("--device mps: MPS is not available; use --device cpu or auto")


def _settings(args) -> str:
    n_epochs = args.max_epochs or DEFAULT_EPOCHS[args.preset]
    epochs = f"{n_epochs} epoch{'s' if n_epochs != 1 else ''}"
    if args.preset == "small":
        batch = args.batch_size or SMALL_BATCH_SIZE
        network = (
            f"small preset (MLBN filters {','.join(map(str, SMALL_FILTERS))}, "
            f"dense {','.join(map(str, SMALL_HEAD_UNITS))}), every CNN at most "
            f"{epochs} with batch size {batch}"
        )
    else:
        batch = (
            f"batch size {args.batch_size}" if args.batch_size else "its own batch size"
        )
        network = (
            f"paper preset (the full MLBN network), every CNN at most {epochs} "
            f"with {batch}"
        )
    return network


def _compare(parser, args, argv) -> int:
    from idc_sklearn.comparison import compare_models
    from idc_sklearn.report import write_report

    _check_device(parser, args.device)
    started = time.perf_counter()
    idc, cv, source, folds = _load(parser, args)
    patch_shape = tuple(int(side) for side in idc.data.shape[1:])
    models = _make_models(args, patch_shape)
    table, details = compare_models(
        models,
        idc.data,
        idc.target,
        idc.groups,
        cv=cv,
        progress=not args.quiet,
        return_details=True,
    )
    elapsed = time.perf_counter() - started
    print(format_table(table).to_string())
    sentence = format_difference(details.differences)
    if sentence is not None:
        print(f"\n{sentence}")
    stamp = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    command = " ".join([PROG, *(sys.argv[1:] if argv is None else argv)])
    description = (
        f"Data: {source}. Folds: {folds or table.attrs['cv']}. Models: "
        f"{_settings(args)}. Machine: {_machine(args.device)}; {stamp}; "
        f"{elapsed:.0f} s in all.\n\nCommand: `{command}`"
    )
    paths = write_report(args.out, table, details, description=description)
    _say(args, f"Wrote {', '.join(map(str, paths))} in {elapsed:.0f} s.")
    return 0


def _run_compare(parser, args, argv) -> int:
    _check_args(parser, args)
    return _compare(parser, args, argv)


# --- train, predict, heatmap, info ------------------------------------------------

MAIN_EXAMPLES = """\
examples:
  idc-sklearn info
  idc-sklearn train --output mlbn.safetensors
  idc-sklearn predict mlbn.safetensors IDC_regular_ps50_idx5/ --output predictions.csv
  idc-sklearn heatmap mlbn.safetensors --data sample --patient 8863 --output slide.png
  idc-sklearn compare --n-patches 300

Run 'idc-sklearn COMMAND --help' for a command's options."""
TRAIN_EXAMPLES = """\
examples:
  # the small preset on the built-in sample (a few minutes on a CPU)
  idc-sklearn train --output mlbn.safetensors
  # the paper's network on the archive, on a GPU, resumable after a crash
  idc-sklearn train --data IDC_regular_ps50_idx5 --preset paper --device cuda \\
      --checkpoint-dir ckpt --output mlbn-paper.safetensors
  # a smoke run in seconds: tiny network, synthetic 16x16 patches
  idc-sklearn train --data synthetic --n-patches 64 --patch-size 16 \\
      --preset tiny --max-epochs 1 --output tiny.safetensors"""
PREDICT_EXAMPLES = """\
examples:
  idc-sklearn predict mlbn.safetensors IDC_regular_ps50_idx5/ -o predictions.csv
  idc-sklearn predict mlbn.safetensors patches.npy --tta --output - | head
  idc-sklearn predict mlbn.safetensors my_patches/ --batch-size 256

columns of the CSV (one row per patch, in the order read):
  patient, x, y   from the file names (<patient>_idx5_x<X>_y<Y>...); empty if unknown
  path            the PNG file (empty for an .npy array)
  proba           the probability of the model's second class (IDC for 0/1 labels)
  predicted       the predicted label, as the model's predict returns it"""
HEATMAP_EXAMPLES = """\
examples:
  idc-sklearn heatmap mlbn.safetensors --patient 8863 --output 8863.png
  idc-sklearn heatmap mlbn.safetensors --data IDC_regular_ps50_idx5 \\
      --patient 10253 --tta --output 10253.png"""
INFO_EXAMPLES = """\
examples:
  idc-sklearn info
  idc-sklearn info --data IDC_regular_ps50_idx5"""
DEFAULT_MODEL = "mlbn-inception"
DEFAULT_PREDICTIONS = "predictions.csv"
# predict_proba is called on this many patches at a time, so the progress bar moves
# and an .npy memory map is read a block at a time; batches within are batch_size.
PREDICT_CHUNK = 4096
MIN_PATCH_SIZE = 16
_ARCHIVE_NAME = re.compile(r"^(?P<patient>.+?)_idx5_", re.IGNORECASE)
_POSITION = re.compile(
    r"(?:^|[_-])x(?P<x>\d+)[_-]y(?P<y>\d+)(?=[_.-]|$)", re.IGNORECASE
)
PREDICTION_COLUMNS = ("patient", "x", "y", "path", "proba", "predicted")


class CommandError(Exception):
    """A fault found while a command runs: one line on stderr, exit status 1."""


def _command_parser(commands, name: str, run, *, help: str, description: str, epilog):
    parser = commands.add_parser(
        name,
        help=help,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(command_parser=parser, run=run)
    return parser


def _add_quiet(parser, what: str) -> None:
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help=f"no progress bars or messages; {what}",
    )


def _add_inference(parser) -> None:
    group = parser.add_argument_group("prediction")
    group.add_argument(
        "--batch-size",
        type=_positive_int(1),
        metavar="N",
        help="patches per forward pass (default: the model's own)",
    )
    group.add_argument(
        "--tta",
        action="store_true",
        help="test-time augmentation: average the 8 flips and rotations of each "
        "patch (8 times the work)",
    )
    group.add_argument(
        "--device",
        type=_device,
        help="where the network runs: auto, cpu, cuda, cuda:N (default: the device "
        "the model was saved with, or the CPU where that GPU is absent)",
    )


def _add_train(commands) -> None:
    train = _command_parser(
        commands,
        "train",
        _train,
        help="fit a CNN on a folder of patches or the built-in data and save it",
        description=(
            "Fit a CNN on the IDC patches of a folder, the built-in real sample or\n"
            "synthetic patches, holding out whole patients for early stopping, and\n"
            "save it to one safetensors file (idc-sklearn predict and heatmap, and\n"
            "idc_sklearn.load_model, read it). Prints the per-epoch log and a summary."
        ),
        epilog=TRAIN_EXAMPLES,
    )
    data = train.add_argument_group("data")
    data.add_argument(
        "--data",
        metavar="{sample,synthetic,PATH}",
        default=SAMPLE,
        help="'sample': the built-in real sample (2,695 patches of 19 patients); "
        "'synthetic': generated patches; PATH: a folder of the IDC archive "
        "(<patient>/<0|1>/*.png) (default: sample)",
    )
    data.add_argument(
        "--n-patches",
        type=_positive_int(2),
        metavar="N",
        help="train on N patches: drawn in proportion from every patient and class "
        "of real data (seeded by --seed); generated for synthetic data (default: "
        "every patch; "
        f"{DEFAULT_N_PATIENTS * DEFAULT_PATCHES_PER_PATIENT} synthetic ones)",
    )
    data.add_argument(
        "--n-patients",
        type=_positive_int(2),
        metavar="N",
        help=f"synthetic data: number of patients (default: {DEFAULT_N_PATIENTS})",
    )
    data.add_argument(
        "--patch-size",
        type=_positive_int(MIN_PATCH_SIZE),
        metavar="PIXELS",
        help=f"synthetic data: patch side, at least {MIN_PATCH_SIZE} (default: "
        f"{DEFAULT_PATCH_SIZE})",
    )
    model = train.add_argument_group("model")
    model.add_argument(
        "--model",
        choices=CNN_MODELS,
        default=DEFAULT_MODEL,
        help=f"the network (default: {DEFAULT_MODEL})",
    )
    model.add_argument(
        "--preset",
        choices=tuple(NETWORKS),
        default="small",
        help="size of the MLBN networks: 'tiny' (filters "
        f"{','.join(map(str, TINY_FILTERS))}, dense "
        f"{','.join(map(str, TINY_HEAD_UNITS))}) for smoke runs, 'small' (filters "
        f"{','.join(map(str, SMALL_FILTERS))}, dense "
        f"{','.join(map(str, SMALL_HEAD_UNITS))}) for a CPU, 'paper' (the "
        "paper's network, about 34 M parameters, a GPU job); the CNN baselines "
        f"have one size, trained with batch size {SMALL_BATCH_SIZE} except with "
        "'paper' (default: small)",
    )
    model.add_argument(
        "--max-epochs",
        type=_positive_int(1),
        metavar="N",
        help="at most N epochs; early stopping may end sooner (default: "
        f"{DEFAULT_EPOCHS['small']}, {DEFAULT_EPOCHS['paper']} with paper)",
    )
    model.add_argument(
        "--batch-size",
        type=_positive_int(2),
        metavar="N",
        help=f"batch size (default: {SMALL_BATCH_SIZE}; the model's own with paper)",
    )
    model.add_argument(
        "--device",
        type=_device,
        default="auto",
        help="auto (a GPU where present, else the CPU), cpu, cuda, cuda:N "
        "(default: auto)",
    )
    model.add_argument(
        "--seed",
        "--random-state",
        dest="random_state",
        type=int,
        default=0,
        metavar="SEED",
        help="seed of the data drawn and of the model (default: 0)",
    )
    output = train.add_argument_group("output")
    output.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="MODEL.safetensors",
        help="the model file to write (replaced atomically if it exists)",
    )
    output.add_argument(
        "--checkpoint-dir",
        metavar="DIR",
        help="write the training state there after every epoch; run the same "
        "command again to resume after the last complete epoch",
    )
    _add_quiet(output, "no per-epoch log; only the summary is printed")


def _add_predict(commands) -> None:
    predict = _command_parser(
        commands,
        "predict",
        _predict,
        help="predict a folder of PNG patches or an .npy array with a saved model",
        description=(
            "Predict every patch of PATH with the model saved by 'idc-sklearn train'\n"
            "(or idc_sklearn.save_model) and write one CSV row per patch. PATH is a\n"
            "folder of the IDC archive (<patient>/<0|1>/*.png), any folder of PNG\n"
            "patches (searched recursively), or an .npy array of shape\n"
            "(n, height, width, 3) or (n, height*width*3), uint8 or float on the\n"
            "0-255 scale. PNG patches smaller than the model's are padded with zeros\n"
            "at the bottom and right, as load_idc does."
        ),
        epilog=PREDICT_EXAMPLES,
    )
    predict.add_argument("model", metavar="MODEL", help="a saved model file")
    predict.add_argument("path", metavar="PATH", help="a folder of PNG patches or .npy")
    predict.add_argument(
        "-o",
        "--output",
        default=DEFAULT_PREDICTIONS,
        metavar="CSV",
        help=f"the CSV to write, atomically; '-' for stdout (default: "
        f"{DEFAULT_PREDICTIONS})",
    )
    _add_inference(predict)
    _add_quiet(predict, "only errors are printed")


def _add_heatmap(commands) -> None:
    heatmap = _command_parser(
        commands,
        "heatmap",
        _heatmap,
        help="draw a patient's slide with the model's IDC probabilities as a PNG",
        description=(
            "Predict one patient's patches with a saved model and draw the slide\n"
            "rebuilt from them, the IDC probability over it and the true labels\n"
            "beside it (idc_sklearn.plotting.plot_patient_heatmap)."
        ),
        epilog=HEATMAP_EXAMPLES,
    )
    heatmap.add_argument("model", metavar="MODEL", help="a saved model file")
    heatmap.add_argument(
        "--data",
        metavar="{sample,PATH}",
        default=SAMPLE,
        help="'sample': the built-in real sample; PATH: a folder of the IDC archive "
        "(default: sample)",
    )
    heatmap.add_argument("--patient", required=True, metavar="ID", help="patient id")
    heatmap.add_argument(
        "-o", "--output", required=True, metavar="PNG", help="the PNG file to write"
    )
    _add_inference(heatmap)
    _add_quiet(heatmap, "only errors are printed")


def _add_info(commands) -> None:
    info = _command_parser(
        commands,
        "info",
        _info,
        help="versions, the device found and a summary of the data",
        description=(
            "Print the versions of idc_sklearn and its main dependencies, the device\n"
            "training would use (each CUDA GPU with its memory, else the CPU and its\n"
            "threads), whether the built-in sample is installed and, with --data, a\n"
            "summary of a folder of the IDC archive or of the sample."
        ),
        epilog=INFO_EXAMPLES,
    )
    info.add_argument(
        "--data",
        metavar="{sample,PATH}",
        help="also summarise this data: patches, patients, classes, skipped files",
    )
    _add_quiet(info, "no progress bar while reading --data")


@contextlib.contextmanager
def _warnings_as_lines(args):
    """Show each warning once, as one line ``idc-sklearn <command>: warning: ...``."""

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"{PROG} {args.command}: warning: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def _check_output(option: str, path: str) -> Path:
    """Fail before any work where ``path`` cannot be written."""
    target = Path(path).expanduser()
    if target.is_dir():
        raise CommandError(f"{option} {path} is a folder; expected a file name")
    if not target.parent.is_dir():
        raise CommandError(
            f"{option} {path}: the folder {str(target.parent)!r} does not exist"
        )
    return target


def _check_train_args(parser, args) -> None:
    synthetic_only = {"--n-patients": args.n_patients, "--patch-size": args.patch_size}
    given = [option for option, value in synthetic_only.items() if value]
    if given and args.data != SYNTHETIC:
        parser.error(
            f"{given[0]} sets the synthetic data; it cannot be used with --data "
            f"{args.data}"
        )
    n_patients = args.n_patients or DEFAULT_N_PATIENTS
    if args.data == SYNTHETIC and args.n_patches and args.n_patches < n_patients:
        parser.error(
            f"--n-patches {args.n_patches} is fewer than one patch for each of the "
            f"{n_patients} patients (--n-patients)"
        )


def _read_archive(option: str, path: str, quiet: bool, patients=None):
    """``load_idc(path)``, its faults as a CommandError naming ``option``."""
    from idc_sklearn.datasets import load_idc

    try:
        return load_idc(path, patients=patients, progress=not quiet)
    except (OSError, ValueError) as exc:
        raise CommandError(f"{option} {path}: {exc}") from None


def _training_data(args):
    """The Bunch to train on (data, target, groups) and a description of it."""
    if args.data == SYNTHETIC:
        from idc_sklearn.datasets import make_idc_patches

        n_patients = args.n_patients or DEFAULT_N_PATIENTS
        n_patches = args.n_patches or n_patients * DEFAULT_PATCHES_PER_PATIENT
        _say(args, "Generating synthetic patches ...")
        idc = make_idc_patches(
            n_patients=n_patients,
            patches_per_patient=-(-n_patches // n_patients),
            patch_size=args.patch_size or DEFAULT_PATCH_SIZE,
            random_state=args.random_state,
        )
        source = "synthetic patches"
    elif args.data == SAMPLE:
        from idc_sklearn.datasets import load_idc_sample

        idc, source = load_idc_sample(), "the built-in sample"
        n_patches = args.n_patches
    else:
        _say(args, f"Loading the IDC patches of {args.data} ...")
        idc, source = _read_archive("--data", args.data, args.quiet), args.data
        n_patches = args.n_patches
    if n_patches is not None and n_patches < len(idc.target):
        idc = _subsample(idc, n_patches, args.random_state)
    return idc, source


def _best_epoch(history) -> dict | None:
    scored = [epoch for epoch in history if epoch.get("valid_bacc") is not None]
    return max(scored, key=lambda epoch: epoch["valid_bacc"]) if scored else None


def _train(parser, args, argv) -> int:
    _check_train_args(parser, args)
    _check_device(parser, args.device)
    output = _check_output("--output", args.output)
    from idc_sklearn.persistence import save_model

    started = time.perf_counter()
    idc, source = _training_data(args)
    patch_shape = tuple(int(side) for side in idc.data.shape[1:])
    (model,) = _make_models(
        args,
        patch_shape,
        names=[args.model],
        verbose=0 if args.quiet else 1,
        checkpoint_dir=args.checkpoint_dir,
    ).values()
    try:
        model.fit(idc.data, idc.target, groups=idc.groups)
    except (OSError, ValueError) as exc:
        # Data the model refuses, or a checkpoint of another fit (ValueError and
        # FileFormatError), or a checkpoint folder that cannot be written.
        raise CommandError(str(exc)) from None
    save_model(model, output)
    elapsed = time.perf_counter() - started
    n_patients = len(set(idc.groups.tolist()))
    history = model.history_
    best = _best_epoch(history)
    validation = (
        f"best validation balanced accuracy {best['valid_bacc']:.3f} (epoch "
        f"{best['epoch']}, on held-out patients)"
        if best is not None
        else "no validation split"
    )
    print(
        f"Trained {args.model} ({args.preset} preset) on {len(idc.target):,} "
        f"patches of {n_patients} patients ({idc.target.mean():.0%} IDC) from "
        f"{source} for {len(history)} epoch{'s' if len(history) != 1 else ''} on "
        f"{model.device_} in {elapsed:.0f} s; {validation}.\nSaved {output}."
    )
    return 0


def _load_model(parser, path: str, device: str | None):
    """``load_model(path)``, its faults as a CommandError; returns the estimator."""
    from idc_sklearn.persistence import load_model

    file = Path(path).expanduser()
    if not file.exists():
        raise CommandError(f"MODEL {path} does not exist")
    if not file.is_file():
        raise CommandError(f"MODEL {path} is a folder; expected a saved model file")
    if device is not None:
        _check_device(parser, device)
    try:
        return load_model(file, device=device)
    except (OSError, ValueError) as exc:
        raise CommandError(f"MODEL {path}: {exc}") from None


def _final_step(model):
    return model.steps[-1][1] if hasattr(model, "steps") else model


def _set_inference(model, args) -> tuple[int, int, int]:
    """Apply --batch-size and --tta; return the patch shape the model takes."""
    final = _final_step(model)
    prefix = f"{model.steps[-1][0]}__" if hasattr(model, "steps") else ""
    params = {}
    if args.batch_size is not None:
        params[f"{prefix}batch_size"] = args.batch_size
    if args.tta:
        params[f"{prefix}tta"] = True
    model.set_params(**params)
    if len(final.classes_) != 2:
        raise CommandError(
            f"MODEL {args.model} has {len(final.classes_)} classes "
            f"({list(final.classes_)}); expected a model of two (non-IDC, IDC)"
        )
    return tuple(int(side) for side in final.patch_shape)


def _is_archive(folder: Path) -> bool:
    """Whether ``folder`` holds patient folders with 0/ or 1/ class folders."""
    from idc_sklearn.datasets._loader import NESTED_ARCHIVE_DIR

    bases = [folder, folder / NESTED_ARCHIVE_DIR]
    return any(
        (entry / "0").is_dir() or (entry / "1").is_dir()
        for base in bases
        if base.is_dir()
        for entry in base.iterdir()
        if entry.is_dir() and not entry.name.startswith(".")
    )


def _fit_to_model(option: str, path, data, frame, patch_shape):
    """The archive's 50x50 patches as the model's smaller patches, where they fit.

    ``load_idc`` pastes every patch top-left into 50x50 zeros; a model of smaller
    patches gets the same top-left window, so long as every file fits in it.
    """
    height, width, channels = patch_shape
    if data.shape[1:] == patch_shape:
        return data
    largest = (int(frame["height"].max()), int(frame["width"].max()))
    if channels != data.shape[3] or largest[0] > height or largest[1] > width:
        raise CommandError(
            f"{option} {path} holds {largest[1]}x{largest[0]} (width x height) RGB "
            f"patches; the model takes {width}x{height} patches of {channels} "
            "channels"
        )
    return data[:, :height, :width]


def _png_files(folder: Path) -> list[Path]:
    return sorted(
        path
        for path in folder.rglob("*")
        if path.suffix.lower() == ".png"
        and path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )


def _position(name: str) -> tuple[str, int | None, int | None]:
    """Patient, x and y from a patch file's name, where it gives them."""
    patient = _ARCHIVE_NAME.match(name)
    position = _POSITION.search(name)
    return (
        patient["patient"] if patient else "",
        int(position["x"]) if position else None,
        int(position["y"]) if position else None,
    )


def _read_png(file: Path, height: int, width: int):
    """One PNG file as RGB, or None and why it cannot be a patch of the model."""
    import numpy as np
    from PIL import Image

    try:
        with Image.open(file, formats=("PNG",)) as image:
            patch = np.asarray(image.convert("RGB"))
    except (OSError, ValueError) as exc:
        return None, f"cannot be read as a PNG ({type(exc).__name__}: {exc})"
    if patch.shape[0] > height or patch.shape[1] > width:
        return None, (
            f"is {patch.shape[1]}x{patch.shape[0]} (width x height), larger than the "
            f"model's {width}x{height} patches"
        )
    return patch, None


def _read_png_folder(args, folder: Path, patch_shape):
    """Every PNG under ``folder`` as the model's patches, with patient, x, y, path.

    Files that are not patches of the model (unreadable, too large) are left out
    with one warning, as ``load_idc`` leaves out unreadable files.
    """
    import numpy as np
    import pandas as pd
    from tqdm.auto import tqdm

    files = _png_files(Path(os.path.abspath(folder)))
    if not files:
        raise CommandError(
            f"PATH {args.path} holds no PNG patches (searched its subfolders too)"
        )
    height, width, channels = patch_shape
    if channels != 3:
        raise CommandError(
            f"MODEL {args.model} takes patches of {channels} channels; PNG patches "
            "are read as RGB"
        )
    data = np.zeros((len(files), height, width, 3), dtype=np.uint8)
    kept, skipped = [], []
    bar = tqdm(files, desc="reading", unit="file", disable=args.quiet, leave=False)
    for file in bar:
        patch, reason = _read_png(file, height, width)
        if patch is None:
            skipped.append((file, reason))
            continue
        data[len(kept), : patch.shape[0], : patch.shape[1]] = patch
        kept.append(file)
    if skipped:
        example = "e.g. {} {}".format(*skipped[0])
        if not kept:
            raise CommandError(
                f"PATH {args.path}: none of its {len(files)} PNG files is a patch "
                f"of the model, {example}"
            )
        warnings.warn(
            f"left out {len(skipped)} of {len(files)} PNG files under {args.path}, "
            f"{example}",
            UserWarning,
            stacklevel=2,
        )
    positions = [_position(file.name) for file in kept]
    frame = pd.DataFrame(
        {
            "patient": [patient for patient, _, _ in positions],
            "x": pd.array([x for _, x, _ in positions], dtype="Int64"),
            "y": pd.array([y for _, _, y in positions], dtype="Int64"),
            "path": [str(file) for file in kept],
        }
    )
    return data[: len(kept)], frame


def _read_npy(args, file: Path, patch_shape):
    import numpy as np
    import pandas as pd

    from idc_sklearn.patches import check_patches

    with open(file, "rb") as f:
        magic = f.read(6)
    if magic != b"\x93NUMPY":
        raise CommandError(
            f"PATH {args.path} is not a NumPy .npy file (it does not start with "
            "the .npy signature)"
        )
    try:
        X = np.load(file, mmap_mode="r", allow_pickle=False)
        X = check_patches(X, patch_shape, name=f"PATH {args.path}")
    except (OSError, ValueError, TypeError) as exc:
        message = str(exc).rstrip(".")
        if not message.startswith("PATH"):
            message = f"PATH {args.path}: {message}"
        raise CommandError(message) from None
    empty = pd.array([None] * len(X), dtype="Int64")
    frame = pd.DataFrame({"patient": "", "x": empty, "y": empty, "path": ""})
    return X, frame


def _read_patches(args, patch_shape):
    """The patches of PATH as the model takes them, and their patient, x, y, path."""
    path = Path(args.path).expanduser()
    if not path.exists():
        raise CommandError(f"PATH {args.path} does not exist")
    if path.is_file():
        if path.suffix.lower() != ".npy":
            raise CommandError(
                f"PATH {args.path} is a {path.suffix or 'suffix-less'} file; expected "
                "a folder of PNG patches or an .npy array"
            )
        return _read_npy(args, path, patch_shape)
    if _is_archive(path):
        _say(args, f"Loading the IDC patches of {args.path} ...")
        idc = _read_archive("PATH", args.path, args.quiet)
        data = _fit_to_model("PATH", args.path, idc.data, idc.frame, patch_shape)
        return data, idc.frame[["patient", "x", "y", "path"]]
    return _read_png_folder(args, path, patch_shape)


def _predict_proba(model, X, quiet: bool):
    """``model.predict_proba(X)`` a block at a time, with a progress bar."""
    import numpy as np
    from tqdm.auto import tqdm

    blocks = []
    with tqdm(
        total=len(X), desc="predicting", unit="patch", disable=quiet, leave=False
    ) as bar:
        for start in range(0, len(X), PREDICT_CHUNK):
            block = np.asarray(X[start : start + PREDICT_CHUNK])
            blocks.append(model.predict_proba(block))
            bar.update(len(block))
    return np.concatenate(blocks)


def _predict(parser, args, argv) -> int:
    if args.output != "-":
        _check_output("--output", args.output)
    model = _load_model(parser, args.model, args.device)
    patch_shape = _set_inference(model, args)
    X, frame = _read_patches(args, patch_shape)
    proba = _predict_proba(model, X, args.quiet)
    classes = _final_step(model).classes_
    table = frame.reset_index(drop=True).assign(
        proba=proba[:, 1], predicted=classes[proba.argmax(axis=1)]
    )[list(PREDICTION_COLUMNS)]
    if args.output == "-":
        table.to_csv(sys.stdout, index=False)
    else:
        from idc_sklearn._files import atomic_write

        with atomic_write(args.output, "w", newline="") as f:
            table.to_csv(f, index=False)
    n_positive = int((table["predicted"] == classes[1]).sum())
    where = "" if args.output == "-" else f"; wrote {args.output}"
    _say(
        args,
        f"Predicted {len(table):,} patches: {n_positive:,} of class {classes[1]} "
        f"({n_positive / len(table):.0%}){where}.",
    )
    return 0


def _patient_data(args, patch_shape):
    """The patient's rows of --data as a load_idc-style Bunch of the model's patches."""
    from sklearn.utils import Bunch

    if args.data == SAMPLE:
        from idc_sklearn.datasets import load_idc_sample

        idc = load_idc_sample()
        patients = sorted(set(idc.groups.tolist()))
        if args.patient not in patients:
            raise CommandError(
                f"--patient {args.patient} is not in the built-in sample; its "
                f"{len(patients)} patients are {', '.join(patients[:8])}, ..."
            )
        rows = idc.groups == args.patient
        data, frame = idc.data[rows], idc.frame[rows].reset_index(drop=True)
    else:
        _say(args, f"Loading patient {args.patient} of {args.data} ...")
        idc = _read_archive("--data", args.data, args.quiet, patients=[args.patient])
        data, frame = idc.data, idc.frame
    data = _fit_to_model("--data", args.data, data, frame, patch_shape)
    return Bunch(data=data, target=frame["target"].to_numpy(), frame=frame)


def _heatmap(parser, args, argv) -> int:
    if Path(args.output).suffix.lower() != ".png":
        parser.error(f"--output {args.output}: expected a file name ending in .png")
    output = _check_output("--output", args.output)
    model = _load_model(parser, args.model, args.device)
    patch_shape = _set_inference(model, args)
    idc = _patient_data(args, patch_shape)
    proba = _predict_proba(model, idc.data, args.quiet)[:, 1]
    from idc_sklearn.plotting import plot_patient_heatmap

    plot_patient_heatmap(idc, proba, patient=args.patient, path=output)
    _say(
        args,
        f"Drew patient {args.patient} ({len(proba):,} patches, mean IDC probability "
        f"{proba.mean():.2f}); wrote {output}.",
    )
    return 0


def _cpu_name() -> str:
    import subprocess

    with contextlib.suppress(OSError, subprocess.SubprocessError):
        listing = subprocess.run(
            ["lscpu"], capture_output=True, text=True, timeout=5, check=True
        ).stdout
        for line in listing.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Model name":
                return value.strip()
    return platform.processor() or platform.machine()


def _devices() -> list[str]:
    import torch

    lines = []
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            lines.append(
                f"cuda:{index}  {props.name}, {props.total_memory / 2**30:.1f} GiB"
            )
    if torch.backends.mps.is_available():
        lines.append("mps  Apple GPU (Metal)")
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    lines.append(
        f"cpu  {_cpu_name()}, {usable} of {os.cpu_count()} logical CPUs usable, torch "
        f"uses {torch.get_num_threads()} threads"
    )
    default = "cuda" if torch.cuda.is_available() else "cpu"
    lines.append(f"--device auto trains on {default}")
    return lines


def _versions() -> list[tuple[str, str]]:
    from importlib import metadata

    import idc_sklearn

    found = [("idc_sklearn", idc_sklearn.__version__)]
    for name in ("torch", "skorch", "scikit-learn", "numpy", "imbalanced-learn"):
        try:
            found.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            found.append((name, "not installed"))
    found.append(("Python", f"{platform.python_version()} ({sys.executable})"))
    return found


def _sample_file() -> str:
    from importlib import resources

    from idc_sklearn.datasets._sample import SAMPLE_FILE

    file = resources.files("idc_sklearn.datasets") / "data" / SAMPLE_FILE
    if not file.is_file():
        return f"missing ({SAMPLE_FILE}; reinstall idc_sklearn)"
    size = os.path.getsize(str(file))
    return f"present ({SAMPLE_FILE}, {size / 1e6:.1f} MB; --data sample)"


def _data_summary(args) -> list[str]:
    import numpy as np

    if args.data == SAMPLE:
        from idc_sklearn.datasets import load_idc_sample

        idc = load_idc_sample()
    else:
        with warnings.catch_warnings():
            # The skipped files are summarised below instead.
            warnings.simplefilter("ignore", UserWarning)
            idc = _read_archive("--data", args.data, args.quiet)
    frame = idc.frame
    n, n_idc = len(frame), int(idc.target.sum())
    per_patient = frame.groupby("patient")["target"].agg(["size", "mean"])
    full = (frame["height"] == idc.data.shape[1]) & (
        frame["width"] == idc.data.shape[2]
    )
    lines = [
        f"patches   {n:,} of {idc.data.shape[2]}x{idc.data.shape[1]} pixels "
        f"({int((~full).sum()):,} smaller edge patches padded with zeros)",
        f"patients  {len(per_patient)} ({int(per_patient['size'].min())} to "
        f"{int(per_patient['size'].max())} patches each; "
        f"{int(((per_patient['mean'] > 0) & (per_patient['mean'] < 1)).sum())} "
        "with both classes)",
        f"classes   {n_idc:,} IDC ({n_idc / n:.1%}), {n - n_idc:,} non-IDC "
        f"({(n - n_idc) / n:.1%})",
        f"skipped   {len(idc.skipped):,} files",
    ]
    reasons = np.unique([reason for _, reason in idc.skipped], return_counts=True)
    for reason, count in zip(*reasons, strict=True):
        lines.append(f"          {count:,} {reason}")
    return lines


def _info(parser, args, argv) -> int:
    sections = {"versions": [f"{name:<17}{version}" for name, version in _versions()]}
    sections["devices"] = _devices()
    sections["built-in sample"] = [_sample_file()]
    if args.data is not None:
        sections[f"data: {args.data}"] = _data_summary(args)
    for title, lines in sections.items():
        print(f"{title}:")
        for line in lines:
            print(f"  {line}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run ``idc-sklearn`` with ``argv`` (default: the process's arguments).

    Parameters
    ----------
    argv : list of str, default=None
        The arguments after the program name, e.g. ``["compare", "--quiet"]``.

    Returns
    -------
    int
        The exit status: 0 on success and after ``--help``; 2 for invalid
        arguments (after argparse's usage message naming the option); 1 for a
        fault found while running, reported on stderr in one line
        ``idc-sklearn <command>: error: ...``; 130 when interrupted.

    Examples
    --------
    >>> from idc_sklearn.cli import main
    >>> main(["predict", "no-such-model.safetensors", "patches.npy"])
    1
    """
    parser = build_parser()
    command = None
    try:
        args = parser.parse_args(argv)
        command = args.command
        # compare keeps Python's own warning format, as it had before the others.
        lines = command != "compare"
        with _warnings_as_lines(args) if lines else contextlib.nullcontext():
            return args.run(args.command_parser, args, argv)
    except SystemExit as exc:
        # argparse exits on --help and on bad arguments; main reports the status.
        return exc.code if isinstance(exc.code, int) else 1
    except CommandError as exc:
        print(f"{PROG} {command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG} {command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of stdout has gone (``| head``): stop without a traceback, and
        # keep Python's flush at exit from failing on the closed pipe again.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1

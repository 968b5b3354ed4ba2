"""``idc-sklearn compare``: cross-validate the MLBN network against the baselines."""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time

from idc_sklearn.cli._common import (
    DEFAULT_N_PATIENTS,
    DEFAULT_PATCH_SIZE,
    DEFAULT_PATCHES_PER_PATIENT,
    PROG,
    SAMPLE,
    SYNTHETIC,
    CommandError,
    add_n_patients,
    add_training_device,
    check_device,
    positive_int,
    read_archive,
    say,
    subsample,
)
from idc_sklearn.cli._models import (
    DEFAULT_EPOCHS,
    SMALL_BATCH_SIZE,
    make_models,
    model_choices,
    widths,
)

DEFAULT_FOLDS = 3
# The built-in sample is drawn to this many patches and split into this many folds by
# default, so that the README's main command, install included, runs in under 5
# minutes on 2 CPU cores (measured: docs/results.md).
DEFAULT_SAMPLE_PATCHES = 600
DEFAULT_SAMPLE_FOLDS = 2
DEFAULT_OUT = "idc_compare_results"
REPORT = "report.html"


def add_parser(commands) -> None:
    compare = commands.add_parser(
        "compare",
        help="cross-validate the MLBN network against the baselines by patient",
        description=(
            "Cross-validate the MLBN Inception network, its ablation without "
            "multi-level BN, the two CNN baselines of the paper and the handcrafted "
            "feature baselines with folds by patient; print the table and the "
            "paired difference of the MLBN network against the best other model "
            "with its 95% interval, and write comparison.csv, comparison.md, "
            "comparison.png, folds.csv, predictions.csv, patients.csv and "
            "report.html (one self-contained page with every figure; --no-report "
            "skips it). Without --data it runs on the built-in real sample of the "
            "IDC archive and the small preset on a CPU; --n-patches makes a quicker "
            "run."
        ),
    )
    # Errors found after parsing are reported with the usage of "compare".
    compare.set_defaults(command_parser=compare, run=run)
    data = compare.add_argument_group("data")
    data.add_argument(
        "--data",
        metavar="{sample,synthetic,PATH}",
        help="'sample': the built-in real sample of the IDC archive (2,800 patches "
        "of 114 patients); 'synthetic': generated patches, sized by the options "
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
        type=positive_int(2),
        metavar="N",
        help="real data: use N patches drawn at random, in proportion from every "
        "patient and class (seeded by --random-state) (default: "
        f"{DEFAULT_SAMPLE_PATCHES} of the built-in sample, sized for a run of a few "
        "minutes on a CPU; every patch of a PATH)",
    )
    add_n_patients(data)
    data.add_argument(
        "--patches-per-patient",
        type=positive_int(1),
        metavar="N",
        help="synthetic data: patches per patient (default: "
        f"{DEFAULT_PATCHES_PER_PATIENT})",
    )
    data.add_argument(
        "--patch-size",
        type=positive_int(32),
        metavar="PIXELS",
        help=f"synthetic data: patch side, at least 32 (default: {DEFAULT_PATCH_SIZE})",
    )
    models = compare.add_argument_group("models and folds")
    models.add_argument(
        "--models",
        nargs="+",
        metavar="NAME",
        choices=model_choices(),
        help="models to compare (default: all but the two ensembles, "
        "mlbn+features and mlbn+features-mean): %(choices)s",
    )
    models.add_argument(
        "--preset",
        choices=("small", "paper"),
        default="small",
        help=f"network size: 'small' is the MLBN network ({widths('small')}) "
        "for a CPU; 'paper' is the "
        "paper's full network (about 34 M parameters; a GPU job) (default: "
        "small)",
    )
    models.add_argument(
        "--max-epochs",
        type=positive_int(1),
        metavar="N",
        help="epochs of every CNN; early stopping may end sooner (default: "
        f"{DEFAULT_EPOCHS['small']} with the small preset, "
        f"{DEFAULT_EPOCHS['paper']} with paper)",
    )
    models.add_argument(
        "--batch-size",
        type=positive_int(2),
        metavar="N",
        help="batch size of every CNN (default: "
        f"{SMALL_BATCH_SIZE} with the small preset, each model's own with paper)",
    )
    models.add_argument(
        "--folds",
        type=positive_int(2),
        metavar="K",
        help="number of GroupKFold folds by patient (default: "
        f"{DEFAULT_SAMPLE_FOLDS} on the built-in sample, {DEFAULT_FOLDS} otherwise)",
    )
    models.add_argument(
        "--context",
        action="store_true",
        help="score every model in context, as the default pretrained model "
        "predicts: each probability mixed with its neighbours' on the patient's "
        "slide (the patches' x, y), then adapted to each patient's IDC share "
        "(PatientPriorClassifier with the default pretrained model card's strength "
        "and neighbours' weight); models without probabilities (texture-svm) are "
        "left out (default: each patch scored alone)",
    )
    add_training_device(models, "device of the CNNs: ")
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
        "--no-report",
        dest="report",
        action="store_false",
        help="do not write report.html, the page with every figure (the tables, "
        "chart and CSV files are written still)",
    )
    output.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bars or messages; only the table is printed",
    )


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


def _load(args):
    """Return the data Bunch, the cv argument and descriptions of data and folds."""
    # The split files are read first: a mistake there shows before a long load.
    split = _read_split(args)
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
        say(args, f"Loading the IDC patches of {args.data} ...")
        idc = read_archive("--data", args.data, args.quiet)
        source = f"IDC archive {args.data}"
    if args.n_patches is not None and args.n_patches < len(idc.target):
        idc = subsample(idc, args.n_patches, args.random_state)
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
            raise CommandError(
                f"--folds {folds} is more than the {n_patients} patients of --data "
                f"{args.data}"
            )
        return idc, folds, source, f"GroupKFold({folds}) by patient"
    return idc, _restrict_split(args, split, idc.groups), source, None


def _synthetic(args):
    from idc_sklearn.datasets import make_idc_patches

    options = {
        "n_patients": args.n_patients or DEFAULT_N_PATIENTS,
        "patches_per_patient": args.patches_per_patient or DEFAULT_PATCHES_PER_PATIENT,
        "patch_size": args.patch_size or DEFAULT_PATCH_SIZE,
        "random_state": args.random_state,
    }
    say(args, "Generating synthetic patches ...")
    arguments = ", ".join(f"{key}={value}" for key, value in options.items())
    return make_idc_patches(**options), f"synthetic make_idc_patches({arguments})"


def _read_split(args) -> dict[str, list[str]] | None:
    if args.split is None:
        return None
    from idc_sklearn.datasets import read_patient_split

    try:
        return read_patient_split(args.split)
    except (OSError, ValueError) as exc:
        raise CommandError(f"--split {args.split}: {exc}") from None


def _restrict_split(args, split, groups) -> dict[str, list[str]]:
    """The split without the patients --data lacks (a sample of the archive)."""
    present = set(map(str, groups.tolist()))
    kept = {part: [p for p in ids if p in present] for part, ids in split.items()}
    for part, ids in kept.items():
        if not ids:
            raise CommandError(
                f"--split {args.split}: none of the {len(split[part])} {part} "
                f"patients is in --data {args.data}"
            )
    dropped = sum(len(split[part]) - len(kept[part]) for part in split)
    if dropped:
        say(
            args,
            f"{dropped} patients of --split are not in --data and are left out.",
        )
    return kept


def _in_context(args, models: dict, idc):
    """``models`` in :class:`~idc_sklearn.PatientPriorClassifier` with the default
    pretrained model's per-patient settings, the patches' positions, and the words
    that say so; models without ``predict_proba`` are refused by name or left
    out of the default set."""
    from idc_sklearn.pretrained import DEFAULT_PRETRAINED, pretrained_card
    from idc_sklearn.prior_shift import PatientPriorClassifier

    without = [name for name, m in models.items() if not hasattr(m, "predict_proba")]
    if without and args.models is not None:
        raise CommandError(
            f"--context scores probabilities; {', '.join(without)} "
            f"{'has' if len(without) == 1 else 'have'} none (leave "
            f"{'it' if len(without) == 1 else 'them'} out of --models)"
        )
    if without:
        say(args, f"--context: {', '.join(without)} gives no probabilities; left out.")
    prior = pretrained_card(DEFAULT_PRETRAINED)["per_patient"]
    settings = {
        "train_prior": float(prior["train_prior"]),
        "strength": float(prior["strength"]),
        "neighbour_weight": float(prior["neighbour_weight"]),
        "stride": float(prior["stride"]),
    }
    wrapped = {
        name: PatientPriorClassifier(model, **settings)
        for name, model in models.items()
        if name not in without
    }
    frame = getattr(idc, "frame", None)
    coords = None
    if frame is not None and {"x", "y"} <= set(frame.columns):
        coords = frame[["x", "y"]].to_numpy(dtype=float)
    weight = settings["neighbour_weight"]
    where = (
        f"each patch mixed with its neighbours' (weight {weight:g}), then "
        if coords is not None
        else "no positions in the data, so only "
    )
    words = (
        f"in context: {where}adapted to each patient's IDC share (strength "
        f"{settings['strength']:g} patches), as {DEFAULT_PRETRAINED} predicts"
    )
    return wrapped, coords, words


def _machine(device: str) -> str:
    import torch

    from idc_sklearn._device import resolve_device

    resolved = resolve_device(device)
    if resolved.startswith("cuda"):
        resolved = f"{resolved} ({torch.cuda.get_device_name(torch.device(resolved))})"
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, torch {torch.__version__}, "
        f"CNNs on {resolved}"
    )


def _settings(args) -> str:
    n_epochs = args.max_epochs or DEFAULT_EPOCHS[args.preset]
    epochs = f"{n_epochs} epoch{'s' if n_epochs != 1 else ''}"
    if args.preset == "small":
        batch = args.batch_size or SMALL_BATCH_SIZE
        network = (
            f"small preset (MLBN {widths('small')}), every CNN at most "
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


def run(parser, args, argv) -> int:
    """Run ``compare``: usage errors exit 2, faults found while running 1."""
    _check_args(parser, args)
    from idc_sklearn.comparison import compare_models
    from idc_sklearn.report import format_difference, format_table, write_report

    check_device(parser, args.device)
    started = time.perf_counter()
    idc, cv, source, folds = _load(args)
    patch_shape = tuple(int(side) for side in idc.data.shape[1:])
    models = make_models(args, patch_shape)
    coords, context = None, ""
    if args.context:
        models, coords, context = _in_context(args, models, idc)
        context = f"; every model {context}"
    table, details = compare_models(
        models,
        idc.data,
        idc.target,
        idc.groups,
        cv=cv,
        coords=coords,
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
        f"{_settings(args)}{context}. Machine: {_machine(args.device)}; {stamp}; "
        f"{elapsed:.0f} s in all.\n\nCommand: `{command}`"
    )
    paths = write_report(args.out, table, details, description=description)
    if args.report:
        from idc_sklearn.html_report import write_html_report

        paths.append(
            write_html_report(
                paths[0].parent / REPORT,
                table,
                details,
                dataset=idc if hasattr(idc, "frame") else None,
                command=command,
                description=f"{_settings(args)}{context}; {elapsed:.0f} s in all",
            )
        )
    say(args, f"Wrote {', '.join(map(str, paths))} in {elapsed:.0f} s.")
    return 0

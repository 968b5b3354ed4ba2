"""``idc-sklearn train``: fit a CNN on patches and save it to one file."""

from __future__ import annotations

import time

from idc_sklearn.cli._common import (
    DEFAULT_N_PATIENTS,
    DEFAULT_PATCH_SIZE,
    DEFAULT_PATCHES_PER_PATIENT,
    SAMPLE,
    SYNTHETIC,
    CommandError,
    add_n_patients,
    add_quiet,
    add_training_device,
    check_device,
    check_output,
    command_parser,
    positive_int,
    read_archive,
    say,
    subsample,
)
from idc_sklearn.cli._models import (
    CNN_MODELS,
    DEFAULT_EPOCHS,
    NETWORKS,
    SMALL_BATCH_SIZE,
    make_models,
    widths,
)

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
DEFAULT_MODEL = "mlbn-inception"
MIN_PATCH_SIZE = 16


def add_parser(commands) -> None:
    train = command_parser(
        commands,
        "train",
        run,
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
        help="'sample': the built-in real sample (2,800 patches of 114 patients); "
        "'synthetic': generated patches; PATH: a folder of the IDC archive "
        "(<patient>/<0|1>/*.png) (default: sample)",
    )
    data.add_argument(
        "--n-patches",
        type=positive_int(2),
        metavar="N",
        help="train on N patches: drawn in proportion from every patient and class "
        "of real data (seeded by --seed); generated for synthetic data (default: "
        "every patch; "
        f"{DEFAULT_N_PATIENTS * DEFAULT_PATCHES_PER_PATIENT} synthetic ones)",
    )
    add_n_patients(data)
    data.add_argument(
        "--patch-size",
        type=positive_int(MIN_PATCH_SIZE),
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
        help=f"size of the MLBN networks: 'tiny' ({widths('tiny')}) for smoke "
        f"runs, 'small' ({widths('small')}) for a CPU, 'paper' (the "
        "paper's network, about 34 M parameters, a GPU job); the CNN baselines "
        f"have one size, trained with batch size {SMALL_BATCH_SIZE} except with "
        "'paper' (default: small)",
    )
    model.add_argument(
        "--max-epochs",
        type=positive_int(1),
        metavar="N",
        help="at most N epochs; early stopping may end sooner (default: "
        f"{DEFAULT_EPOCHS['small']}, {DEFAULT_EPOCHS['paper']} with paper)",
    )
    model.add_argument(
        "--batch-size",
        type=positive_int(2),
        metavar="N",
        help=f"batch size (default: {SMALL_BATCH_SIZE}; the model's own with paper)",
    )
    add_training_device(model)
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
    add_quiet(output, "no per-epoch log; only the summary is printed")


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


def _training_data(args):
    """The Bunch to train on (data, target, groups) and a description of it."""
    if args.data == SYNTHETIC:
        from idc_sklearn.datasets import make_idc_patches

        n_patients = args.n_patients or DEFAULT_N_PATIENTS
        n_patches = args.n_patches or n_patients * DEFAULT_PATCHES_PER_PATIENT
        say(args, "Generating synthetic patches ...")
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
        say(args, f"Loading the IDC patches of {args.data} ...")
        idc, source = read_archive("--data", args.data, args.quiet), args.data
        n_patches = args.n_patches
    if n_patches is not None and n_patches < len(idc.target):
        idc = subsample(idc, n_patches, args.random_state)
    return idc, source


def _best_epoch(history) -> dict | None:
    scored = [epoch for epoch in history if epoch.get("valid_bacc") is not None]
    return max(scored, key=lambda epoch: epoch["valid_bacc"]) if scored else None


def run(parser, args, argv) -> int:
    """Run ``train``: fit, save, print the summary."""
    _check_train_args(parser, args)
    check_device(parser, args.device)
    output = check_output("--output", args.output)
    from idc_sklearn.persistence import save_model

    started = time.perf_counter()
    idc, source = _training_data(args)
    patch_shape = tuple(int(side) for side in idc.data.shape[1:])
    (model,) = make_models(
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

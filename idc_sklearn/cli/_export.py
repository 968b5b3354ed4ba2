"""``idc-sklearn export``: a saved or pretrained model as a WSInfer model directory."""

from __future__ import annotations

from idc_sklearn._checks import final_step
from idc_sklearn.cli._common import (
    CommandError,
    add_quiet,
    check_output,
    command_parser,
    say,
)
from idc_sklearn.cli._saved_models import model_help, read_model

EXPORT_EXAMPLES = """\
examples:
  idc-sklearn export mlbn-small mlbn-small-wsinfer
  idc-sklearn export mlbn.safetensors qupath-models/mlbn
  idc-sklearn export mlbn.safetensors mlbn-tta --tta

then, with WSInfer (pip install wsinfer):
  wsinfer run --wsi-dir slides/ --results-dir results/ \\
      --config mlbn-small-wsinfer/config.json \\
      --model-path mlbn-small-wsinfer/torchscript_model.pt

or in QuPath: put DIR in the WSInfer extension's user model directory
(Extensions > WSInfer > Additional options); DIR's name is the model's name."""


def add_parser(commands) -> None:
    export = command_parser(
        commands,
        "export",
        run,
        help="write a model as a WSInfer model directory, for WSInfer and QuPath",
        description=(
            "Write the model saved by 'idc-sklearn train' (or\n"
            "idc_sklearn.save_model), or a pretrained model shipped in the package\n"
            "(MODEL mlbn-small), as the model directory that WSInfer and QuPath's\n"
            "WSInfer extension load (idc_sklearn.export_wsinfer):\n"
            "torchscript_model.pt and config.json, patches of the model's size at\n"
            "--target-mpp microns per pixel. A handcrafted baseline has no\n"
            "TorchScript form and is refused."
        ),
        epilog=EXPORT_EXAMPLES,
    )
    export.add_argument("model", metavar="MODEL", help=model_help())
    export.add_argument(
        "directory",
        metavar="DIR",
        help="the model directory to write (created; its parent must exist)",
    )
    export.add_argument(
        "--target-mpp",
        type=float,
        default=4.0,
        metavar="UM",
        help="microns per pixel the model was trained at (default: 4.0, the archive's)",
    )
    export.add_argument(
        "--tta",
        action="store_true",
        help="export the mean of the 8 flips and rotations of each patch (8 times "
        "the work in WSInfer and QuPath)",
    )
    add_quiet(export, "only errors are printed")


def run(parser, args, argv) -> int:
    """Run ``export``: read the model, write the directory."""
    if not args.target_mpp > 0:
        parser.error(f"--target-mpp {args.target_mpp}: expected a positive number")
    directory = check_output("DIR", args.directory, folder=True)
    # The network is traced on the CPU, wherever it was trained.
    model = read_model(parser, args.model, "cpu")
    if args.tta:
        final_step(model).set_params(tta=True)
    from idc_sklearn.wsinfer import CONFIG_FILE, MODEL_FILE, export_wsinfer

    try:
        export_wsinfer(model, directory, target_mpp=args.target_mpp)
    except (TypeError, ValueError) as exc:
        raise CommandError(f"MODEL {args.model}: {exc}") from None
    say(
        args,
        f"Wrote {directory / MODEL_FILE} and {directory / CONFIG_FILE}; run it with\n"
        f"  wsinfer run --wsi-dir SLIDES --results-dir RESULTS "
        f"--config {directory / CONFIG_FILE} --model-path {directory / MODEL_FILE}\n"
        "or put the folder in QuPath's WSInfer user model directory.",
    )
    return 0

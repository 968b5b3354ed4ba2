"""``idc-sklearn heatmap``: a patient's slide with a model's IDC probabilities."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from idc_sklearn.cli._common import (
    SAMPLE,
    CommandError,
    add_quiet,
    check_output,
    command_parser,
    read_archive,
    say,
)
from idc_sklearn.cli._saved_models import (
    add_inference,
    fit_to_model,
    model_help,
    predict_proba,
    read_model,
    set_inference,
)
from idc_sklearn.prior_shift import PatientPriorClassifier

HEATMAP_EXAMPLES = """\
examples:
  idc-sklearn heatmap mlbn.safetensors --patient 8863 --output 8863.png
  idc-sklearn heatmap mlbn-small --data IDC_regular_ps50_idx5 --patient 8864 \\
      --output 8864.png
  idc-sklearn heatmap mlbn.safetensors --data IDC_regular_ps50_idx5 \\
      --patient 10253 --tta --output 10253.png"""


def add_parser(commands) -> None:
    heatmap = command_parser(
        commands,
        "heatmap",
        run,
        help="draw a patient's slide with the model's IDC probabilities as a PNG",
        description=(
            "Predict one patient's patches with a saved model, or a pretrained one\n"
            "shipped in the package (MODEL mlbn-small), and draw the slide rebuilt\n"
            "from them, the IDC probability over it and the true labels beside it\n"
            "(idc_sklearn.plotting.plot_patient_heatmap)."
        ),
        epilog=HEATMAP_EXAMPLES,
    )
    heatmap.add_argument("model", metavar="MODEL", help=model_help())
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
    add_inference(heatmap)
    add_quiet(heatmap, "only errors are printed")


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
        say(args, f"Loading patient {args.patient} of {args.data} ...")
        idc = read_archive("--data", args.data, args.quiet, patients=[args.patient])
        data, frame = idc.data, idc.frame
    data = fit_to_model("--data", args.data, data, frame, patch_shape)
    return Bunch(data=data, target=frame["target"].to_numpy(), frame=frame)


def run(parser, args, argv) -> int:
    """Run ``heatmap``: predict the patient's patches, draw them, write the PNG."""
    if Path(args.output).suffix.lower() != ".png":
        parser.error(f"--output {args.output}: expected a file name ending in .png")
    output = check_output("--output", args.output)
    model = read_model(parser, args.model, args.device)
    patch_shape = set_inference(model, args)
    idc = _patient_data(args, patch_shape)
    proba = predict_proba(model, idc.data, args.quiet)[:, 1]
    if isinstance(model, PatientPriorClassifier):
        # One patient's patches: at its own IDC share, estimated from them, each
        # first mixed with its neighbours where the model has a weight.
        proba, share = model.adapt_proba(
            proba,
            np.zeros(len(proba), dtype=int),
            coords=idc.frame[["x", "y"]].to_numpy(dtype=float),
            return_shares=True,
        )
        done = "Adapted"
        if model.neighbour_weight > 0:
            done = "Mixed each patch with its neighbours, then adapted"
        say(args, f"{done} to the patient's IDC share, estimated {share[0]:.2f}.")
    from idc_sklearn.plotting import plot_patient_heatmap

    plot_patient_heatmap(idc, proba, patient=args.patient, path=output)
    say(
        args,
        f"Drew patient {args.patient} ({len(proba):,} patches, mean IDC probability "
        f"{proba.mean():.2f}); wrote {output}.",
    )
    return 0

"""``idc-sklearn predict``: a CSV of a saved model's probabilities for patches."""

from __future__ import annotations

import os
import re
import sys
import warnings
from pathlib import Path

import numpy as np

from idc_sklearn._checks import final_step
from idc_sklearn.cli._common import (
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
    predicted_classes,
    read_model,
    set_inference,
)
from idc_sklearn.prior_shift import PatientPriorClassifier

PREDICT_EXAMPLES = """\
examples:
  idc-sklearn predict mlbn.safetensors IDC_regular_ps50_idx5/ -o predictions.csv
  idc-sklearn predict mlbn-small IDC_regular_ps50_idx5/ -o predictions.csv
  idc-sklearn predict mlbn.safetensors patches.npy --tta --output - | head
  idc-sklearn predict mlbn.safetensors my_patches/ --batch-size 256

columns of the CSV (one row per patch, in the order read):
  patient, x, y   from the file names (<patient>_idx5_x<X>_y<Y>...); empty if unknown
  path            the PNG file (empty for an .npy array)
  proba           the probability of the model's second class (IDC for 0/1 labels)
  predicted       the predicted label, as the model's predict returns it

A per-patient model (MODEL mlbn-hgb-patient, a PatientPriorClassifier) adapts
each patient's probabilities to that patient's own IDC share, estimated from its
patches in PATH (patients from the file names); IDC above 0.5. MODEL
mlbn-hgb-context first mixes each patch with its neighbours on the patient's
slide, where the file names give every patch's position (x, y)."""
DEFAULT_PREDICTIONS = "predictions.csv"
_ARCHIVE_NAME = re.compile(r"^(?P<patient>.+?)_idx5_", re.IGNORECASE)
_POSITION = re.compile(
    r"(?:^|[_-])x(?P<x>\d+)[_-]y(?P<y>\d+)(?=[_.-]|$)", re.IGNORECASE
)
PREDICTION_COLUMNS = ("patient", "x", "y", "path", "proba", "predicted")


def add_parser(commands) -> None:
    predict = command_parser(
        commands,
        "predict",
        run,
        help="predict a folder of PNG patches or an .npy array with a saved model",
        description=(
            "Predict every patch of PATH with the model saved by 'idc-sklearn train'\n"
            "(or idc_sklearn.save_model), or with a pretrained model shipped in the\n"
            "package (MODEL mlbn-small, as idc_sklearn.load_pretrained loads it), and\n"
            "write one CSV row per patch. PATH is a folder of the IDC archive\n"
            "(<patient>/<0|1>/*.png), any folder of PNG patches (searched\n"
            "recursively), or an .npy array of shape (n, height, width, 3) or\n"
            "(n, height*width*3), uint8 or float on the 0-255 scale. PNG patches\n"
            "smaller than the model's are padded with zeros at the bottom and right,\n"
            "as load_idc does."
        ),
        epilog=PREDICT_EXAMPLES,
    )
    predict.add_argument("model", metavar="MODEL", help=model_help())
    predict.add_argument("path", metavar="PATH", help="a folder of PNG patches or .npy")
    predict.add_argument(
        "-o",
        "--output",
        default=DEFAULT_PREDICTIONS,
        metavar="CSV",
        help=f"the CSV to write, atomically; '-' for stdout (default: "
        f"{DEFAULT_PREDICTIONS})",
    )
    add_inference(predict)
    add_quiet(predict, "only errors are printed")


def _is_archive(folder: Path) -> bool:
    """Whether ``folder`` holds patient folders with 0/ or 1/ class folders."""
    from idc_sklearn.datasets import check_archive_layout

    try:
        check_archive_layout(folder)
    except ValueError:
        return False
    return True


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
    # The archive loader's decoder (16-bit grayscale, palettes, alpha, empty and
    # broken files), here into the model's patch size.
    from idc_sklearn.datasets import read_patch

    data = np.zeros((len(files), height, width, 3), dtype=np.uint8)
    kept, skipped = [], []
    bar = tqdm(files, desc="reading", unit="file", disable=args.quiet, leave=False)
    for file in bar:
        try:
            data[len(kept)] = read_patch(file, patch_size=(height, width))
        except ValueError as exc:
            skipped.append(str(exc).rstrip("."))
            continue
        kept.append(file)
    if skipped:
        example = f"e.g. {skipped[0]}"
        if not kept:
            raise CommandError(
                f"PATH {args.path}: none of its {len(files)} PNG files is a patch "
                f"of the model, {example}"
            )
        warnings.warn(
            f"left out {len(skipped)} of {len(files)} PNG files under {args.path} "
            f"that are not patches of the model's {width}x{height} size, {example}",
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


def _npy_dtype(file: Path):
    """The dtype an .npy file's header declares; None where it cannot be read."""
    from numpy.lib import format as npy

    with open(file, "rb") as f:
        try:
            if npy.read_magic(f)[0] == 1:
                return npy.read_array_header_1_0(f)[2]
            return npy.read_array_header_2_0(f)[2]
        except ValueError:
            # np.load, called next, says what is wrong with the header.
            return None


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
    dtype = _npy_dtype(file)
    if dtype is not None and dtype.hasobject:
        raise CommandError(
            f"PATH {args.path} holds Python objects (dtype {dtype}), which are never "
            "loaded: unpickling them could run code; expected an array of numbers, "
            "uint8 0-255 or float"
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
        say(args, f"Loading the IDC patches of {args.path} ...")
        idc = read_archive("PATH", args.path, args.quiet)
        data = fit_to_model("PATH", args.path, idc.data, idc.frame, patch_shape)
        return data, idc.frame[["patient", "x", "y", "path"]]
    return _read_png_folder(args, path, patch_shape)


def _per_patient(args, model, frame, proba, predicted):
    """A PatientPriorClassifier's ``proba`` and ``predicted`` at each patient's IDC
    share, the patches first mixed with their neighbours where the model has a
    ``neighbour_weight`` and every file name gives its position; as they are where
    a patch's patient is unknown."""
    patients = frame["patient"].to_numpy().astype(str)
    if not len(patients) or (patients == "").any():
        say(
            args,
            "The patients of the patches are unknown (no <patient>_idx5_ file "
            "names): each patch is scored alone, as by the model inside.",
        )
        return proba, predicted
    positions = frame[["x", "y"]]
    known = not positions.isna().to_numpy().any()
    coords = positions.to_numpy(dtype=float) if known else None
    adapted = model.adapt_proba(proba[:, 1], patients, coords=coords)
    shares = f"the IDC share of each of {len(set(patients))} patients, from its patches"
    if model.neighbour_weight == 0:
        say(args, f"Adapted to {shares}.")
    elif known:
        say(
            args,
            "Mixed each patch with its neighbours (positions from the file names), "
            f"then adapted to {shares}.",
        )
    else:
        say(
            args,
            f"Adapted to {shares}; not every file name gives its patch's position "
            "(_x<X>_y<Y>), so no patch was mixed with its neighbours.",
        )
    predicted = model.classes_[(adapted > 0.5).astype(int)]
    return np.column_stack([1 - adapted, adapted]), predicted


def run(parser, args, argv) -> int:
    """Run ``predict``: read the model and PATH, write the CSV."""
    if args.output != "-":
        check_output("--output", args.output)
    model = read_model(parser, args.model, args.device)
    patch_shape = set_inference(model, args)
    X, frame = _read_patches(args, patch_shape)
    proba = predict_proba(model, X, args.quiet)
    classes = final_step(model).classes_
    predicted = predicted_classes(model, proba)
    if isinstance(model, PatientPriorClassifier):
        proba, predicted = _per_patient(args, model, frame, proba, predicted)
    table = frame.reset_index(drop=True).assign(proba=proba[:, 1], predicted=predicted)[
        list(PREDICTION_COLUMNS)
    ]
    if args.output == "-":
        table.to_csv(sys.stdout, index=False)
    else:
        from idc_sklearn._files import atomic_write

        with atomic_write(args.output, "w", newline="") as f:
            table.to_csv(f, index=False)
    n_positive = int((table["predicted"] == classes[1]).sum())
    where = "" if args.output == "-" else f"; wrote {args.output}"
    say(
        args,
        f"Predicted {len(table):,} patches: {n_positive:,} of class {classes[1]} "
        f"({n_positive / len(table):.0%}){where}.",
    )
    return 0

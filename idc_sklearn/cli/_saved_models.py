"""The saved or pretrained model that ``predict``, ``heatmap`` and ``slide`` read.

MODEL read as a file or a pretrained name, the prediction options set on it, and
the model applied to patches a block at a time.
"""

from __future__ import annotations

from pathlib import Path

from idc_sklearn._checks import final_step, patch_networks
from idc_sklearn.cli._common import (
    CommandError,
    check_device,
    device_name,
    positive_int,
)
from idc_sklearn.prior_shift import decision_threshold

# predict_proba is called on this many patches at a time, so the progress bar moves
# and an .npy memory map is read a block at a time; batches within are batch_size.
PREDICT_CHUNK = 4096


def add_inference(parser) -> None:
    """The options of prediction: --batch-size, --tta, --compile, --device."""
    group = parser.add_argument_group("prediction")
    group.add_argument(
        "--batch-size",
        type=positive_int(1),
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
        "--compile",
        action="store_true",
        help="compile the network with torch.compile, weights frozen: faster on "
        "many patches (1.4x the paper network on 2 CPU cores) after a compile of "
        "up to a minute; on the CPU it needs a C++ compiler",
    )
    group.add_argument(
        "--device",
        type=device_name,
        help="where the network runs: auto, cpu, cuda, cuda:N (default: the device "
        "the model was saved with, or the CPU where that GPU is absent; auto for a "
        "pretrained model)",
    )


def model_help() -> str:
    """The help of MODEL: a file, or the name of a pretrained model."""
    from idc_sklearn.pretrained import PRETRAINED

    return (
        "a saved model file, or the name of a pretrained model shipped in the "
        f"package ({', '.join(sorted(PRETRAINED))}) where no such file exists"
    )


def read_model(parser, path: str, device: str | None):
    """The model MODEL names, its faults as a CommandError; returns the estimator.

    An existing file is read with ``load_model``; otherwise a name of
    ``PRETRAINED`` is read with ``load_pretrained``.
    """
    from idc_sklearn.pretrained import PRETRAINED

    file = Path(path).expanduser()
    pretrained = not file.is_file() and path in PRETRAINED
    if not file.exists() and not pretrained:
        raise CommandError(
            f"MODEL {path} does not exist, and is not the name of a pretrained "
            f"model ({', '.join(sorted(PRETRAINED))})"
        )
    if not file.is_file() and not pretrained:
        raise CommandError(f"MODEL {path} is a folder; expected a saved model file")
    if device is not None:
        check_device(parser, device)
    try:
        if pretrained:
            from idc_sklearn.pretrained import load_pretrained

            return load_pretrained(path, device="auto" if device is None else device)
        from idc_sklearn.persistence import load_model

        return load_model(file, device=device)
    except (OSError, ValueError) as exc:
        raise CommandError(f"MODEL {path}: {exc}") from None


def set_inference(model, args) -> tuple[int, int, int]:
    """Apply --batch-size, --tta and --compile to each network of the model (a
    pretrained ensemble holds several models); return its patch shape."""
    params = {}
    if args.batch_size is not None:
        params["batch_size"] = args.batch_size
    if args.tta:
        params["tta"] = True
    if args.compile:
        params["inference"] = "compile"
    networks = patch_networks(model)
    for network in networks:
        network.set_params(**params)
    classes = final_step(model).classes_
    if len(classes) != 2:
        raise CommandError(
            f"MODEL {args.model} has {len(classes)} classes "
            f"({list(classes)}); expected a model of two (non-IDC, IDC)"
        )
    return tuple(int(side) for side in networks[0].patch_shape)


def predicted_classes(model, proba):
    """The classes ``model.predict`` would give, from its ``predict_proba``: at its
    ``threshold`` where it has one (a pretrained model chosen by
    cross-validation), else the likelier class."""
    classes = final_step(model).classes_
    threshold = decision_threshold(model)
    if threshold is not None:
        return classes[(proba[:, 1] >= threshold).astype(int)]
    return classes[proba.argmax(axis=1)]


def fit_to_model(option: str, path, data, frame, patch_shape):
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


def predict_proba(model, X, quiet: bool):
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

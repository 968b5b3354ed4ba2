"""What every command shares: argument types, faults, messages and data loading.

Nothing heavy is imported here at module level: ``--help`` loads this module.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import warnings
from pathlib import Path

from idc_sklearn._checks import check_output_path
from idc_sklearn._device import DEVICE_NAMES, absent_device, is_device_name

PROG = "idc-sklearn"
# --data names the built-in data by these words, anything else is a folder.
SAMPLE, SYNTHETIC = "sample", "synthetic"
DEFAULT_N_PATIENTS = 12
DEFAULT_PATCHES_PER_PATIENT = 60
DEFAULT_PATCH_SIZE = 50


class CommandError(Exception):
    """A fault found while a command runs: one line on stderr, exit status 1."""


# --- argument types and parsers ---------------------------------------------------


def positive_int(minimum: int):
    """An argparse type: an integer of at least ``minimum``."""

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


def device_name(text: str) -> str:
    """An argparse type: one of the device names of ``idc_sklearn._device``."""
    if not is_device_name(text):
        raise argparse.ArgumentTypeError(f"expected {DEVICE_NAMES}; got {text!r}")
    return text


def command_parser(commands, name: str, run, *, help: str, description: str, epilog):
    """A subcommand's parser whose ``args.run`` is ``run``, with examples after."""
    parser = commands.add_parser(
        name,
        help=help,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # Errors found after parsing are reported with the usage of the command.
    parser.set_defaults(command_parser=parser, run=run)
    return parser


def add_quiet(parser, what: str) -> None:
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help=f"no progress bars or messages; {what}",
    )


def add_n_patients(group) -> None:
    group.add_argument(
        "--n-patients",
        type=positive_int(2),
        metavar="N",
        help=f"synthetic data: number of patients (default: {DEFAULT_N_PATIENTS})",
    )


def add_training_device(group, what: str = "") -> None:
    """--device of the models a command trains; ``what`` starts its help."""
    group.add_argument(
        "--device",
        type=device_name,
        default="auto",
        help=f"{what}auto (a GPU where present, else the CPU), cpu, cuda, cuda:N "
        "(default: auto)",
    )


# --- messages -----------------------------------------------------------------------


def say(args, message: str) -> None:
    """``message`` on stderr, unless ``--quiet``."""
    if not args.quiet:
        print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def warnings_as_lines(args):
    """Show each warning once, as one line ``idc-sklearn <command>: warning: ...``."""

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"{PROG} {args.command}: warning: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


# --- checks made before any work ----------------------------------------------------


def check_output(option: str, path: str, *, folder: bool = False) -> Path:
    """Fail before any work where ``path`` cannot be written.

    ``path`` names a file, or with ``folder`` a folder that may not exist yet.
    The library's check of an output path, in the words of the command line: the
    path as typed, and a CommandError.
    """
    target = Path(path).expanduser()
    if folder and target.exists() and not target.is_dir():
        raise CommandError(f"{option} {path} is a file; expected a folder")
    if not folder and target.is_dir():
        raise CommandError(f"{option} {path} is a folder; expected a file name")
    try:
        return check_output_path(target, option)
    except FileNotFoundError:
        raise CommandError(
            f"{option} {path}: the folder {str(target.parent)!r} does not exist"
        ) from None


def check_device(parser, device: str) -> None:
    """Fail before any work where the requested device is absent (a usage error)."""
    why = absent_device(device)
    if why is not None:
        parser.error(f"--device {device}: {why}; use --device cpu or auto")


# --- data ---------------------------------------------------------------------------


def read_archive(option: str, path: str, quiet: bool, patients=None):
    """``load_idc(path)``, its faults as a CommandError naming ``option``."""
    from idc_sklearn.datasets import load_idc

    try:
        return load_idc(path, patients=patients, progress=not quiet)
    except (OSError, ValueError) as exc:
        raise CommandError(f"{option} {path}: {exc}") from None


def subsample(idc, n: int, seed: int):
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
    kept = Bunch(data=idc.data[keep], target=idc.target[keep], groups=idc.groups[keep])
    frame = getattr(idc, "frame", None)
    if frame is not None:
        # The patches' coordinates, for the report's slide heatmaps.
        kept.frame = frame.iloc[keep].reset_index(drop=True)
    return kept

"""The ``idc-sklearn`` command line: compare, train, predict, heatmap, slide, export,
info.

This module holds the parser and the dispatch; each command lives in a module of
its own (``_compare``, ``_train``, ``_predict``, ``_heatmap``, ``_slide``,
``_export``, ``_info``) with an ``add_parser(commands)`` and a ``run(parser,
args, argv)``, and what they share in ``_common`` (argument types,
:class:`CommandError`, messages, data loading), ``_models`` (the presets) and
``_saved_models`` (the saved or pretrained model that predict, heatmap, slide and
export read and apply to patches).
Heavy modules (torch, the estimators, the data loaders) are imported inside
``run``, once the arguments are parsed, so ``--help`` and argument errors answer
quickly.

Exit statuses: 0 on success; 2 for invalid arguments (argparse's usage message
naming the option); 1 for a fault found while running (a missing file or folder, a
file that is not a model, patches of the wrong shape, an unknown patient), reported
as one line ``idc-sklearn <command>: error: ...`` on stderr, without a traceback;
130 when interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys

from idc_sklearn.cli import _compare, _export, _heatmap, _info, _predict, _slide, _train
from idc_sklearn.cli._common import PROG, CommandError, warnings_as_lines

__all__ = ["CommandError", "build_parser", "main"]

# In the order --help lists them.
COMMANDS = (_compare, _train, _predict, _heatmap, _slide, _export, _info)

MAIN_EXAMPLES = """\
examples:
  idc-sklearn info
  idc-sklearn train --output mlbn.safetensors
  idc-sklearn predict mlbn.safetensors IDC_regular_ps50_idx5/ --output predictions.csv
  idc-sklearn heatmap mlbn.safetensors --data sample --patient 8863 --output slide.png
  idc-sklearn slide mlbn-small slide.svs --output idc_slides
  idc-sklearn export mlbn-small mlbn-small-wsinfer
  idc-sklearn compare --n-patches 300

Run 'idc-sklearn COMMAND --help' for a command's options."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``idc-sklearn`` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="The MLBN Inception network for IDC patches, and its baselines.",
        epilog=MAIN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


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
        with warnings_as_lines(args) if lines else contextlib.nullcontext():
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

"""``idc-sklearn info``: versions, the device found and a summary of the data."""

from __future__ import annotations

import os
import platform
import sys
import warnings

from idc_sklearn._machine import cpu_name
from idc_sklearn.cli._common import SAMPLE, add_quiet, command_parser, read_archive

INFO_EXAMPLES = """\
examples:
  idc-sklearn info
  idc-sklearn info --data IDC_regular_ps50_idx5"""


def add_parser(commands) -> None:
    info = command_parser(
        commands,
        "info",
        run,
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
    add_quiet(info, "no progress bar while reading --data")


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
        f"cpu  {cpu_name()}, {usable} of {os.cpu_count()} logical CPUs usable, torch "
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
    from idc_sklearn.datasets import idc_sample_file

    file = idc_sample_file()
    if not file.is_file():
        return f"missing ({file.name}; reinstall idc_sklearn)"
    size = os.path.getsize(str(file))
    return f"present ({file.name}, {size / 1e6:.1f} MB; --data sample)"


def _data_summary(args) -> list[str]:
    import numpy as np

    if args.data == SAMPLE:
        from idc_sklearn.datasets import load_idc_sample

        idc = load_idc_sample()
    else:
        with warnings.catch_warnings():
            # The skipped files are summarised below instead.
            warnings.simplefilter("ignore", UserWarning)
            idc = read_archive("--data", args.data, args.quiet)
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


def run(parser, args, argv) -> int:
    """Run ``info``: print each section."""
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

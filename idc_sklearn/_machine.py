"""What the machine is, for the command line's ``info`` and the report's footer.

Nothing here loads torch: the report is written without it.
"""

from __future__ import annotations

import contextlib
import functools
import platform
import subprocess

__all__ = ["cpu_name"]


@functools.cache
def cpu_name() -> str:
    """The CPU's model name, as ``lscpu`` gives it.

    Where ``lscpu`` is absent or fails, what :mod:`platform` knows of the
    processor.
    """
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        listing = subprocess.run(
            ["lscpu"], capture_output=True, text=True, timeout=5, check=True
        ).stdout
        for line in listing.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Model name":
                return value.strip()
    return platform.processor() or platform.machine()

"""Devices by name: ``"auto"`` resolved, every device check, seeded generators.

The estimators' ``device`` and the command line's ``--device`` are checked here:
the names known (:func:`is_device_name`), and whether the device asked for is on
this machine (:func:`absent_device`, :func:`check_device`). :func:`resolve_device`
turns ``"auto"`` into CUDA where present, else the CPU; :func:`seeded` seeds
torch's generators on a device from a ``random_state``.

The estimators keep two names (see :class:`~idc_sklearn.PatchNetClassifier`):
``device``, the parameter as given (``"auto"`` stays ``"auto"`` wherever the model
goes), and ``device_``, the device the model lives on, resolved when it is
initialised.
"""

from __future__ import annotations

import contextlib
import numbers
import re

__all__ = [
    "DEVICE_NAMES",
    "absent_device",
    "check_device",
    "has_bfloat16_units",
    "is_device_name",
    "resolve_device",
    "seeded",
]

# torch is imported inside the functions: the command line checks its --device
# option with this module before it loads torch.
#: The devices by name, as the command line's ``--device`` takes them; the
#: estimators' ``device`` also takes a ``torch.device``.
DEVICE_NAMES = "auto, cpu, cuda, cuda:<index> or mps"
_DEVICE_NAME = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


def is_device_name(text) -> bool:
    """Whether ``text`` is one of :data:`DEVICE_NAMES` (checked without torch)."""
    return isinstance(text, str) and _DEVICE_NAME.fullmatch(text) is not None


def resolve_device(device) -> str:
    """Turn ``"auto"`` into ``"cuda"`` where a GPU is present, else ``"cpu"``."""
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def has_bfloat16_units(device_type: str) -> bool:
    """Whether ``device_type`` computes bfloat16 natively, so autocast to it pays.

    CUDA: the GPU supports bfloat16 (Ampere and later). CPU: it has AMX tiles or
    AVX-512 BF16 (Intel Xeon since Cooper Lake and Sapphire Rapids, AMD Zen 4 and
    later). Elsewhere bfloat16 is emulated: measured 4x slower than float32 on an AMD
    EPYC without either (docs/benchmarks.md).
    """
    import torch

    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device_type == "cpu":
        # torch.cpu's CPUID checks are private: a torch without them counts as none.
        checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
        return any(getattr(torch.cpu, name, lambda: False)() for name in checks)
    return False


def absent_device(device) -> str | None:
    """Why ``device`` is not on this machine, or None where it is.

    ``device`` is ``"auto"`` (always present) or a name or ``torch.device`` that
    torch parses. A CUDA device beyond the GPUs torch sees and ``"mps"`` where
    Apple's GPU is not available are absent.
    """
    if device == "auto":
        return None
    import torch

    parsed = torch.device(device)
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (parsed.index or 0) >= count:
            return f"this machine has {count} CUDA GPU(s)"
    elif parsed.type == "mps" and not torch.backends.mps.is_available():
        return "MPS (Apple's GPU) is not available on this machine"
    return None


def check_device(device) -> None:
    """Raise a ValueError naming ``device`` unless torch parses it and it is here."""
    if device == "auto":
        return
    import torch

    try:
        torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            'device must be "auto", "cpu", "cuda", "cuda:<index>", "mps" or a '
            f"torch.device; got {device!r}."
        ) from exc
    why = absent_device(device)
    if why is not None:
        raise ValueError(
            f"device={device!r} asks for a device this machine does not have: "
            f'{why}. Use device="auto" (CUDA where present, else the CPU) or "cpu".'
        )


@contextlib.contextmanager
def seeded(random_state, device):
    """Seed torch's generators (CPU, and ``device``'s GPU) from ``random_state``.

    The generators are forked: the caller's global random state is as it was
    afterwards. None seeds nothing; an int seeds with itself; a RandomState
    instance draws the seed.
    """
    if random_state is None:
        yield
        return
    import torch
    from sklearn.utils import check_random_state

    if isinstance(random_state, numbers.Integral):
        seed = int(random_state)
    else:
        seed = int(check_random_state(random_state).randint(2**31 - 1))
    device = torch.device(device)
    cuda = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        yield

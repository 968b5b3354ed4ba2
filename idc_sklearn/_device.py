"""The ``device="auto"`` parameter of the CNN estimators, and every device check.

The estimators' ``device`` and the command line's ``--device`` are checked here:
the names known (:func:`is_device_name`), and whether the device asked for is on
this machine (:func:`absent_device`, :func:`check_device`).

Two names, two meanings:

- ``device`` is the *parameter*, what the user asked for: ``"auto"``, ``"cpu"``,
  ``"cuda"``, ``"cuda:1"`` or a ``torch.device``. ``get_params``, ``clone`` and
  pickles keep it as given, so a model built with ``"auto"`` stays ``"auto"``
  wherever it goes.
- ``device_`` is the *fitted attribute*, the device the model lives on: ``"auto"``
  resolved when the estimator is initialised (CUDA where present, else the CPU).

skorch reads ``self.device`` everywhere it moves tensors, so the ``device``
property answers ``device_`` once there is one and the parameter before. A model
pickled on a GPU and loaded where none is present lands on the CPU (skorch maps
the tensors and warns); ``device_`` then says ``"cpu"`` and ``device`` keeps
``"auto"``.
"""

from __future__ import annotations

import contextlib
import functools
import numbers
import re

__all__ = [
    "DEVICE_NAMES",
    "AutoDeviceMixin",
    "absent_device",
    "check_device",
    "cpu_name",
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


@functools.cache
def cpu_name() -> str:
    """The CPU's model name, as ``lscpu`` gives it (without torch).

    Where ``lscpu`` is absent or fails, what :mod:`platform` knows of the
    processor.
    """
    import platform
    import subprocess

    with contextlib.suppress(OSError, subprocess.SubprocessError):
        listing = subprocess.run(
            ["lscpu"], capture_output=True, text=True, timeout=5, check=True
        ).stdout
        for line in listing.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Model name":
                return value.strip()
    return platform.processor() or platform.machine()


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


class AutoDeviceMixin:
    """``device`` as the parameter, ``device_`` as the resolved device (skorch nets).

    ``_seeded()`` seeds the generators of that device from the net's
    ``random_state`` (see :func:`seeded`).
    """

    @property
    def device(self):
        return self.__dict__.get("device_", self.__dict__.get("device"))

    @device.setter
    def device(self, value):
        self.__dict__["device"] = value
        if getattr(self, "initialized_", False):
            self.__dict__["device_"] = resolve_device(value)
            self.module_.to(self.device_)
            self.criterion_.to(self.device_)
        else:
            self.__dict__.pop("device_", None)

    def _resolve_device(self) -> None:
        """Set ``device_`` from the parameter; called when the net is initialised."""
        self.__dict__["device_"] = resolve_device(self.__dict__["device"])

    def _seeded(self):
        """``random_state``'s seed on torch's generators, restored after."""
        device = self.__dict__.get("device_") or resolve_device(self.__dict__["device"])
        return seeded(self.random_state, device)

    def get_params(self, deep=True, **kwargs):
        params = super().get_params(deep=deep, **kwargs)
        params["device"] = self.__dict__["device"]
        return params

    def __setstate__(self, state):
        requested = state["device"]
        state["device"] = state.get("device_", resolve_device(requested))
        # skorch maps CUDA tensors to the CPU where no GPU is present (with a
        # DeviceWarning) and stores the device it used as "device".
        super().__setstate__(state)
        used = str(self.__dict__["device"])
        self.__dict__["device_"] = used
        self.__dict__["device"] = "auto" if requested == "auto" else used


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

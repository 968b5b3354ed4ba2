"""Files that are never half-written and never run code: atomic writes, tensor files.

:func:`atomic_write` is how every file of the library that matters is written (model
files, checkpoints, the dataset cache, report files): under a temporary name in the
same folder, flushed to disk, then renamed over the target in one step, so a crash or
a full disk leaves either the old file or the new one, never a torn one.

:func:`save_tensors` and :func:`load_tensors` keep named arrays and a JSON document
in one `safetensors <https://github.com/huggingface/safetensors>`_ file. That format
holds raw tensor bytes behind a JSON header and nothing executable, so reading a file
from elsewhere cannot run code (pickle, and so ``torch.load`` of a full model, can).
A SHA-256 checksum over the tensors and the document, kept in the header, catches a
truncated or corrupted file. torch is imported only by these two functions: the
dataset cache uses :func:`atomic_write` and stays free of torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import struct
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

from idc_sklearn._checks import check_output_path, check_path

__all__ = [
    "ChecksumWriter",
    "FileFormatError",
    "atomic_write",
    "file_checksum",
    "load_tensors",
    "save_tensors",
]

TENSORS_FORMAT = "idc_sklearn.tensors"
TENSORS_FORMAT_VERSION = 1
# Large files (the dataset cache) are checksummed in blocks of this size.
_BLOCK = 1 << 24
# Leading bytes of formats a model file is often confused with, for the message.
_KNOWN_SIGNATURES = (
    (b"\x80", "a Python pickle"),
    (b"PK\x03\x04", "a zip archive, as torch.save writes"),
    (b"\x93NUMPY", "a NumPy .npy file"),
    (b"\x89HDF", "an HDF5 file"),
)


class FileFormatError(ValueError):
    """A file is not what it should be: not safetensors, truncated or corrupted.

    Raised by :func:`~idc_sklearn.load_model` and the other readers of the
    library's files, with a message that names the file and what is wrong with it.
    A subclass of :class:`ValueError`.
    """


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable, where the OS lets a folder be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_write(
    path: str | os.PathLike,
    mode: str = "wb",
    *,
    encoding: str | None = None,
    newline: str | None = None,
) -> Iterator[IO]:
    """Write ``path`` all at once or not at all.

    Yields a file open under a temporary name in ``path``'s folder; when the block
    ends, the file is flushed and synced to disk and renamed onto ``path`` (an atomic
    replacement on POSIX and Windows), then the folder is synced where the OS allows.
    If the block raises, the temporary file is removed and ``path`` is untouched.

    Parameters
    ----------
    path : str or path-like
        The file to write; its folder must exist.
    mode : {"wb", "w"}, default="wb"
        Binary or text.
    encoding, newline : str, optional
        As for :func:`open`, in text mode (``encoding`` defaults to UTF-8 there).

    Yields
    ------
    file object

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_write(folder / "notes.txt", "w") as f:
    ...     _ = f.write("all or nothing")
    >>> (folder / "notes.txt").read_text()
    'all or nothing'
    >>> sorted(p.name for p in folder.iterdir())  # no temporary file is left
    ['notes.txt']
    """
    path = check_output_path(
        path,
        expected="a str or path-like",
        no_folder="cannot write {path!r}: the folder {folder!r} does not exist.",
    )
    if mode not in ("wb", "w"):
        raise ValueError(f'mode must be "wb" or "w"; got {mode!r}.')
    if mode == "w" and encoding is None:
        encoding = "utf-8"
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    # os.open with O_EXCL, unlike tempfile.mkstemp, lets the umask set the
    # permissions, so the file gets those a plain open() would give it.
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, mode, encoding=encoding, newline=newline) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _fsync_folder(path.parent)


class ChecksumWriter:
    """Wrap a binary file; keep the size and CRC-32 of everything written to it.

    CRC-32 rather than SHA-256 for the large local files (the dataset cache): it
    detects truncation and flipped bits, and at about 1.3 GB/s (zlib, one core)
    against 0.7 GB/s it keeps the check of a 2 GB cache to seconds.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "blob"
    >>> with open(path, "wb") as f:
    ...     writer = ChecksumWriter(f)
    ...     _ = writer.write(b"patches")
    >>> writer.checksum() == file_checksum(path)
    True
    """

    def __init__(self, file: IO[bytes]) -> None:
        self.file = file
        self.size = 0
        self.crc32 = 0

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        self.size += view.nbytes
        self.crc32 = zlib.crc32(view, self.crc32)
        return self.file.write(data)

    def checksum(self) -> dict[str, int]:
        """``{"size": bytes written, "crc32": their CRC-32}``."""
        return {"size": self.size, "crc32": self.crc32}


def file_checksum(path: str | os.PathLike) -> dict[str, int]:
    """The size and CRC-32 of a file, as :meth:`ChecksumWriter.checksum` gives them."""
    size, crc = 0, 0
    with open(path, "rb") as f:
        while block := f.read(_BLOCK):
            size += len(block)
            crc = zlib.crc32(block, crc)
    return {"size": size, "crc32": crc}


def _digest(document: str, tensors: Mapping[str, Any]) -> str:
    """SHA-256 of the document and of every tensor's name, dtype, shape and bytes."""
    import torch

    digest = hashlib.sha256()
    digest.update(document.encode("utf-8"))
    for name in sorted(tensors):
        tensor = tensors[name]
        digest.update(f"\0{name}\0{tensor.dtype}\0{list(tensor.shape)}\0".encode())
        if tensor.numel():
            # Every dtype, bfloat16 included, is hashed as its raw bytes.
            raw = tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8)
            digest.update(raw.numpy().data)
    return digest.hexdigest()


def _as_tensors(tensors: Mapping[str, Any]) -> dict:
    import numpy as np
    import torch

    if not isinstance(tensors, Mapping):
        raise TypeError(
            "tensors must be a dict of name to numpy array or torch tensor; "
            f"got {type(tensors).__name__}."
        )
    out = {}
    for name, value in tensors.items():
        if not isinstance(name, str):
            raise TypeError(f"tensor names must be str; got {name!r}.")
        if isinstance(value, np.ndarray):
            if value.dtype.kind not in "biufc":
                raise TypeError(
                    f"tensor {name!r} has dtype {value.dtype}; only booleans and "
                    "numbers are stored as tensors."
                )
            native = value.dtype.newbyteorder("=")
            value = torch.from_numpy(np.asarray(value, dtype=native, order="C"))
        elif not isinstance(value, torch.Tensor):
            raise TypeError(
                f"tensor {name!r} must be a numpy array or torch tensor; "
                f"got {type(value).__name__}."
            )
        # safetensors refuses tensors that share memory; copies of the weights do not.
        out[name] = value.detach().to("cpu", copy=True).contiguous()
    return out


def save_tensors(
    path: str | os.PathLike,
    tensors: Mapping[str, Any],
    metadata: Mapping[str, Any],
) -> None:
    """Write named tensors and a JSON document to one safetensors file, atomically.

    Parameters
    ----------
    path : str or path-like
        The file; conventionally ``*.safetensors``. Replaced if it exists.
    tensors : dict of str to numpy.ndarray or torch.Tensor
        Numeric or boolean arrays, on any device (stored from the CPU).
    metadata : dict
        Anything :func:`json.dumps` accepts; stored in the file's header.

    See Also
    --------
    load_tensors : Read the file back, verifying its checksum.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "arrays.safetensors"
    >>> save_tensors(path, {"mean": np.arange(3.0)}, {"note": "a mean"})
    >>> tensors, metadata = load_tensors(path)
    >>> tensors["mean"].tolist(), metadata
    ([0.0, 1.0, 2.0], {'note': 'a mean'})
    """
    from safetensors.torch import save

    path = check_path(path)
    tensors = _as_tensors(tensors)
    try:
        document = json.dumps(metadata, allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"metadata must be JSON-serialisable (no NaN or infinity); {exc}"
        ) from exc
    header = {
        "format": TENSORS_FORMAT,
        "format_version": str(TENSORS_FORMAT_VERSION),
        "metadata": document,
        "sha256": _digest(document, tensors),
    }
    payload = save(tensors, metadata=header)
    with atomic_write(path) as f:
        f.write(payload)


def _describe_start(data: bytes) -> str:
    for signature, what in _KNOWN_SIGNATURES:
        if data.startswith(signature):
            return f" It looks like {what}, which is never loaded: it could run code."
    return ""


def load_tensors(path: str | os.PathLike, *, device: str = "cpu") -> tuple[dict, dict]:
    """Read a file written by :func:`save_tensors`; never runs code from it.

    Parameters
    ----------
    path : str or path-like
    device : str or torch.device, default="cpu"
        Where the tensors are put.

    Returns
    -------
    tensors : dict of str to torch.Tensor
    metadata : dict
        The JSON document given to :func:`save_tensors`.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    FileFormatError
        If the file is not a safetensors file (a pickle, a ``torch.save`` archive,
        anything else), is truncated, has a header whose sizes or offsets do not
        match its contents, was not written by :func:`save_tensors`, or its
        checksum does not match (it was corrupted or modified). The message names
        the file and the fault.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load

    path = check_path(path)
    if not path.exists():
        raise FileNotFoundError(f"path={str(path)!r} does not exist.")
    if path.is_dir():
        raise IsADirectoryError(f"path={str(path)!r} is a folder, not a file.")
    data = path.read_bytes()

    def invalid(problem: str) -> FileFormatError:
        return FileFormatError(f"{str(path)!r} {problem}")

    try:
        tensors = load(data)
    except SafetensorError as exc:
        reason = str(exc).removeprefix("Error while deserializing: ")
        raise invalid(
            f"is not a valid safetensors file ({len(data)} bytes; {reason})."
            + _describe_start(data)
        ) from None
    # safetensors has validated the header; only its string metadata is read here.
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + size]).get("__metadata__") or {}
    if header.get("format") != TENSORS_FORMAT:
        raise invalid(
            f"is a safetensors file but not one written by idc_sklearn: its header "
            f"has format={header.get('format')!r}, expected {TENSORS_FORMAT!r}."
        )
    version = header.get("format_version")
    if version != str(TENSORS_FORMAT_VERSION):
        raise invalid(
            f"has format version {version!r}; this idc_sklearn reads version "
            f"{TENSORS_FORMAT_VERSION}."
        )
    document = header.get("metadata")
    if not isinstance(document, str) or _digest(document, tensors) != header.get(
        "sha256"
    ):
        raise invalid(
            "does not match its checksum: it was corrupted or modified after it "
            "was written."
        )
    try:
        metadata = json.loads(document)
    except ValueError as exc:
        raise invalid(f"holds a metadata document that is not JSON: {exc}.") from None
    if str(device) != "cpu":
        tensors = {name: tensor.to(device) for name, tensor in tensors.items()}
    return tensors, metadata

"""The IDC sample shipped inside the package: 2,800 real patches, no download, no torch.

``data/idc_sample.npz`` holds what :func:`load_idc` reads (``pad="zero"``) from the
PNG files of the patches drawn from the three shared folders: the patches and the
columns the frame is rebuilt from. It is a zip of ``.npy`` members compressed with
LZMA, which ``numpy.load`` reads as it is; it is built by
``scripts/build/build_idc_sample.py``.
"""

from __future__ import annotations

import os
from importlib import resources

import numpy as np
from sklearn.utils import Bunch

from ._frame import make_frame

SAMPLE_FILE = "idc_sample.npz"
DESCR_FILE = "idc_sample.rst"
# The members of SAMPLE_FILE, in the order they are written.
SAMPLE_ARRAYS = ("data", "target", "patient", "x", "y", "height", "width")


def sample_path(patient: str, target: int, x: int, y: int) -> str:
    """A patch's path relative to the folder it is in, as :func:`load_idc` names it."""
    return os.path.join(
        patient, str(target), f"{patient}_idx5_x{x}_y{y}_class{target}.png"
    )


def _resource(name: str):
    return resources.files(__package__) / "data" / name


def idc_sample_file():
    """The file :func:`load_idc_sample` reads, in the installed package.

    Its name and size say whether the sample is there without reading it (reading
    it takes about a second).

    Returns
    -------
    file : importlib.resources.abc.Traversable
        ``data/idc_sample.npz`` of the installed ``idc_sklearn.datasets``, a
        :class:`pathlib.Path` in an ordinary installation; ``file.is_file()`` is
        False where it is missing.

    See Also
    --------
    load_idc_sample : Read the sample.

    Examples
    --------
    >>> from idc_sklearn.datasets import idc_sample_file
    >>> file = idc_sample_file()
    >>> file.name, file.is_file()
    ('idc_sample.npz', True)
    """
    return _resource(SAMPLE_FILE)


def _read_arrays() -> dict[str, np.ndarray]:
    """Read every member of SAMPLE_FILE afresh: the caller owns (and may write) them."""
    file = idc_sample_file()
    try:
        with file.open("rb") as f, np.load(f) as archive:
            return {name: archive[name] for name in SAMPLE_ARRAYS}
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{SAMPLE_FILE} is missing from the installed idc_sklearn.datasets "
            f"package (expected at {file}); reinstall idc_sklearn or rebuild it "
            "with scripts/build/build_idc_sample.py."
        ) from None


def load_idc_sample(
    *, return_X_y: bool = False
) -> Bunch | tuple[np.ndarray, np.ndarray]:
    """Load the 2,800 real IDC patches of 114 patients shipped with the package.

    A small, offline subset of the IDC archive (Janowczyk & Madabhushi 2016) for
    examples, tests and quick experiments: the rows of
    ``load_idc(["shared/data/idc_sample", "shared/data/idc_more",
    "shared/data/idc_trainval"])`` (default ``pad="zero"``) drawn by patient and
    class (13 or 14 patches of each class of each patient, all of them where it has
    fewer), read from one 15.6 MB file inside the package in about a second. The
    two test patients of the paper's split found in those folders (8864, 8918) are
    left out.

    Parameters
    ----------
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of the Bunch.

    Returns
    -------
    dataset : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the keys of :func:`load_idc`:

        data : ndarray of shape (2800, 50, 50, 3), uint8
            The patches, RGB, channels last; the 19 edge patches smaller than 50x50
            are pasted top-left into zeros.
        target : ndarray of shape (2800,), int64
            1 for IDC (1,406 patches, 50.2%), 0 for non-IDC (1,394).
        groups : ndarray of shape (2800,), object
            The patient id of each patch, as a string (114 patients).
        frame : pandas.DataFrame of shape (2800, 7)
            Columns ``patient``, ``x``, ``y``, ``target``, ``path`` (relative to the
            folder the patch came from, ``<patient>/<class>/<file name>``; the PNG
            files are not shipped) and the original ``height``, ``width``.
        skipped : list
            Empty: every file of the sample loads.
        DESCR : str
            Source, sampling, bias, licence and citations of the sample.

    (data, target) : tuple
        When ``return_X_y`` is True.

    Raises
    ------
    TypeError
        If ``return_X_y`` is not a bool.

    See Also
    --------
    load_idc : The whole archive (277,524 patches) or any folder of it.
    idc_sample_file : The file it reads.
    make_idc_patches : A synthetic IDC-like dataset with the same Bunch.

    Notes
    -----
    Each call reads the file afresh, so the arrays returned are the caller's own.
    100 of the 114 patients have patches of both classes; 2 (8913, 9259) have
    non-IDC patches only and 12 have IDC patches only, as in the shared folders
    (their source repository kept one class of them). Classes are balanced by the
    draw (the archive is 28% IDC), so scores here are not the archive's
    class-imbalanced scores. The patients are 82 training and 29 validation
    patients of the paper's split and 3 outside it (8863, 8950, 8984): train on
    them, and judge a model on the split's test patients.

    Examples
    --------
    >>> from idc_sklearn import load_idc_sample
    >>> idc = load_idc_sample()
    >>> idc.data.shape, idc.data.dtype
    ((2800, 50, 50, 3), dtype('uint8'))
    >>> int(idc.target.sum()), idc.frame["patient"].nunique()
    (1406, 114)
    """
    if not isinstance(return_X_y, (bool, np.bool_)):
        raise TypeError(f"return_X_y must be True or False; got {return_X_y!r}.")
    arrays = _read_arrays()
    data = arrays["data"]
    target = arrays["target"].astype(np.int64, copy=False)
    if return_X_y:
        return data, target
    columns = {name: arrays[name].tolist() for name in ("patient", "target", "x", "y")}
    frame = make_frame(
        **columns,
        path=list(map(sample_path, *columns.values())),
        height=arrays["height"],
        width=arrays["width"],
    )
    return Bunch(
        data=data,
        target=target,
        groups=frame["patient"].to_numpy(dtype=object, copy=True),
        frame=frame,
        skipped=[],
        DESCR=_resource(DESCR_FILE).read_text(encoding="utf-8"),
    )

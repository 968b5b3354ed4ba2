"""The patient split of Cruz-Roa et al. 2014: three lists of patient ids, read.

The split comes as three text files, ``cases_train.txt``, ``cases_val.txt`` and
``cases_test.txt``; :func:`read_patient_split` reads them for ``load_idc``'s
``patients``.
"""

from __future__ import annotations

import os
from pathlib import Path

SPLIT_NAMES = ("train", "val", "test")


def read_patient_split(folder: str | os.PathLike) -> dict[str, list[str]]:
    """Read the patient split of Cruz-Roa et al. 2014 (84 / 29 / 49 patients).

    Parameters
    ----------
    folder : str or path-like
        The folder holding ``cases_train.txt``, ``cases_val.txt`` and
        ``cases_test.txt``, one patient id a line.

    Returns
    -------
    split : dict of str to list of str
        ``{"train": [...], "val": [...], "test": [...]}``, patient ids as strings in
        the files' order, ready for ``load_idc(root, patients=split["train"])``.

    Raises
    ------
    FileNotFoundError
        If the folder or one of the three files is missing.
    ValueError
        If a list is empty or a patient is in more than one list.

    Examples
    --------
    >>> from idc_sklearn import read_patient_split
    >>> split = read_patient_split("shared/data/cruz_roa_split")  # doctest: +SKIP
    >>> {name: len(ids) for name, ids in split.items()}  # doctest: +SKIP
    {'train': 84, 'val': 29, 'test': 49}
    """
    if not isinstance(folder, (str, os.PathLike)):
        raise TypeError(
            "folder must be the path of the folder holding cases_train.txt, "
            f"cases_val.txt and cases_test.txt; got {type(folder).__name__}."
        )
    folder = Path(os.path.expanduser(folder))
    if not folder.is_dir():
        raise FileNotFoundError(
            f"folder={str(folder)!r} is not a folder; expected one holding "
            "cases_train.txt, cases_val.txt and cases_test.txt."
        )
    split = {}
    for name in SPLIT_NAMES:
        path = folder / f"cases_{name}.txt"
        if not path.is_file():
            raise FileNotFoundError(
                f"{str(path)!r} is missing; read_patient_split expects "
                "cases_train.txt, cases_val.txt and cases_test.txt in "
                f"{str(folder)!r}."
            )
        ids = [
            line.strip()
            for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
        if not ids:
            raise ValueError(f"{str(path)!r} lists no patient ids.")
        split[name] = ids
    seen: dict[str, str] = {}
    for name, ids in split.items():
        for patient in ids:
            if seen.setdefault(patient, name) != name:
                raise ValueError(
                    f"patient {patient!r} is in both cases_{seen[patient]}.txt and "
                    f"cases_{name}.txt in {str(folder)!r}; the lists must not overlap."
                )
    return split

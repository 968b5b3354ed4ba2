"""read_patient_split: the paper's three patient lists, and what is wrong with bad ones.

The paper's own split is read from ``../shared/data/cruz_roa_split``, skipped with
its reason where that is absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import CRUZ_ROA_SPLIT as SPLIT

from idc_sklearn import read_patient_split


def test_read_patient_split_reads_the_papers_split():
    if not SPLIT.is_dir():
        pytest.skip(f"the Cruz-Roa split is absent: {SPLIT} does not exist")
    split = read_patient_split(SPLIT)
    assert list(split) == ["train", "val", "test"]
    assert {k: len(v) for k, v in split.items()} == {"train": 84, "val": 29, "test": 49}
    assert all(isinstance(p, str) for ids in split.values() for p in ids)
    everyone = set().union(*split.values())
    assert len(everyone) == 162
    assert {"8865", "8867", "8864"} <= everyone
    # Patients of the archive outside the paper's 162 slides exist (8863, 8950).
    assert not {"8863", "8950"} & everyone


def _write_split(folder: Path, train="1\n2\n", val="3\n", test="4\n\n") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (("train", train), ("val", val), ("test", test)):
        (folder / f"cases_{name}.txt").write_text(text)
    return folder


def test_read_patient_split_strips_blank_lines(tmp_path):
    split = read_patient_split(_write_split(tmp_path, train=" 10 \n\n11\n"))
    assert split == {"train": ["10", "11"], "val": ["3"], "test": ["4"]}


def test_read_patient_split_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        read_patient_split(tmp_path / "none")
    folder = _write_split(tmp_path / "a")
    (folder / "cases_val.txt").unlink()
    with pytest.raises(FileNotFoundError, match="cases_val.txt"):
        read_patient_split(folder)
    with pytest.raises(ValueError, match="patient '1' is in both"):
        read_patient_split(_write_split(tmp_path / "b", test="1\n"))
    with pytest.raises(ValueError, match="lists no patient ids"):
        read_patient_split(_write_split(tmp_path / "c", val="\n"))
    with pytest.raises(TypeError, match="folder must be the path"):
        read_patient_split(None)

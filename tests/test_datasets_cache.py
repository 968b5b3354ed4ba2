"""The disk cache: hit, memory-mapped and identical; rebuilt when anything changes.

Through ``load_idc``'s ``cache``; the fingerprint that finds a cache is pinned, so
that caches written by earlier versions keep loading.
"""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
from idc_archive import copy_subset, load

from idc_sklearn import load_idc
from idc_sklearn.datasets import _cache, _loader
from idc_sklearn.datasets._scanner import PatchFile


@pytest.fixture
def subset(idc_sample_root, tmp_path):
    return copy_subset(idc_sample_root, tmp_path)


def test_cache_is_hit_memory_mapped_and_identical(subset, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = load(subset, cache=cache)
    assert (cache / "data.npy").is_file() and (cache / "manifest.json").is_file()

    def no_decoding(*args, **kwargs):
        raise AssertionError("the cache should have been hit")

    monkeypatch.setattr(_loader, "decode_all", no_decoding)
    second = load(subset, cache=cache)
    assert isinstance(second.data, np.memmap) and not second.data.flags.writeable
    np.testing.assert_array_equal(second.data, first.data)
    np.testing.assert_array_equal(second.target, first.target)
    np.testing.assert_array_equal(second.groups, first.groups)
    pd.testing.assert_frame_equal(second.frame, first.frame)
    assert second.skipped == first.skipped


def test_cached_reload_equals_an_uncached_load(subset, tmp_path):
    plain = load(subset, pad="reflect")
    load(subset, pad="reflect", cache=tmp_path / "c")
    cached = load(subset, pad="reflect", cache=tmp_path / "c")
    np.testing.assert_array_equal(cached.data, plain.data)
    pd.testing.assert_frame_equal(cached.frame, plain.frame)
    assert cached.DESCR == plain.DESCR


def test_cache_is_rebuilt_when_files_or_options_change(subset, tmp_path):
    cache = tmp_path / "cache"
    before = load(subset, cache=cache)
    source = next((subset / "8957" / "1").glob("*.png"))
    shutil.copy(source, subset / "8957" / "1" / "8957_idx5_x1_y1_class1.png")
    added = load(subset, cache=cache)
    assert len(added.target) == len(before.target) + 1
    frame = added.frame
    n_edge = int(((frame["height"] < 50) | (frame["width"] < 50)).sum())
    assert n_edge > 0
    with pytest.warns(UserWarning, match=f"left out {n_edge} edge patches"):
        dropped = load(subset, cache=cache, pad="drop")
    assert len(dropped.target) == len(added.target) - n_edge
    one = load(subset, cache=cache, patients=["8957"])
    assert set(one.groups) == {"8957"}
    (cache / "manifest.json").write_text("{not json")
    with pytest.warns(UserWarning, match="is damaged"):
        again = load(subset, cache=cache)
    np.testing.assert_array_equal(again.data, added.data)


def test_cache_keeps_skipped_files_and_warns_again(subset, tmp_path):
    (subset / "8957" / "1" / "8957_idx5_x1_y1_class1.png").write_bytes(b"")
    with pytest.warns(UserWarning, match="skipped 1 of"):
        first = load(subset, cache=tmp_path / "c")
    with pytest.warns(UserWarning, match="skipped 1 of"):
        second = load(subset, cache=tmp_path / "c")
    assert second.skipped == first.skipped and len(first.skipped) == 1


def test_the_fingerprint_of_a_listing_is_pinned():
    # A cache is found by this hash: were it to change, every existing cache would
    # be rebuilt. The values are those of cache format 2 as first written.
    first, second = "8864_idx5_x1_y1_class0.png", "7_idx5_x51_y1_class1.png"
    files = [
        PatchFile("8864", 0, first, f"8864/0/{first}", 1, 1, 1234, 1700000000123456789),
        PatchFile("7", 1, second, f"7/1/{second}", 51, 1, 99, 5),
    ]
    assert _cache.CACHE_FORMAT == 2
    manifest = _cache.cache_manifest(files, "zero", None)
    assert manifest == {
        "format": 2,
        "fingerprint": (
            "a7f0f7fdd425e1d2baa8c79361c5b8410f53dfb36ec8796489d2130ff6adbfb4"
        ),
        "pad": "zero",
        "patients": None,
        "n_files": 2,
    }
    assert (
        _cache.cache_manifest(files[::-1], "drop", ["7", "8864"])["fingerprint"]
        == "d5155b6321abc15480b0d67b76ddc84485335f8dee0345c2bca955c9f1566300"
    )


def test_a_damaged_cache_warns_at_the_callers_line(subset, tmp_path):
    cache = tmp_path / "cache"
    load_idc(subset, cache=cache, progress=False)
    (cache / "frame.csv").write_text("patient\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_idc(subset, cache=cache, progress=False)
    assert len(caught) == 1 and "frame.csv is" in str(caught[0].message)
    assert caught[0].filename == __file__

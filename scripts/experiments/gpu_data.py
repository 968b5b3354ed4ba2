"""Pack the patches of a GPU width screen into one lossless file that travels to a
lent GPU machine as a ``carry`` path (``scripts/experiments/gpu_width.py`` reads it).

The split's 111 training and validation patients hold 25,017 patches (188 MB as
uint8), and ``cv_select.py`` trains each of its five folds on a cap of 60 patches per
patient drawn inside that fold's training part, so one seed's five folds touch
14,496 different patches. Neither fits beside the working tree under the device's
64 MiB (the tree itself is about 23 MiB), even compressed: these noisy patches
compress losslessly only to about 0.73 of their size.

So the file holds one draw of ``--cap`` patches per patient over the whole split
(``cap_per_patient(y, groups, cap, seed)``: each patient's class counts are exactly
those ``cv_select`` trains on, the patches a different draw), about 6,500 patches:

- fold ``k`` trains on the drawn patches of its training patients, with the same
  per-patient class counts as ``cv_select``'s fold ``k`` (not the same patches);
- fold ``k`` scores the drawn patches of its held-out patients. Each keeps its row
  in the split (``rows``, an index into ``load_split_patches``'s order) and its
  position among the held-out patches of its fold (``position``): the index into
  every ``cv_select`` and ``split_cv`` prediction file of that fold, so the GPU's
  held-out probabilities pair patch for patch with the CPU runs' on those rows.

The folds are ``GroupKFold(5)`` over the whole split, as ``cv_select`` makes them;
the fold of every split row, its label and patient are stored too. The patches are
an xz stream (a per-channel horizontal delta filter, then LZMA2) of the uint8 array,
lossless, decoded with the standard library; the file refuses to be written over
``--max-mib`` (by default what is left of the 64 MiB after the files that travel
anyway), and a ``.sha256`` beside it is what the device's check compares. ::

    python scripts/experiments/gpu_data.py       # .cache/gpu_data/cv_patches.npz
    python scripts/experiments/gpu_data.py --patients 10 --cap 10 --out /tmp/t.npz
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import itertools
import json
import lzma
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from shared_patients import CACHE, REPO_ROOT, cap_per_patient
from sklearn.model_selection import GroupKFold

FORMAT = 1
DEFAULT_OUT = REPO_ROOT / ".cache" / "gpu_data" / "cv_patches.npz"
#: What a device call may carry in all: the working tree and the carried paths.
TRAVEL_LIMIT = 64 * 2**20
#: Room kept for files that appear in the tree between building and the call.
MARGIN = 2**20
# A delta filter at the pixel's stride (3 bytes) predicts each channel from its
# left neighbour; LZMA2 codes the rest. Lossless; 0.73 of the raw size on these
# patches (zlib: 0.81, PNG: 0.78, WebP lossless: 0.68 but not in the stdlib).
FILTERS = [
    {"id": lzma.FILTER_DELTA, "dist": 3},
    {"id": lzma.FILTER_LZMA2, "preset": 6},
]


def travelling_bytes(root: Path = REPO_ROOT, carried=(".whl",)) -> int:
    """Bytes a device call sends besides the data file: the tracked and the
    untracked, not ignored files, and ``carried`` ignored folders (the wheels)."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=root,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    paths = [root / os.fsdecode(p) for p in listed if p]
    for folder in carried:
        paths += [p for p in (root / folder).rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in paths if p.is_file())


def default_max_bytes() -> int:
    try:
        return TRAVEL_LIMIT - travelling_bytes() - MARGIN
    except (OSError, subprocess.CalledProcessError):
        return 40 * 2**20  # no git: the tree's size as of 2026-12 leaves about this


def spread_patients(groups, fold_of, n: int) -> list:
    """``n`` patients taken in turn from each fold (for small test files: every
    fold keeps held-out and training patients)."""
    by_fold = [sorted(set(groups[fold_of == k])) for k in range(fold_of.max() + 1)]
    order = [p for turn in itertools.zip_longest(*by_fold) for p in turn if p]
    return order[:n]


def select(y, groups, *, cap=60, seed=0, n_folds=5, patients=None) -> dict:
    """The rows to pack and their place in ``cv_select``'s folds.

    ``fold_of``: the fold (of ``GroupKFold(n_folds)`` over every row) each row is
    held out in. ``rows``: the drawn rows, ``cap`` per patient, sorted.
    ``position``: each drawn row's index among the held-out rows of its fold.
    """
    y, groups = np.asarray(y), np.asarray(groups).astype(str)
    fold_of = np.empty(len(y), dtype=np.int8)
    for k, (_, test) in enumerate(GroupKFold(n_folds).split(y, y, groups)):
        fold_of[test] = k
    candidates = np.arange(len(y))
    if patients is not None:
        keep = spread_patients(groups, fold_of, patients)
        candidates = np.flatnonzero(np.isin(groups, keep))
    rows = candidates[cap_per_patient(y[candidates], groups[candidates], cap, seed)]
    position = np.empty(len(rows), dtype=np.int64)
    for k in range(n_folds):
        held_out = np.flatnonzero(fold_of == k)  # GroupKFold's test order
        mine = fold_of[rows] == k
        position[mine] = np.searchsorted(held_out, rows[mine])
        assert np.array_equal(held_out[position[mine]], rows[mine])
    return {"fold_of": fold_of, "rows": rows, "position": position}


def encode(patches: np.ndarray) -> np.ndarray:
    raw = np.ascontiguousarray(patches, dtype=np.uint8)
    packed = lzma.compress(raw.tobytes(), format=lzma.FORMAT_XZ, filters=FILTERS)
    return np.frombuffer(packed, dtype=np.uint8)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def pack(
    X,
    y,
    groups,
    path,
    *,
    cap=60,
    seed=0,
    n_folds=5,
    patients=None,
    max_bytes=None,
    source="",
) -> dict:
    """Write the file (and ``<path>.sha256``) and return its metadata.

    Raises ``ValueError``, leaving no file, where it would exceed ``max_bytes``.
    """
    y, groups = np.asarray(y, dtype=np.int64), np.asarray(groups).astype(str)
    chosen = select(y, groups, cap=cap, seed=seed, n_folds=n_folds, patients=patients)
    rows = chosen["rows"]
    patches = np.ascontiguousarray(X[rows], dtype=np.uint8)
    start = time.perf_counter()
    stream = encode(patches)
    fold = chosen["fold_of"][rows]
    meta = {
        "format": FORMAT,
        "cap": cap,
        "seed": seed,
        "n_folds": n_folds,
        "draw": f"cap_per_patient(y, groups, {cap}, {seed}) over the split's rows"
        + ("" if patients is None else f" of {patients} patients"),
        "split_rows": len(y),
        "patients": len(np.unique(groups[rows])),
        "patches": len(rows),
        "shape": list(patches.shape),
        "raw_bytes": int(patches.nbytes),
        "patches_sha256": hashlib.sha256(patches.tobytes()).hexdigest(),
        "codec": "xz: delta(dist=3), lzma2(preset=6)",
        "per_fold": {
            str(k): {
                "train": int(np.sum(fold != k)),
                "held_out": int(np.sum(fold == k)),
                "held_out_patients": len(np.unique(groups[rows][fold == k])),
            }
            for k in range(n_folds)
        },
        "source": source,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
        "encode_s": round(time.perf_counter() - start, 1),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz", delete=False) as f:
        np.savez_compressed(
            f,
            patches_xz=stream,
            rows=rows,
            y=y[rows],
            groups=groups[rows],
            fold=fold,
            position=chosen["position"],
            split_fold=chosen["fold_of"],
            split_y=y.astype(np.int8),
            split_groups=groups,
            meta=np.array(json.dumps(meta)),
        )
    size = os.path.getsize(f.name)
    if max_bytes is not None and size > max_bytes:
        os.unlink(f.name)
        raise ValueError(
            f"{len(rows):,} patches pack into {size / 2**20:.1f} MiB, over the "
            f"{max_bytes / 2**20:.1f} MiB allowed: lower --cap or --patients"
        )
    os.chmod(f.name, 0o644)
    os.replace(f.name, path)
    sha = file_sha256(path)
    Path(f"{path}.sha256").write_text(f"{sha}  {path.name}\n")
    return {**meta, "file_bytes": size, "file_sha256": sha}


def load(path, *, verify=True) -> dict:
    """The packed arrays, ``X`` decoded (uint8, ``(n, 50, 50, 3)``), and ``meta``."""
    with np.load(path, allow_pickle=False) as saved:
        data = {key: saved[key] for key in saved.files}
    meta = json.loads(str(data.pop("meta")))
    raw = lzma.decompress(data.pop("patches_xz").tobytes(), format=lzma.FORMAT_XZ)
    if verify and hashlib.sha256(raw).hexdigest() != meta["patches_sha256"]:
        raise ValueError(f"{path}: the patches do not match their checksum")
    data["X"] = np.frombuffer(raw, dtype=np.uint8).reshape(meta["shape"])
    data["meta"] = meta
    return data


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--cap", type=int, default=60, help="patches per patient")
    parser.add_argument("--seed", type=int, default=0, help="the cap's draw")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument(
        "--patients", type=int, default=None, help="only this many (for tests)"
    )
    parser.add_argument(
        "--max-mib",
        type=float,
        default=None,
        help="refuse a larger file (default: 64 MiB less what travels anyway)",
    )
    parser.add_argument("--cache", default=str(CACHE))
    parser.add_argument(
        "--check",
        action="store_true",
        help="only say whether --out still fits beside what travels now",
    )
    args = parser.parse_args(argv)
    if args.check:
        tree, size = travelling_bytes(), os.path.getsize(args.out)
        print(
            f"tree and wheels {tree / 2**20:.1f} MiB + {args.out} "
            f"{size / 2**20:.1f} MiB = {(tree + size) / 2**20:.1f} MiB of "
            f"{TRAVEL_LIMIT / 2**20:.0f} MiB"
        )
        sys.exit(0 if tree + size <= TRAVEL_LIMIT else 1)
    from recipe_search import load_split_patches  # the library and the PNG cache

    max_bytes = (
        default_max_bytes() if args.max_mib is None else int(args.max_mib * 2**20)
    )
    start = time.perf_counter()
    X, y, groups, _, _ = load_split_patches(Path(args.cache))
    manifest = Path(args.cache) / "manifest.json"
    source = (
        json.loads(manifest.read_text()).get("fingerprint", "")
        if manifest.exists()
        else ""
    )
    print(f"split: {len(y):,} patches loaded in {time.perf_counter() - start:.0f} s")
    meta = pack(
        X,
        y,
        groups,
        args.out,
        cap=args.cap,
        seed=args.seed,
        n_folds=args.folds,
        patients=args.patients,
        max_bytes=max_bytes,
        source=f"load_split_patches, cache fingerprint {source}",
    )
    print(json.dumps(meta, indent=1))
    print(
        f"{args.out}: {meta['file_bytes'] / 2**20:.1f} MiB "
        f"(limit {max_bytes / 2**20:.1f} MiB), "
        f"{meta['file_bytes'] / meta['raw_bytes']:.3f} of the raw patches"
    )


if __name__ == "__main__":
    main()

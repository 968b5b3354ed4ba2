"""Honest selection: every recipe lever, width and ensemble judged by cross-validation
by patient over the split's 111 training and validation patients in ``../shared``.

The protocol is the final table's (``split_cv.py``), so its runs pair with these:
``GroupKFold(5)`` over the 111 patients, the same folds for every model, every patch
of the held-out patients scored (the 27,595-patch set: at most 300 per patient for
the ``idc_trainval`` patients), training patches capped per patient, a fifth of
the training patients held out inside each training fold for early stopping, so
nothing is chosen on the fold that is scored. ``base`` is the final table's MLBN
run (small width, the paper's recipe plus dihedral augmentation) and
``features-hgb`` its gradient-boosted features; each lever changes one thing.

Each (lever, seed, fold) appends a line to ``<out>/folds.jsonl`` and saves its
held-out probabilities, with and without test-time augmentation; a rerun skips what
is done, and the fits train with ``checkpoint_dir``, so an interrupted run resumes
across sessions. ``--table`` reads what is there (here and in ``--reuse``) and
writes the table: out-of-fold balanced accuracy and ROC AUC per lever and seed,
paired differences with 95% intervals over patients against ``features-hgb`` and
against ``base``, the ensembles (averaged probabilities, stacking, fitted on the
other folds' out-of-fold scores) and the decision threshold chosen by
cross-validation (``TunedThresholdClassifierCV`` on the other folds). Rows in a
patient's context follow: ``per patient`` (each patient's own IDC share,
``adapt_to_patients``), ``& neighbours`` (each patch mixed with its neighbours'
on the slide, ``smooth_neighbours``, from the positions in the archive's file
names) and both, their settings chosen on the other folds, each also against
features-hgb given the same context. ::

    python scripts/experiments/cv_select.py --levers ema --seeds 0 --threads 1
    python scripts/experiments/cv_select.py --table --markdown docs/cv_select.md \\
        --figures docs/figures
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from recipe_search import SMALL, load_split_patches, scores
from shared_patients import (
    CACHE,
    EXTRA_FOLDER,
    REPO_ROOT,
    SHARED,
    SPLIT,
    cap_per_patient,
    load_shared,
    machine,
)
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import GroupKFold, TunedThresholdClassifierCV
from skorch.callbacks import LRScheduler

from idc_sklearn import (
    PRESETS,
    MLBNInceptionClassifier,
    WeightAveraging,
    adapt_to_patients,
    load_idc,
    make_baseline,
    paired_bootstrap,
    plot_paired_differences,
    read_patient_split,
    smooth_neighbours,
)

EPOCHS = 10
CAP = 60
REFERENCE, BASE_RUN = "features-hgb", "base"
# The final table's MLBN recipe (split_cv.RECIPE): the paper's, plus flips.
BASE = {**SMALL, "augment": "dihedral"}

#: One change each against ``base``: estimator parameters, and the budget.
LEVERS = {
    "ema": {"params": {"callbacks__weight_averaging": WeightAveraging("ema")}},
    "swa": {
        "params": {"callbacks__weight_averaging": WeightAveraging("swa", start_epoch=3)}
    },
    "label-smoothing": {"params": {"criterion__label_smoothing": 0.1}},
    "cosine": {
        "params": {
            "callbacks__lr_scheduler": LRScheduler(
                policy="CosineAnnealingLR", T_max=EPOCHS
            )
        }
    },
    "hed-mild": {"params": {"augment": "all", "hed_sigma": 0.02}},
    "hed-strong": {"params": {"augment": "all", "hed_sigma": 0.1}},
    "medium": {"params": dict(PRESETS["medium"])},
    "paper": {"params": dict(PRESETS["paper"])},
    # Data: more training patches per patient, and every patch (with the
    # idc_trainval_more patches of the training patients).
    "cap-150": {"cap": 150},
    "every-patch": {"cap": None, "more": True},
    # The reference on the same data as each data lever: its network against
    # features-hgb trained on the same patches, not only on the capped ones.
    "features-hgb-cap-150": {"cap": 150, "baseline": REFERENCE},
    "features-hgb-every-patch": {"cap": None, "more": True, "baseline": REFERENCE},
}
#: Each data lever's network with features-hgb on the same training patches.
SAME_DATA = {
    "cap-150": "features-hgb-cap-150",
    "every-patch": "features-hgb-every-patch",
}
#: The final table's CNNs (split_cv.py), for the ensemble of every architecture.
ARCHITECTURES = (BASE_RUN, "inception-no-mlbn", "cruz-roa-cnn", "janowczyk-cnn")
# gpu_width.py's runs: one width each, trained on a lent GPU (gpu-<width>).
GPU_PREFIX = "gpu-"


def build(lever: dict, seed: int, checkpoint_dir: Path):
    """The lever's model: the MLBN network, or the handcrafted baseline it names."""
    if "baseline" in lever:
        return make_baseline(lever["baseline"], random_state=seed)
    return MLBNInceptionClassifier(
        **{**BASE, **lever.get("params", {})},
        max_epochs=EPOCHS,
        batch_size=32,
        precision="auto",
        random_state=seed,
        verbose=0,
        checkpoint_dir=str(checkpoint_dir),
    )


def load_more(cache: Path, patients) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``idc_trainval_more`` patches of ``patients`` (never a scored patient)."""
    more = load_idc(SHARED / EXTRA_FOLDER, cache=cache, progress=False)
    keep = np.isin(more.groups.astype(str), list(patients))
    return np.asarray(more.data[keep]), more.target[keep], more.groups[keep].astype(str)


def run(args) -> None:
    out = Path(args.out)
    (out / "predictions").mkdir(parents=True, exist_ok=True)
    log = out / "folds.jsonl"
    done = {(r["model"], r["seed"], r["fold"]) for r in _records(log)}
    X, y, groups, _, _ = load_split_patches(Path(args.cache))
    folds = list(GroupKFold(args.folds).split(X, y, groups))
    chosen = range(len(folds)) if args.fold_indices is None else args.fold_indices
    for name in args.levers:
        lever = LEVERS[name]
        cap = lever.get("cap", CAP)
        for seed in args.seeds:
            for fold in chosen:
                if (name, seed, fold) in done:
                    continue
                train, test = folds[fold]
                train = train[cap_per_patient(y[train], groups[train], cap, seed)]
                X_fit, y_fit, g_fit = X[train], y[train], groups[train]
                if lever.get("more"):
                    X_more, y_more, g_more = load_more(
                        Path(args.cache) / "more", set(g_fit)
                    )
                    X_fit = np.concatenate([X_fit, X_more])
                    y_fit = np.concatenate([y_fit, y_more])
                    g_fit = np.concatenate([g_fit, g_more])
                tag = f"s{seed}-f{fold}"
                model = build(lever, seed, Path(args.checkpoints) / f"{name}-{tag}")
                start = time.perf_counter()
                if "baseline" in lever:
                    model.fit(X_fit, y_fit)
                else:
                    model.fit(X_fit, y_fit, groups=g_fit)
                fit_s = time.perf_counter() - start
                proba = model.predict_proba(X[test])[:, 1]
                saved = {"proba": proba.astype(np.float32)}
                if "baseline" not in lever:
                    tta = model.set_params(tta=True).predict_proba(X[test])[:, 1]
                    saved["proba_tta"] = tta.astype(np.float32)
                np.savez_compressed(
                    out / "predictions" / f"{name}-{tag}.npz",
                    **saved,
                    y=y[test],
                    groups=groups[test],
                )
                record = {
                    "model": name,
                    "seed": seed,
                    "fold": fold,
                    "cap": cap,
                    "epochs": EPOCHS,
                    "train_patches": len(y_fit),
                    "test_patches": len(test),
                    "fit_s": round(fit_s, 1),
                    "test": scores(y[test], proba, groups[test]),
                    "machine": machine(),
                }
                if "baseline" not in lever:
                    valid = model.history[:, "valid_bacc"]
                    record["best_epoch"] = int(np.argmax(valid)) + 1
                    record["inner_valid_bacc"] = float(np.max(valid))
                    record["test_tta"] = scores(
                        y[test], saved["proba_tta"], groups[test]
                    )
                with open(log, "a") as f:
                    f.write(json.dumps(record) + "\n")
                tta = record.get("test_tta", {}).get("balanced_accuracy")
                print(
                    f"{name} {tag}: bacc {record['test']['balanced_accuracy']:.3f}"
                    + ("" if tta is None else f" (tta {tta:.3f})")
                    + f", {fit_s / 60:.1f} min",
                    flush=True,
                )


def _records(log: Path) -> list[dict]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


# -- the table: out-of-fold predictions pooled over the five folds ---------------


def pooled_predictions(out: Path, reuse: Path) -> dict:
    """``{(model, seed): (fold, y, proba, groups)}`` for every complete model.

    The final table's runs (``reuse``, ``split_cv.py``) enter as ``base`` (its
    MLBN run) and under their own names; this script's levers add ``<lever>``
    and ``<lever>+tta``. Runs scored on a subset of the rows are left to
    ``subset_predictions``.
    """
    return _pool(_prediction_files(out, reuse))


def _prediction_files(out: Path, reuse: Path, subset: str | None = None) -> dict:
    """``{(model, seed): {fold: (path, key)}}``: with ``subset=None`` the runs that
    scored every held-out patch, else the runs whose ``subset`` has that sha256."""
    found = {}
    if subset is None:
        for record in _records(reuse / "folds.jsonl"):
            name = "base" if record["model"] == "mlbn-inception" else record["model"]
            path = f"{record['model']}-s{record['seed']}-f{record['fold']}-c60.npz"
            found.setdefault((name, record["seed"]), {})[record["fold"]] = (
                reuse / "predictions" / path,
                "proba",
            )
    for record in _records(out / "folds.jsonl"):
        if (record.get("subset") or {}).get("sha256") != subset:
            continue
        path = (
            out
            / "predictions"
            / f"{record['model']}-s{record['seed']}-f{record['fold']}.npz"
        )
        suffixes = (("", "proba"), ("+tta", "proba_tta"))
        if "baseline" in LEVERS.get(record["model"], {}):
            suffixes = suffixes[:1]  # a baseline has no test-time augmentation
        for suffix, key in suffixes:
            found.setdefault((record["model"] + suffix, record["seed"]), {})[
                record["fold"]
            ] = (path, key)
    return found


def _pool(found: dict, positions: dict | None = None) -> dict:
    """Each complete model's folds concatenated; with ``positions`` (fold: indices
    into the fold's held-out patches), each fold restricted to those."""
    pooled = {}
    for (model, seed), folds in found.items():
        if len(folds) < 5:
            continue  # not every fold is done
        parts = []
        for fold in sorted(folds):
            path, key = folds[fold]
            saved = np.load(path)
            keep = slice(None) if positions is None else positions[fold]
            parts.append(
                (
                    np.full(len(saved["y"][keep]), fold),
                    saved["y"][keep],
                    saved[key][keep],
                    saved["groups"][keep],
                )
            )
        pooled[model, seed] = tuple(np.concatenate(p) for p in zip(*parts, strict=True))
    return pooled


def subset_predictions(out: Path, reuse: Path) -> dict:
    """``{sha256: pooled}`` for the runs scored on a packed subset of the held-out
    patches (``gpu_width.py``; their records carry ``subset``, their predictions
    each patch's ``position`` in its fold): those runs, and every run of
    ``pooled_predictions`` restricted to the same patches, in the same order."""
    subsets = sorted(
        {
            r["subset"]["sha256"]
            for r in _records(out / "folds.jsonl")
            if r.get("subset")
        }
    )
    tables = {}
    for sha in subsets:
        found = _prediction_files(out, reuse, subset=sha)
        positions = {}
        for folds in found.values():
            for fold, (path, _) in folds.items():
                position = np.load(path)["position"]
                assert np.array_equal(positions.setdefault(fold, position), position)
        if len(positions) < 5:
            continue
        pooled = _pool(_prediction_files(out, reuse), positions)
        pooled.update(_pool(found))
        tables[sha] = pooled
    return tables


class _Scores(ClassifierMixin, BaseEstimator):
    """A classifier whose single feature is already its IDC probability: the
    out-of-fold scores, for ``TunedThresholdClassifierCV(cv="prefit")``."""

    def fit(self, X, y):
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X):
        p = np.asarray(X)[:, 0]
        return np.column_stack([1 - p, p])

    def predict(self, X):
        return (self.predict_proba(X)[:, 1] > 0.5).astype(int)


def tuned_threshold(proba, y) -> float:
    """The threshold of the best balanced accuracy on these scores (sklearn's
    ``TunedThresholdClassifierCV`` on already out-of-fold probabilities)."""
    tuned = TunedThresholdClassifierCV(
        _Scores().fit(None, None),
        scoring="balanced_accuracy",
        cv="prefit",
        refit=False,
        thresholds=np.linspace(0.05, 0.95, 91),
    ).fit(proba[:, None], y)
    return float(tuned.best_threshold_)


def with_tuned_threshold(fold, y, proba):
    """Each fold's calls at the threshold chosen on the other folds' scores,
    expressed as probabilities shifted so that 0.5 is that threshold."""
    shifted = np.empty_like(proba, dtype=float)
    thresholds = {}
    for k in np.unique(fold):
        other = fold != k
        t = tuned_threshold(proba[other], y[other])
        thresholds[int(k)] = t
        p = proba[~other]
        # A monotone map with t -> 0.5: the ranking (ROC AUC) is unchanged.
        shifted[~other] = np.where(p <= t, 0.5 * p / t, 0.5 + 0.5 * (p - t) / (1 - t))
    return shifted, thresholds


#: The strengths (pseudo-patches) of the per-patient prior that the other folds
#: choose from; inf adapts nothing.
STRENGTHS = (0.0, 10.0, 30.0, 100.0, 300.0, 1000.0, np.inf)
PER_PATIENT = " per patient"


def by_strength(proba, groups) -> dict:
    """``{strength: proba adapted per patient}`` for every strength of STRENGTHS."""
    return {s: adapt_to_patients(proba, groups, strength=s) for s in STRENGTHS}


def per_patient(fold, y, proba, groups, adapted=None):
    """Each patient's probabilities at its own IDC share (``adapt_to_patients``),
    the strength chosen on the other folds' balanced accuracy at 0.5; returns the
    adapted probabilities and ``{fold: strength}``. No held-out label is read: a
    patient's share comes from its own patches' probabilities. ``adapted`` is
    ``by_strength(proba, groups)`` where the caller has it."""
    if adapted is None:
        adapted = by_strength(proba, groups)
    return chosen_on_other_folds(fold, y, adapted)


def chosen_on_other_folds(fold, y, candidates: dict):
    """Each fold's probabilities from the candidate (``{key: probabilities}``) of
    the best balanced accuracy at 0.5 on the other folds, the first on a tie;
    returns them and ``{fold: key}``."""
    out, chosen = np.empty(len(y)), {}
    for k in np.unique(fold):
        other = fold != k
        best = max(
            candidates,
            key=lambda c: balanced_accuracy_score(y[other], candidates[c][other] > 0.5),
        )
        chosen[int(k)] = best
        out[~other] = candidates[best][~other]
    return out, chosen


#: The neighbours' share in each probability (``smooth_neighbours``) that the other
#: folds choose from, together with the prior's strength; 0 mixes in none.
NEIGHBOUR_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
NEIGHBOURS = " & neighbours"


def pooled_coords(cache: Path, folds: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Each held-out patch's (x, y) on its slide and its patient, in the pooled
    order (fold 0's held-out patches, then fold 1's, ...): the positions in the
    archive's file names, which the neighbours are found by."""
    idc = load_shared(cache)
    groups = idc.groups.astype(str)
    split = read_patient_split(SPLIT)
    patients = (set(split["train"]) | set(split["val"])) & set(groups)
    keep = np.isin(groups, sorted(patients))
    xy = idc.frame.loc[keep, ["x", "y"]].to_numpy(dtype=float)
    y, groups = idc.target[keep], groups[keep]
    order = np.concatenate([t for _, t in GroupKFold(folds).split(y, y, groups)])
    return xy[order], groups[order]


def neighbour_candidates(proba, groups, coords, prior: bool) -> dict:
    """``{(weight,): proba}`` for every weight of NEIGHBOUR_WEIGHTS, each patch
    mixed with its neighbours (``smooth_neighbours``); with ``prior``,
    ``{(weight, strength): proba}``, then adapted per patient at each strength of
    STRENGTHS."""
    candidates = {}
    for weight in NEIGHBOUR_WEIGHTS:
        smoothed = smooth_neighbours(proba, coords, groups, weight=weight)
        if not prior:
            candidates[weight,] = smoothed
            continue
        for strength, adapted in by_strength(smoothed, groups).items():
            candidates[weight, strength] = adapted
    return candidates


def with_neighbours(fold, y, proba, groups, coords, prior: bool, candidates=None):
    """Each probability mixed with its neighbours' on the patient's slide
    (``smooth_neighbours``), then, with ``prior``, at the patient's own share; the
    neighbours' weight (and the strength) chosen together on the other folds'
    balanced accuracy at 0.5. Returns the probabilities and ``{fold: choice}``,
    each choice as ``"w <weight> s <strength>"``. ``candidates`` is
    ``neighbour_candidates(proba, groups, coords, prior)`` where the caller has
    it."""
    if candidates is None:
        candidates = neighbour_candidates(proba, groups, coords, prior)
    out, chosen = chosen_on_other_folds(fold, y, candidates)
    return out, {k: _choice(key) for k, key in chosen.items()}


def _choice(key: tuple) -> str:
    return " ".join(f"{name} {value:g}" for name, value in zip("ws", key, strict=False))


def stacked(fold, y, members: list[np.ndarray]):
    """Logistic regression on the members' logits, fitted on the other folds."""
    eps = 1e-6
    Z = np.column_stack(
        [np.log(np.clip(m, eps, 1 - eps) / np.clip(1 - m, eps, 1)) for m in members]
    )
    proba = np.empty(len(y))
    for k in np.unique(fold):
        other = fold != k
        model = LogisticRegression(class_weight="balanced").fit(Z[other], y[other])
        # class_weight="balanced" makes 0.5 the balanced operating point.
        proba[~other] = model.predict_proba(Z[~other])[:, 1]
    return proba


def ensembles(pooled: dict) -> dict:
    """Ensembles made from the pooled out-of-fold scores of complete models."""
    made = {}
    seeds = sorted({seed for _, seed in pooled})
    networks = sorted({m for m, _ in pooled if _is_network(m) or m.endswith("+tta")})
    for seed in seeds:
        if (REFERENCE, seed) not in pooled:
            continue
        fold, y, hgb, groups = pooled[REFERENCE, seed]
        for net in networks:
            if (net, seed) not in pooled:
                continue
            p = pooled[net, seed][2]
            made[f"{net} & hgb (mean)", seed] = (fold, y, (p + hgb) / 2, groups)
            made[f"{net} & hgb (stacked)", seed] = (
                fold,
                y,
                stacked(fold, y, [p, hgb]),
                groups,
            )
        # Many members: every architecture of the final table, and every lever's
        # network of this seed, each averaged with features-hgb.
        for name, members in (
            ("cnns & hgb (mean)", (*ARCHITECTURES, REFERENCE)),
            ("base & hgb & rf (mean)", (BASE_RUN, REFERENCE, "features-rf")),
            (
                "every network & hgb (mean)",
                (*(m for m in networks if _is_network(m)), REFERENCE),
            ),
        ):
            present = [m for m in members if (m, seed) in pooled]
            if len(present) == len(members) and len(members) > 2:
                mean = np.mean([pooled[m, seed][2] for m in members], axis=0)
                made[name, seed] = (fold, y, mean, groups)
        # A data lever against features-hgb on the same training patches.
        for net, same in SAME_DATA.items():
            for name in (net, f"{net}+tta"):
                if (name, seed) in pooled and (same, seed) in pooled:
                    mean = (pooled[name, seed][2] + pooled[same, seed][2]) / 2
                    made[f"{name} & {same} (mean)", seed] = (fold, y, mean, groups)
    for net in networks:
        if all((net, s) in pooled for s in seeds) and len(seeds) > 1:
            fold, y, _, groups = pooled[net, seeds[0]]
            mean = np.mean([pooled[net, s][2] for s in seeds], axis=0)
            name = f"{net} seeds {'+'.join(map(str, seeds))}"
            for seed in seeds:
                made[name, seed] = (fold, y, mean, groups)
                if (REFERENCE, seed) in pooled:
                    hgb = pooled[REFERENCE, seed][2]
                    made[f"{name} & hgb (mean)", seed] = (
                        fold,
                        y,
                        (mean + hgb) / 2,
                        groups,
                    )
    return made


#: The column of each context row's difference to features-hgb in the same context.
SAME_CONTEXT = "features-hgb, same context"


def _context(model: str) -> str:
    """The context a row's model is given (its per-patient or neighbours' suffix),
    or ''."""
    for suffix in (f"{PER_PATIENT}{NEIGHBOURS}", NEIGHBOURS, PER_PATIENT):
        if model.endswith(suffix):
            return suffix
    return ""


def _in_forest(model: str) -> bool:
    """The forest plot's rows: each model and its mean with features-hgb, at 0.5
    (the table holds the variants: stacked, +tta, seeds averaged, thresholds)."""
    return not any(part in model for part in (" @ ", "stacked", "+tta", "seeds"))


def _is_network(model: str) -> bool:
    """A single network's run (not its +tta scores, nor an ensemble)."""
    gpu = model.startswith(GPU_PREFIX) and " " not in model and "+" not in model
    lever = model in LEVERS and "baseline" not in LEVERS[model]
    return model == BASE_RUN or lever or gpu


def table(out: Path, reuse: Path, figures: Path | None = None, coords=None) -> str:
    """The table of every run that scored every held-out patch, then one table
    per packed subset (``gpu_width.py``'s runs) on that subset's patches.
    ``coords`` (``pooled_coords``) adds the rows with each patch's neighbours."""
    text = _table(pooled_predictions(out, reuse), figures, coords)
    for sha, pooled in subset_predictions(out, reuse).items():
        _, y, _, groups = next(iter(pooled.values()))
        text += (
            f"\n\nOn the packed subset {sha[:12]} only ({len(y):,} held-out "
            f"patches of {len(np.unique(groups))} patients, every model restricted "
            "to them):\n\n" + _table(pooled)
        )
    return text


def _table(pooled: dict, figures: Path | None = None, coords=None) -> str:
    pooled.update(ensembles(pooled))
    thresholds = {}
    for (model, seed), (fold, y, proba, groups) in list(pooled.items()):
        if _is_network(model) or model.endswith("(mean)"):
            shifted, chosen = with_tuned_threshold(fold, y, proba)
            pooled[f"{model} @ cv threshold", seed] = (fold, y, shifted, groups)
            thresholds[f"{model} @ cv threshold", seed] = chosen
        if _in_forest(model) and (
            _is_network(model) or model.endswith("(mean)") or model == REFERENCE
        ):
            adapted, chosen = per_patient(fold, y, proba, groups)
            pooled[f"{model}{PER_PATIENT}", seed] = (fold, y, adapted, groups)
            thresholds[f"{model}{PER_PATIENT}", seed] = chosen
            if coords is not None:
                xy, coords_groups = coords
                np.testing.assert_array_equal(groups, coords_groups)
                for name, prior in (
                    (f"{model}{NEIGHBOURS}", False),
                    (f"{model}{PER_PATIENT}{NEIGHBOURS}", True),
                ):
                    smoothed, chosen = with_neighbours(
                        fold, y, proba, groups, xy, prior
                    )
                    pooled[name, seed] = (fold, y, smoothed, groups)
                    thresholds[name, seed] = chosen
    rows, forest = [], []
    for (model, seed), (_, y, proba, groups) in sorted(pooled.items()):
        row = {"model": model, "seed": seed, **scores(y, proba, groups)}
        row["IDC called"] = float(np.mean(proba > 0.5))
        for column, against in (
            (REFERENCE, REFERENCE),
            (BASE_RUN, BASE_RUN),
            (SAME_CONTEXT, REFERENCE + _context(model)),
        ):
            if (
                (against, seed) not in pooled
                or against == model
                or (column == SAME_CONTEXT and not _context(model))
            ):
                row[f"- {column}"] = ""
                continue
            _, y_ref, p_ref, g_ref = pooled[against, seed]
            np.testing.assert_array_equal(groups, g_ref)
            # The model's calls first: the difference is model minus reference.
            result = paired_bootstrap(
                y, (proba > 0.5).astype(int), (p_ref > 0.5).astype(int), groups
            )
            row[f"- {column}"] = (
                f"{result['difference']:+.3f} "
                f"[{result['low']:+.3f}, {result['high']:+.3f}]"
            )
            if column == REFERENCE and _in_forest(model):
                # The forest plot reads reference minus model: a model that
                # leads features-hgb lies below 0, in red.
                forest.append(
                    {
                        "model": f"{model} (seed {seed})",
                        "difference": -result["difference"],
                        "low": -result["high"],
                        "high": -result["low"],
                    }
                )
        rows.append(row)
    frame = pd.DataFrame(rows)
    lines = [frame.to_markdown(index=False, floatfmt=".3f"), ""]
    if thresholds:
        lines.append(
            "Chosen on the other folds (fold: threshold, or the per-patient "
            "prior's strength in patches, or the neighbours' weight w and the "
            "strength s):"
        )
        lines.append("")
        for (model, seed), chosen in sorted(thresholds.items()):
            values = ", ".join(
                f"{k}: {v}" if isinstance(v, str) else f"{k}: {v:g}"
                for k, v in chosen.items()
            )
            lines.append(f"- {model}, seed {seed}: {values}")
    calibrated = [
        m
        for m, s in pooled
        if s == 0 and m != BASE_RUN and (_is_network(m) or "(mean)" in m)
    ]
    lines += ["", "Calibration per patient (seed 0):", ""]
    lines.append(calibration(pooled, (BASE_RUN, REFERENCE, *sorted(calibrated))))
    if figures is not None and forest:
        figures.mkdir(parents=True, exist_ok=True)
        differences = pd.DataFrame(forest).set_index("model")
        differences = differences.sort_values("difference", ascending=False)
        differences.attrs["reference"] = REFERENCE
        figure, _, _ = plot_paired_differences(differences)
        figure.savefig(figures / "cv_select_differences.png", dpi=110)
    return "\n".join(lines)


def calibration(pooled: dict, models=(BASE_RUN, REFERENCE), seed: int = 0) -> str:
    """Per patient: the mean IDC probability against the patient's IDC share, and
    how often nearly all-negative patients (under 5% IDC) are called IDC."""
    rows = []
    for model in models:
        if (model, seed) not in pooled:
            continue
        _, y, proba, groups = pooled[model, seed]
        frame = pd.DataFrame({"y": y, "p": proba, "call": proba > 0.5, "g": groups})
        per = frame.groupby("g").agg(share=("y", "mean"), mean_p=("p", "mean"))
        per["calls"] = frame.groupby("g")["call"].mean()
        negative = per[per["share"] < 0.05]
        rows.append(
            {
                "model": model,
                "seed": seed,
                "patients": len(per),
                "mean abs(P(IDC) - IDC share) per patient": float(
                    (per["mean_p"] - per["share"]).abs().mean()
                ),
                "mean P(IDC) - IDC share": float((per["mean_p"] - per["share"]).mean()),
                "patients under 5% IDC": len(negative),
                "their patches called IDC": float(negative["calls"].mean()),
                "Brier": float(np.mean((proba - y) ** 2)),
            }
        )
    return pd.DataFrame(rows).to_markdown(index=False, floatfmt=".3f")


def inner_against_outer(out: Path) -> str:
    """The inner validation figure that early stopping chose on, beside the
    held-out fold's score: how far the one small split's estimate is off."""
    frame = pd.DataFrame(_records(out / "folds.jsonl"))
    if frame.empty:
        return ""
    frame["held-out bacc"] = [t["balanced_accuracy"] for t in frame["test"]]
    summary = frame.groupby(["model", "seed"]).agg(
        inner_valid_bacc=("inner_valid_bacc", "mean"),
        held_out_bacc=("held-out bacc", "mean"),
        best_epoch=("best_epoch", "mean"),
        fit_min=("fit_s", lambda s: s.mean() / 60),
    )
    summary["gap"] = summary["inner_valid_bacc"] - summary["held_out_bacc"]
    return summary.reset_index().to_markdown(index=False, floatfmt=".3f")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(REPO_ROOT / "results" / "cv_select"))
    parser.add_argument(
        "--reuse",
        default=str(REPO_ROOT / "results" / "split_cv"),
        help="the final table's runs (split_cv.py), paired with these",
    )
    parser.add_argument("--levers", nargs="+", default=["ema"], choices=sorted(LEVERS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument(
        "--fold-indices",
        type=int,
        nargs="+",
        help="run only these folds (0-based), e.g. to share the folds between two "
        "processes of one thread each",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", default=str(CACHE))
    parser.add_argument(
        "--checkpoints", default=str(REPO_ROOT / ".cache" / "cv_select_checkpoints")
    )
    parser.add_argument("--table", action="store_true", help="write the table only")
    parser.add_argument("--markdown", default=None, help="write the table here too")
    parser.add_argument("--figures", default=None, help="folder for its figure")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if not args.table:
        run(args)
    figures = None if args.figures is None else Path(args.figures)
    text = table(
        Path(args.out), Path(args.reuse), figures, pooled_coords(Path(args.cache))
    )
    inner = inner_against_outer(Path(args.out))
    if inner:
        text += "\n\nInner validation split against the held-out fold:\n\n" + inner
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")


if __name__ == "__main__":
    main()

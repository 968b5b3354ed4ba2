"""Ship the models chosen by cross-validation: thresholds, ensembles, the cards.

``load_pretrained("mlbn-small-all")``, ``load_pretrained("mlbn-hgb")``,
``load_pretrained("mlbn-hgb-patient")`` and ``load_pretrained("mlbn-hgb-context")``
(the default) are built in two steps:

1. ``scripts/build/train_pretrained.py --name mlbn-small-all --every-patch
   --max-epochs 6`` trains the network on every patch of the 114 patients the
   split allows and writes its weights and card.
2. This script, from that network and the cross-validation by patient of
   ``scripts/experiments/cv_select.py`` (``results/cv_select`` and
   ``results/split_cv``):

   - chooses each model's decision threshold on the out-of-fold probabilities of
     the 111 training and validation patients (both seeds pooled), with
     scikit-learn's ``TunedThresholdClassifierCV`` on balanced accuracy;
   - scores each model out of fold with the threshold chosen on the *other* folds,
     and its lead over features-hgb with a paired bootstrap over patients: the
     card's ``cross_validation``;
   - fits features-hgb on the network's patches, writes it with ``skops.io``, and
     writes the ensemble's card (``mlbn-hgb.json``) beside the network's, whose
     card gains its ``operating_point`` and ``cross_validation``;
   - chooses the strength of the per-patient prior (``adapt_to_patients``) on the
     ensemble's out-of-fold probabilities, scores it out of fold with the
     strength chosen on the other folds, and writes ``mlbn-hgb-patient.json``:
     the same files, adapted to each patient's IDC share when ``predict`` is
     given the patients;
   - chooses the neighbours' weight (``smooth_neighbours``) and the strength
     together the same way, on the positions in the archive's file names, and
     writes ``mlbn-hgb-context.json``: the same files, each patch mixed with its
     neighbours when ``predict`` is given their positions.

The cross-validated models are trained on at most 60 patches per patient (the
protocol's budget); the shipped ones on every patch, a step the cards state.
``--cards-only`` rewrites the cards' ``operating_point``, ``cross_validation`` and
descriptions from the results and keeps the shipped files as they are. ::

    python scripts/build/ship_cv_models.py
    python scripts/build/ship_cv_models.py --cards-only
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import skops.io
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from idc_sklearn import (
    PRETRAINED,
    make_baseline,
    paired_bootstrap,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
from cv_select import (  # noqa: E402
    NEIGHBOUR_WEIGHTS,
    REFERENCE,
    STRENGTHS,
    by_strength,
    ensembles,
    neighbour_candidates,
    per_patient,
    pooled_coords,
    pooled_predictions,
    tuned_threshold,
    with_neighbours,
    with_tuned_threshold,
)
from shared_patients import EXTRA_FOLDER, FOLDERS, REPO_ROOT  # noqa: E402
from train_pretrained import (  # noqa: E402
    CACHE,
    PACKAGE_FOLDER,
    file_sha256,
    load_training_patches,
)

NETWORK, ENSEMBLE, PATIENT = "mlbn-small-all", "mlbn-hgb", "mlbn-hgb-patient"
CONTEXT = "mlbn-hgb-context"
# The cross-validated runs each shipped model stands for (cv_select.py's names).
CV_RUN = {NETWORK: "base", ENSEMBLE: "base & hgb (mean)"}
# The runs' records behind each (split_cv.py's names: base is its MLBN run).
CV_RECORDS = {NETWORK: ("mlbn-inception",), ENSEMBLE: ("mlbn-inception", REFERENCE)}
COMMAND = {
    NETWORK: (
        f"python scripts/build/train_pretrained.py --name {NETWORK} --every-patch "
        "--max-epochs 6 --threads 1 --seed 0"
    ),
    ENSEMBLE: "python scripts/build/ship_cv_models.py",
    PATIENT: "python scripts/build/ship_cv_models.py",
    CONTEXT: "python scripts/build/ship_cv_models.py",
}


def machines(reuse: Path, models) -> list[dict]:
    """The machines and dates ``models``' cross-validated folds ran on, from the
    records of ``split_cv.py`` (``reuse``): one entry per machine and torch."""
    found = {}
    for line in (reuse / "folds.jsonl").read_text("utf-8").splitlines():
        record = json.loads(line)
        if record["model"] not in models:
            continue
        machine = dict(record["machine"])
        date = machine.pop("date")
        key = json.dumps(machine, sort_keys=True)
        entry = found.setdefault(key, {**machine, "dates": set(), "folds": 0})
        entry["dates"].add(date)
        entry["folds"] += 1
    return [
        {**entry, "dates": sorted(entry["dates"])}
        for entry in sorted(found.values(), key=lambda e: min(e["dates"]))
    ]


def cross_validation(pooled: dict, run: str, runs: list[dict] | None = None) -> dict:
    """``run``'s out-of-fold scores per seed, each fold at the threshold chosen on
    the other folds, and its lead over features-hgb (paired, by patient); with
    ``runs``, the machines and dates the folds were trained on."""
    seeds = sorted(seed for model, seed in pooled if model == run)
    if not seeds:
        raise SystemExit(f"no complete cross-validated run {run!r}: run cv_select.py")
    per_seed = {}
    for seed in seeds:
        fold, y, proba, groups = pooled[run, seed]
        shifted, thresholds = with_tuned_threshold(fold, y, proba)
        hgb = pooled[REFERENCE, seed][2]
        lead = paired_bootstrap(
            y, (shifted > 0.5).astype(int), (hgb > 0.5).astype(int), groups
        )
        per_seed[str(seed)] = {
            "balanced_accuracy": round(
                float(balanced_accuracy_score(y, shifted > 0.5)), 4
            ),
            "balanced_accuracy_at_0.5": round(
                float(balanced_accuracy_score(y, proba > 0.5)), 4
            ),
            "roc_auc": round(float(roc_auc_score(y, proba)), 4),
            "features-hgb_balanced_accuracy": round(
                float(balanced_accuracy_score(y, hgb > 0.5)), 4
            ),
            "lead_over_features-hgb": round(float(lead["difference"]), 4),
            "lead_over_features-hgb_95": [
                round(float(lead["low"]), 4),
                round(float(lead["high"]), 4),
            ],
            "thresholds_by_fold": {str(k): round(v, 3) for k, v in thresholds.items()},
        }
    _, y, _, groups = pooled[run, seeds[0]]
    return {
        "protocol": (
            "GroupKFold(5) over the Cruz-Roa split's 111 training and validation "
            "patients in ../shared (scripts/experiments/cv_select.py); each fold's "
            "model trained on at most 60 patches per patient of the other folds, 10 "
            "epochs with early stopping on an inner split; scored on every patch of "
            "the held-out patients, each fold at the threshold chosen on the other "
            "folds; interval: 95%, paired bootstrap over patients"
        ),
        "run": run,
        "patients": len(np.unique(groups)),
        "patches": len(y),
        "seeds": per_seed,
        **({"machines": runs} if runs is not None else {}),
    }


def patient_prior(pooled: dict, run: str, runs: list[dict]) -> dict:
    """The per-patient prior's strength chosen on every out-of-fold score of
    ``run`` (both seeds), and ``run`` adapted per patient scored out of fold with
    the strength chosen on the other folds, against features-hgb as it is."""
    seeds = sorted(seed for model, seed in pooled if model == run)
    per_seed, pooled_y, pooled_calls = {}, [], {s: [] for s in STRENGTHS}
    for seed in seeds:
        fold, y, proba, groups = pooled[run, seed]
        every = by_strength(proba, groups)
        adapted, strengths = per_patient(fold, y, proba, groups, every)
        references = {"features-hgb": pooled[REFERENCE, seed][2]}
        per_seed[str(seed)] = {
            **_seed_scores(y, adapted, proba, groups, references),
            "strengths_by_fold": strengths,
        }
        pooled_y.append(y)
        for strength in STRENGTHS:
            pooled_calls[strength].append(every[strength] > 0.5)
    strength = _best_on_every_score(pooled_calls, pooled_y)
    _, y, _, groups = pooled[run, seeds[0]]
    return {
        "per_patient": {
            "strength": strength,
            "train_prior": 0.5,
            "chosen_by": (
                f"the best balanced accuracy at 0.5 among strengths {list(STRENGTHS)} "
                f"on the out-of-fold probabilities of {run!r} adapted per patient, "
                f"over the 111 patients, seeds {seeds} pooled"
            ),
        },
        "cross_validation": {
            "protocol": (
                "GroupKFold(5) over the Cruz-Roa split's 111 training and "
                "validation patients in ../shared (scripts/experiments/"
                "cv_select.py); each fold's models trained on at most 60 patches "
                "per patient of the other folds; every patch of the held-out "
                "patients scored, each patient's probabilities adapted to its own "
                "IDC share from its own patches (no label), at the strength chosen "
                "on the other folds, IDC above 0.5; interval: 95%, paired bootstrap "
                "over patients"
            ),
            "run": f"{run} per patient",
            "patients": len(np.unique(groups)),
            "patches": len(y),
            "seeds": per_seed,
            "machines": runs,
        },
    }


def _best_on_every_score(calls: dict, y_parts: list):
    """The key of ``calls`` (``{key: [calls of each seed]}``) with the best
    balanced accuracy over every seed's out-of-fold scores, the first on a tie."""
    y = np.concatenate(y_parts)
    return max(
        calls, key=lambda c: balanced_accuracy_score(y, np.concatenate(calls[c]))
    )


def _seed_scores(y, adapted, unadapted, groups, references: dict) -> dict:
    """One seed's out-of-fold scores of ``adapted``: balanced accuracy at 0.5 and
    ROC AUC; each reference's balanced accuracy and ``adapted``'s lead over it;
    its gain over ``unadapted``; leads and gains paired over patients, with 95%
    intervals."""
    calls = (adapted > 0.5).astype(int)
    scores = {
        "balanced_accuracy": round(float(balanced_accuracy_score(y, calls)), 4),
        "roc_auc": round(float(roc_auc_score(y, adapted)), 4),
    }

    def paired(key: str, reference) -> None:
        result = paired_bootstrap(y, calls, (reference > 0.5).astype(int), groups)
        scores[key] = round(float(result["difference"]), 4)
        scores[f"{key}_95"] = [
            round(float(result["low"]), 4),
            round(float(result["high"]), 4),
        ]

    for name, reference in references.items():
        scores[f"{name}_balanced_accuracy"] = round(
            float(balanced_accuracy_score(y, reference > 0.5)), 4
        )
        paired(f"lead_over_{name}", reference)
    paired("gain_over_unadapted_at_0.5", unadapted)
    return scores


def patient_context(pooled: dict, run: str, runs: list[dict], coords) -> dict:
    """The neighbours' weight and the prior's strength chosen together on every
    out-of-fold score of ``run`` (both seeds), and ``run`` with both scored out of
    fold with the pair chosen on the other folds: against features-hgb as it is,
    against features-hgb given the same context (its pair chosen the same way),
    and against ``run`` unadapted. ``coords`` is ``pooled_coords``'s."""
    xy, coords_groups = coords
    seeds = sorted(seed for model, seed in pooled if model == run)
    per_seed, pooled_y, pooled_calls = {}, [], {}
    for seed in seeds:
        fold, y, proba, groups = pooled[run, seed]
        np.testing.assert_array_equal(groups, coords_groups)
        candidates = neighbour_candidates(proba, groups, xy, prior=True)
        adapted, chosen = with_neighbours(fold, y, proba, groups, xy, True, candidates)
        hgb = pooled[REFERENCE, seed][2]
        hgb_context, _ = with_neighbours(fold, y, hgb, groups, xy, prior=True)
        references = {"features-hgb": hgb, "features-hgb_same_context": hgb_context}
        per_seed[str(seed)] = {
            **_seed_scores(y, adapted, proba, groups, references),
            "chosen_by_fold": chosen,
        }
        pooled_y.append(y)
        for key, candidate in candidates.items():
            pooled_calls.setdefault(key, []).append(candidate > 0.5)
    weight, strength = _best_on_every_score(pooled_calls, pooled_y)
    _, y, _, groups = pooled[run, seeds[0]]
    return {
        "per_patient": {
            "strength": strength,
            "train_prior": 0.5,
            "neighbour_weight": weight,
            "stride": 50.0,
            "chosen_by": (
                "the best balanced accuracy at 0.5 among neighbours' weights "
                f"{list(NEIGHBOUR_WEIGHTS)} and strengths {list(STRENGTHS)} on the "
                f"out-of-fold probabilities of {run!r}, each patch mixed with its "
                "neighbours' (smooth_neighbours, 5x5 window, Gaussian of one "
                "patch) then adapted per patient, over the 111 patients, seeds "
                f"{seeds} pooled"
            ),
        },
        "cross_validation": {
            "protocol": (
                "GroupKFold(5) over the Cruz-Roa split's 111 training and "
                "validation patients in ../shared (scripts/experiments/"
                "cv_select.py); each fold's models trained on at most 60 patches "
                "per patient of the other folds; every patch of the held-out "
                "patients scored, each probability mixed with its neighbours' on "
                "the patient's slide (the positions in the archive's file names) "
                "and adapted to the patient's own IDC share from its own patches "
                "(no label), at the weight and strength chosen on the other "
                "folds, IDC above 0.5; interval: 95%, paired bootstrap over "
                "patients"
            ),
            "run": f"{run} per patient & neighbours",
            "patients": len(np.unique(groups)),
            "patches": len(y),
            "seeds": per_seed,
            "machines": runs,
        },
    }


def operating_point(pooled: dict, run: str) -> dict:
    """The threshold of the best balanced accuracy on every out-of-fold score."""
    seeds = sorted(seed for model, seed in pooled if model == run)
    y = np.concatenate([pooled[run, seed][1] for seed in seeds])
    proba = np.concatenate([pooled[run, seed][2] for seed in seeds])
    return {
        "threshold": round(tuned_threshold(proba, y), 3),
        "chosen_by": (
            "TunedThresholdClassifierCV(scoring='balanced_accuracy', cv='prefit', "
            "thresholds 0.05 to 0.95 by 0.01) on the out-of-fold probabilities of "
            f"{run!r} over the 111 patients, seeds {seeds} pooled"
        ),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", default=str(PACKAGE_FOLDER))
    parser.add_argument("--cv", default=str(REPO_ROOT / "results" / "cv_select"))
    parser.add_argument("--reuse", default=str(REPO_ROOT / "results" / "split_cv"))
    parser.add_argument("--cache", default=str(CACHE))
    parser.add_argument(
        "--cv-cache",
        default=str(REPO_ROOT / ".cache" / "idc_split"),
        help="cv_select.py's cache of the shared patches (their positions)",
    )
    parser.add_argument(
        "--cards-only",
        action="store_true",
        help="rewrite the cards' figures only; keep the shipped files",
    )
    args = parser.parse_args(argv)
    folder = Path(args.folder)

    pooled = pooled_predictions(Path(args.cv), Path(args.reuse))
    pooled.update(ensembles(pooled))
    figures = {
        name: {
            "operating_point": operating_point(pooled, CV_RUN[name]),
            "cross_validation": cross_validation(
                pooled, CV_RUN[name], machines(Path(args.reuse), CV_RECORDS[name])
            ),
        }
        for name in (NETWORK, ENSEMBLE)
    }
    started = time.perf_counter()
    card_path = folder / PRETRAINED[NETWORK]["card"]
    card = json.loads(card_path.read_text("utf-8"))
    card["command"] = COMMAND[NETWORK]
    card.update(figures[NETWORK])
    _write_json(card_path, card)
    runs = machines(Path(args.reuse), CV_RECORDS[ENSEMBLE])
    adapted = patient_prior(pooled, CV_RUN[ENSEMBLE], runs)
    context = patient_context(
        pooled, CV_RUN[ENSEMBLE], runs, pooled_coords(Path(args.cv_cache))
    )
    if args.cards_only:
        ensemble_path = folder / PRETRAINED[ENSEMBLE]["card"]
        ensemble = json.loads(ensemble_path.read_text("utf-8"))
        ensemble.update(figures[ENSEMBLE])
        ensemble["description"] = PRETRAINED[ENSEMBLE]["description"]
        _write_json(ensemble_path, ensemble)
        return _patient_cards(folder, card, ensemble, adapted, context)

    # features-hgb on the very patches the network trained on.
    X, y, groups, _ = load_training_patches(
        Path(args.cache), None, card["training"]["seed"], (*FOLDERS, EXTRA_FOLDER)
    )
    assert len(y) == card["data"]["patches"], "not the network's patches"
    features = make_baseline("features-hgb", random_state=0).fit(X, y)
    features_path = folder / PRETRAINED[ENSEMBLE]["features"]
    skops.io.dump(features, features_path, compression=zipfile.ZIP_DEFLATED)
    members = {
        "mlbn": {
            "name": NETWORK,
            "file": PRETRAINED[NETWORK]["file"],
            "sha256": card["sha256"],
        },
        "features-hgb": {
            "file": features_path.name,
            "file_bytes": features_path.stat().st_size,
            "sha256": file_sha256(features_path),
            "steps": [name for name, _ in features.steps],
            "fit_s": round(time.perf_counter() - started, 1),
        },
    }
    ensemble = {
        **{key: card[key] for key in ("classes", "data", "machine", "versions")},
        "name": ENSEMBLE,
        "description": PRETRAINED[ENSEMBLE]["description"],
        "estimator": (
            "sklearn.model_selection.FixedThresholdClassifier("
            "idc_sklearn.PatientVotingClassifier(voting='soft') of "
            "sklearn.frozen.FrozenEstimator members)"
        ),
        "file": card["file"],
        "file_bytes": card["file_bytes"],
        "sha256": card["sha256"],
        "members": members,
        "recipe": {"mlbn": card["recipe"], "features-hgb": "make_baseline"},
        "training": card["training"],
        "date": datetime.date.today().isoformat(),
        "command": COMMAND[ENSEMBLE],
        "validation": None,
        **figures[ENSEMBLE],
    }
    _write_json(folder / PRETRAINED[ENSEMBLE]["card"], ensemble)
    return _patient_cards(folder, card, ensemble, adapted, context)


def _patient_cards(
    folder: Path, card: dict, ensemble: dict, adapted: dict, context: dict
) -> int:
    """``mlbn-hgb-patient``'s and ``mlbn-hgb-context``'s cards: the ensemble's
    files and operating point (what ``predict`` does without the patients), their
    per-patient prior (and neighbours' weight) and scores."""
    cards = {NETWORK: card, ENSEMBLE: ensemble}
    for name, figures in ((PATIENT, adapted), (CONTEXT, context)):
        cards[name] = {
            **ensemble,
            "name": name,
            "description": PRETRAINED[name]["description"],
            "estimator": (
                "idc_sklearn.PatientPriorClassifier(sklearn.frozen.FrozenEstimator("
                f"the {ENSEMBLE} model))"
            ),
            "command": COMMAND[name],
            "date": datetime.date.today().isoformat(),
            "cross_validation_without_patients": ensemble["cross_validation"],
            **figures,
        }
        _write_json(folder / PRETRAINED[name]["card"], cards[name])
    return _report(cards)


def _report(cards: dict) -> int:
    for name, made in cards.items():
        print(name, json.dumps(made["operating_point"]), flush=True)
        if "per_patient" in made:
            print(json.dumps(made["per_patient"]), flush=True)
        print(json.dumps(made["cross_validation"]["seeds"], indent=1), flush=True)
    return 0


def _write_json(path: Path, data: dict) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    partial.replace(path)


if __name__ == "__main__":
    raise SystemExit(main())

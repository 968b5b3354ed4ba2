"""Compare models on IDC patches with patient-grouped cross-validation.

numpy, pandas, sklearn and tqdm only: torch is imported by the CNN estimators
themselves, so comparing sklearn pipelines alone never loads it.
"""

from __future__ import annotations

import functools
import inspect
import numbers
import sys
import time
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import balanced_accuracy_score, get_scorer
from sklearn.model_selection import GroupKFold, StratifiedGroupKFold
from sklearn.utils import Bunch
from sklearn.utils.validation import has_fit_parameter
from tqdm import tqdm

from idc_sklearn._checks import final_step
from idc_sklearn.metrics import SCORING, paired_bootstrap
from idc_sklearn.spatial import check_coords

__all__ = ["compare_models"]

DEFAULT_FOLDS = 5
SPLIT_PARTS = ("train", "val", "test")
_DIFFERENCE_COLUMNS = ("difference", "low", "high", "n_patients")
_PREDICT_METHODS = (
    "predict",
    "predict_proba",
    "predict_log_proba",
    "decision_function",
)


class _CachedPredictions:
    """A fitted estimator whose predictions on one test set are computed once.

    Each scorer asks the estimator again for ``predict`` or ``predict_proba``; for a
    CNN that is a full pass over the test patches per metric. This proxy answers
    every call of a prediction method with its first result, so it must only ever
    see one ``X``. Everything else (``classes_``, tags, ``hasattr`` checks) is the
    estimator's own. ``params`` are the test patches' metadata each prediction
    method is called with (:func:`_predict_params`).
    """

    def __init__(self, estimator, params: dict[str, dict] | None = None) -> None:
        self._estimator = estimator
        self._params = params or {}
        self._cache: dict[str, np.ndarray] = {}

    def remember(self, method: str, result: np.ndarray) -> None:
        self._cache[method] = result

    def cached(self, method: str) -> np.ndarray | None:
        """The result of ``method`` if it was called, else None."""
        return self._cache.get(method)

    def __getattr__(self, name: str):
        attribute = getattr(self._estimator, name)
        if name not in _PREDICT_METHODS:
            return attribute

        # Scorers read the method's __name__ to post-process probabilities.
        @functools.wraps(attribute)
        def cached(X):
            if name not in self._cache:
                self._cache[name] = attribute(X, **self._params.get(name, {}))
            return self._cache[name]

        return cached


def _predict_params(estimator, metadata: dict) -> dict[str, dict]:
    """For each prediction method of ``estimator``, the test patches' metadata it
    takes by name: ``groups`` (the patients) and ``coords`` (the positions), as
    :class:`~idc_sklearn.PatientPriorClassifier`'s ``predict_proba`` takes them.

    Only parameters the method names count, as
    :func:`~sklearn.utils.validation.has_fit_parameter` reads ``fit``'s: a
    pipeline's ``**params`` would hand them to a last step that may not take them.
    """
    params = {}
    for method in _PREDICT_METHODS:
        function = getattr(estimator, method, None)
        if function is None:
            continue
        try:
            signature = inspect.signature(function).parameters
        except (TypeError, ValueError):
            continue
        named = {
            key: value
            for key, value in metadata.items()
            if value is not None
            and key in signature
            and signature[key].kind
            in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        }
        if named:
            params[method] = named
    return params


def _check_models(models) -> list[tuple[str, object]]:
    if isinstance(models, Mapping):
        pairs = list(models.items())
    elif isinstance(models, Iterable) and not isinstance(models, str):
        pairs = list(models)
        for pair in pairs:
            if not (isinstance(pair, tuple) and len(pair) == 2):
                raise TypeError(
                    "models must be a dict {name: estimator} or a list of "
                    f"(name, estimator) pairs; got the item {pair!r}."
                )
    else:
        raise TypeError(
            "models must be a dict {name: estimator} or a list of (name, estimator) "
            f"pairs; got {type(models).__name__}."
        )
    if not pairs:
        raise ValueError("models is empty; pass at least one (name, estimator).")
    names = [name for name, _ in pairs]
    for name, estimator in pairs:
        if not isinstance(name, str) or not name:
            raise TypeError(f"models must be named by non-empty strings; got {name!r}.")
        if not (hasattr(estimator, "fit") and hasattr(estimator, "get_params")):
            raise TypeError(
                f"models[{name!r}] must be a scikit-learn estimator (with fit and "
                f"get_params); got {type(estimator).__name__}."
            )
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"models names must be unique; repeated: {duplicates}.")
    return pairs


def _check_data(X, y, groups):
    if not hasattr(X, "shape"):
        X = np.asarray(X)
    if len(X.shape) < 2:
        raise ValueError(
            "X must hold patches, shape (n, height, width, channels) or "
            f"(n, height * width * channels); got shape {X.shape}."
        )
    n = X.shape[0]
    if n == 0:
        raise ValueError(f"X holds no patches; got shape {X.shape}.")
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(
            f"y must hold one label per patch, shape ({n},) like X; got shape "
            f"{y.shape}."
        )
    if groups is None:
        raise ValueError(
            "groups is None; pass the patient id of each patch, so that no patient "
            "is on both sides of a split."
        )
    groups = np.asarray(groups)
    if groups.ndim != 1 or groups.shape[0] != n:
        raise ValueError(
            f"groups must hold one patient id per patch, shape ({n},) like X; got "
            f"shape {groups.shape}."
        )
    if pd.isna(groups).any():
        raise ValueError("groups contains a missing patient id (None or NaN).")
    return X, y, groups


def _check_scoring(scoring, y) -> dict:
    if scoring is None:
        labels = set(np.unique(y).tolist())
        if y.dtype.kind not in "biuf" or not labels <= {0, 1}:
            raise ValueError(
                "y must hold the labels 0 (no IDC) and 1 (IDC) for the default "
                f"scoring; got labels {sorted(map(repr, labels))[:10]}. Map them to "
                "0/1 or pass your own scoring."
            )
        return dict(SCORING)
    if isinstance(scoring, str):
        scoring = [scoring]
    if isinstance(scoring, Mapping):
        items = list(scoring.items())
    elif isinstance(scoring, Iterable):
        items = [(name, name) for name in scoring]
    else:
        raise TypeError(
            "scoring must be None, a metric name, a list of names or a dict "
            f"{{name: scorer}}; got {type(scoring).__name__}."
        )
    if not items:
        raise ValueError("scoring is empty; name at least one metric.")
    scorers = {}
    for name, scorer in items:
        if isinstance(scorer, str):
            scorer = SCORING[scorer] if scorer in SCORING else _named_scorer(scorer)
        if not callable(scorer):
            raise TypeError(
                f"scoring[{name!r}] must be a scorer, callable as "
                f"scorer(estimator, X, y); got {type(scorer).__name__}."
            )
        scorers[str(name)] = scorer
    return scorers


def _named_scorer(name: str):
    try:
        return get_scorer(name)
    except ValueError as exc:
        raise ValueError(
            f"scoring names an unknown metric {name!r}; expected one of "
            f"{sorted(SCORING)} or a scikit-learn scorer name."
        ) from exc


def _check_fixed_split(split: Mapping, groups: np.ndarray) -> dict[str, list[str]]:
    unknown_parts = sorted(set(split) - set(SPLIT_PARTS))
    if unknown_parts or "train" not in split or "test" not in split:
        raise ValueError(
            "cv as a patient split must be a dict with the keys 'train', 'test' "
            f"and optionally 'val' (as read_patient_split returns); got keys "
            f"{sorted(split)}."
        )
    present = set(groups.astype(str).tolist())
    parts: dict[str, list[str]] = {}
    owner: dict[str, str] = {}
    for part in SPLIT_PARTS:
        if part not in split:
            continue
        if isinstance(split[part], str) or not isinstance(split[part], Iterable):
            raise TypeError(
                f"cv[{part!r}] must be a list of patient ids; got "
                f"{type(split[part]).__name__}."
            )
        ids = [str(patient) for patient in split[part]]
        if not ids:
            raise ValueError(f"cv[{part!r}] lists no patients.")
        missing = [patient for patient in ids if patient not in present]
        if missing:
            raise ValueError(
                f"cv[{part!r}] names {len(missing)} patient(s) absent from groups: "
                f"{missing[:10]}{' ...' if len(missing) > 10 else ''}."
            )
        for patient in ids:
            if owner.setdefault(patient, part) != part:
                raise ValueError(
                    f"cv lists patient {patient!r} in both {owner[patient]!r} and "
                    f"{part!r}; a patient must be on one side only."
                )
        parts[part] = ids
    return parts


def _resolve_cv(cv, X, y, groups):
    """Return ``(folds, val_patients, description)`` for the argument ``cv``."""
    n_patients = len(pd.unique(groups))
    if isinstance(cv, Mapping):
        parts = _check_fixed_split(cv, groups)
        patient = groups.astype(str)
        train = np.flatnonzero(np.isin(patient, parts["train"] + parts.get("val", [])))
        test = np.flatnonzero(np.isin(patient, parts["test"]))
        sizes = "/".join(str(len(parts.get(part, []))) for part in SPLIT_PARTS)
        description = f"fixed patient split (train/val/test patients {sizes})"
        return [(train, test)], parts.get("val"), description
    if cv is None:
        cv = DEFAULT_FOLDS
    if isinstance(cv, numbers.Integral) and not isinstance(cv, bool):
        if cv < 2:
            raise ValueError(f"cv must be at least 2 folds; got {cv}.")
        cv = GroupKFold(n_splits=int(cv))
    elif not (hasattr(cv, "split") and hasattr(cv, "get_n_splits")):
        raise TypeError(
            "cv must be None, a number of folds, a scikit-learn splitter or a patient "
            "split dict {'train': [...], 'val': [...], 'test': [...]}; got "
            f"{type(cv).__name__}."
        )
    if isinstance(cv, (GroupKFold, StratifiedGroupKFold)) and cv.n_splits > n_patients:
        raise ValueError(
            f"cv asks for {cv.n_splits} folds but groups holds only {n_patients} "
            "patients; use at most as many folds as patients."
        )
    folds = list(cv.split(X, y, groups))
    return folds, None, f"{cv!r} over {n_patients} patients"


def _is_patch_net(estimator) -> bool:
    # An estimator of the PatchNetClassifier family can only exist once its module
    # has been imported, so looking it up there keeps torch out of comparisons of
    # sklearn models.
    classifier = sys.modules.get("idc_sklearn.classifier")
    return classifier is not None and isinstance(
        estimator, classifier.PatchNetClassifier
    )


def _prepare(estimator, val_patients):
    estimator = clone(estimator)
    if val_patients is None:
        return estimator
    # A CNN, or one that a PatientPriorClassifier wraps (compare --context).
    prefix = ""
    prior_shift = sys.modules.get("idc_sklearn.prior_shift")
    if prior_shift is not None and isinstance(
        estimator, prior_shift.PatientPriorClassifier
    ):
        prefix = "estimator__"
        net = estimator.estimator
    else:
        net = estimator
    if _is_patch_net(net):
        from idc_sklearn.split import PatientValidSplit

        split = PatientValidSplit(valid_groups=val_patients)
        estimator.set_params(**{f"{prefix}train_split": split})
    return estimator


def _run_fold(estimator, scorers, fold) -> tuple[dict, _CachedPredictions]:
    """Fit and score one fold; return its row and the test set's predictions."""
    X_train, y_train, groups_train, X_test, y_test, metadata = fold
    fit_kwargs = (
        {"groups": groups_train} if has_fit_parameter(estimator, "groups") else {}
    )
    start = time.perf_counter()
    estimator.fit(X_train, y_train, **fit_kwargs)
    fit_seconds = time.perf_counter() - start
    params = _predict_params(estimator, metadata)
    predictions = _CachedPredictions(estimator, params)
    start = time.perf_counter()
    predicted = estimator.predict(X_test, **params.get("predict", {}))
    predict_seconds = time.perf_counter() - start
    predictions.remember("predict", predicted)
    row = {
        name: scorer(predictions, X_test, y_test) for name, scorer in scorers.items()
    }
    row["fit_seconds"] = fit_seconds
    row["predict_seconds"] = predict_seconds
    row["n_test"] = len(y_test)
    return row, predictions


def _history(estimator) -> list[dict] | None:
    """The per-epoch records of a fitted skorch net, or of a pipeline ending in one.

    Plain dicts without the per-batch records, so details stay small and need no
    skorch to read; None for models that keep no history.
    """
    history = getattr(final_step(estimator), "history_", None)
    if history is None:
        return None
    return [
        {key: value for key, value in epoch.items() if key != "batches"}
        for epoch in history
    ]


def _idc_score(predictions: _CachedPredictions, positive):
    """The IDC score the scorers computed, and the method it came from.

    ``predict_proba``'s column of the positive class, else ``decision_function``;
    ``(None, None)`` where the scorers asked for neither, since another pass over
    the test patches only for the details would cost as much as scoring them.
    """
    proba = predictions.cached("predict_proba")
    if proba is not None:
        column = np.flatnonzero(np.asarray(predictions.classes_) == positive)
        # A model trained on one class only has one column.
        score = proba[:, column[0]] if column.size else np.zeros(len(proba))
        return score, "predict_proba"
    margin = predictions.cached("decision_function")
    if margin is not None and np.ndim(margin) == 1:
        return margin, "decision_function"
    return None, None


def _check_reference(reference, pairs) -> str:
    names = [name for name, _ in pairs]
    if reference is None:
        return next((name for name in names if name.startswith("mlbn")), names[0])
    if reference not in names:
        raise ValueError(
            f"reference must name one of the models {names}; got {reference!r}."
        )
    return reference


def _check_binary(y) -> np.ndarray:
    classes = np.unique(y)
    if classes.size != 2:
        raise ValueError(
            "return_details=True compares the models' predictions of two classes; "
            f"y holds {classes.size}: {classes.tolist()[:10]}."
        )
    return classes


def compare_models(
    models,
    X,
    y,
    groups,
    cv=None,
    scoring=None,
    *,
    coords=None,
    progress: bool = True,
    reference: str | None = None,
    return_details: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, Bunch]:
    """Cross-validate several models by patient and tabulate their scores.

    Each model is cloned and fitted afresh on every training fold and scored on
    the held-out patients. Estimators whose ``fit`` takes ``groups`` (the CNNs of
    :class:`~idc_sklearn.PatchNetClassifier`'s family) get the training fold's
    patient ids, so their internal early-stopping validation set holds out whole
    patients too. Estimators whose prediction methods take ``groups`` and
    ``coords`` by name (:class:`~idc_sklearn.PatientPriorClassifier`) get the
    held-out patches' patients and positions there: each patient's IDC share and
    each patch's neighbours enter their predictions, as they do in use.

    Parameters
    ----------
    models : dict of str to estimator, or list of (str, estimator)
        The models to compare, by name. They are cloned, never fitted in place.
    X : ndarray of shape (n, height, width, channels) or (n, h * w * c)
        Patches, as every model takes them. Only fold subsets ``X[indices]`` are
        copied.
    y : array-like of shape (n,)
        Labels; 0 (no IDC) and 1 (IDC) for the default scoring.
    groups : array-like of shape (n,)
        Patient id of each patch.
    cv : int, splitter, dict or None, default=None
        - None: ``GroupKFold(5)`` by patient.
        - int: that many ``GroupKFold`` folds.
        - a scikit-learn splitter, called as ``cv.split(X, y, groups)``.
        - a patient split ``{"train": [...], "val": [...], "test": [...]}`` as
          :func:`~idc_sklearn.read_patient_split` returns (``"val"`` optional):
          one fit on the train and val patients, scored on the test patients.
          The CNNs of the :class:`~idc_sklearn.PatchNetClassifier` family get
          ``train_split=PatientValidSplit(valid_groups=val)``, so the val patients
          are their early-stopping set; other models train on both. Patients in
          none of the lists are left out; the standard deviations are NaN.
    scoring : dict, list of str, str or None, default=None
        Metrics by name: a dict ``{name: scorer}`` of scorers called as
        ``scorer(estimator, X_test, y_test)`` (or of names), metric names (of
        :data:`~idc_sklearn.SCORING`, else scikit-learn's), or None for
        :data:`~idc_sklearn.SCORING`.
    coords : array-like of shape (n, 2), default=None
        Each patch's ``(x, y)`` position on its patient's slide (the archive's
        ``load_idc(...).frame[["x", "y"]]``), handed with the held-out patches to
        the prediction methods that take ``coords``. Models that take none are
        scored as without.
    progress : bool, default=True
        Show a tqdm progress bar over models and folds.
    reference : str, default=None
        The model the others are compared with in ``details.differences``: by
        default the first whose name starts with ``"mlbn"``, else the first.
    return_details : bool, default=False
        Also return the scores of each fold, the out-of-fold predictions and the
        paired differences (needs ``y`` with two classes).

    Returns
    -------
    table : pandas.DataFrame
        One row per model, indexed by name (index named ``"model"``) in the given
        order, with the columns ``<metric>_mean`` and ``<metric>_std`` for every
        metric of ``scoring`` (mean and sample standard deviation over folds; NaN
        with one fold), then ``fit_seconds`` (mean fit time per fold) and
        ``predict_patches_per_second`` (test patches over the time ``predict``
        took on them, all folds together). ``table.attrs`` holds ``"cv"`` (a
        description of the folds) and ``"n_folds"``.
    details : sklearn.utils.Bunch
        Only with ``return_details=True``:

        folds : pandas.DataFrame
            One row per model and fold: ``model``, ``fold`` (from 1), every
            metric, ``fit_seconds`` and ``n_test`` (test patches).
        predictions : pandas.DataFrame
            The test predictions of every fold, one row per test patch, in fold
            order, indexed by the patch's position in ``X`` (index ``"index"``;
            a splitter whose test sets overlap repeats it): ``patient``,
            ``fold``, ``y_true``, then per model ``<name>_pred`` (what
            ``predict`` returned) and ``<name>_score`` (the IDC score: column 1
            of ``predict_proba``, else ``decision_function``, whichever the
            scorers used; NaN where none did). ``predictions.attrs["score_method"]``
            maps each model to ``"predict_proba"``, ``"decision_function"`` or
            None. No model predicts twice for them: they are the predictions the
            scorers read.
        differences : pandas.DataFrame
            The reference model against every other, indexed by the other
            (index ``"model"``), best mean balanced accuracy over folds first:
            ``difference`` (the reference's balanced accuracy minus the other's,
            on all test patches of all folds pooled), ``low`` and ``high`` (the
            95% percentile interval of :func:`~idc_sklearn.metrics.paired_bootstrap`
            with 2,000 resamples of the test patients, seed 0) and ``n_patients``.
            ``differences.attrs`` holds ``"reference"`` and ``"best"`` (the first
            row's model; None with a single model).
        histories : dict of str to list of list of dict
            For each model that keeps a skorch history (the CNNs, alone or
            ending a pipeline), one history per fold in fold order: a dict per
            epoch, as skorch records it, without the per-batch records.

    Raises
    ------
    ValueError
        Naming the argument: lengths that differ from ``X``'s, no ``models``, more
        folds than patients, a split naming unknown or repeated patients, labels
        other than 0/1 with the default scoring.
    TypeError
        For ``models``, ``cv`` or ``scoring`` of the wrong kind.

    See Also
    --------
    idc_sklearn.SCORING : the default scorers.
    idc_sklearn.read_patient_split : the paper's fixed patient split.
    idc_sklearn.metrics.paired_bootstrap : the interval of ``details.differences``.

    Notes
    -----
    Why a loop of its own rather than :func:`~sklearn.model_selection.
    cross_validate` per model: the folds are split and each fold's training and
    test patches are copied once, for all the models (``cross_validate`` would copy
    them once per model: for the full archive, a 2 GB uint8 copy each time); the
    test predictions are kept, so the scorers, the out-of-fold predictions of
    ``details`` and the paired differences read the same ``predict`` call; and the
    fixed patient split of the paper, with its validation patients handed to the
    CNNs' early stopping, runs through the same path. Each fit is still a plain
    ``clone(model).fit(X_train, y_train, **fit_params)``, with ``groups`` where
    the model's ``fit`` takes them (:func:`~sklearn.utils.validation.
    has_fit_parameter`).

    The standard deviations over folds describe how scores vary from fold to
    fold; they are no interval for the difference between two models, whose fold
    scores move together. ``details.differences`` answers that: the models are
    scored on the same patches, so the difference is paired, and its interval
    comes from resampling the test patients (each patient once over all folds)
    with replacement, all their patches together, and scoring both models on
    each resample. The folds are pooled: each patient's patches were predicted by
    the models of the fold that held it out. The interval reflects which patients
    were tested, not the randomness of training; an interval that includes 0
    shows no clear lead.

    Examples
    --------
    >>> from sklearn.dummy import DummyClassifier
    >>> from idc_sklearn import compare_models, make_baseline, make_idc_patches
    >>> idc = make_idc_patches(n_patients=6, patches_per_patient=20, patch_size=32,
    ...                        random_state=0)
    >>> table = compare_models(
    ...     {"color": make_baseline("color-logreg", patch_shape=(32, 32, 3)),
    ...      "prior": DummyClassifier(strategy="prior")},
    ...     idc.data, idc.target, idc.groups, cv=3, progress=False,
    ... )
    >>> table.index.tolist()
    ['color', 'prior']
    >>> float(table.loc["prior", "balanced_accuracy_mean"])
    0.5
    >>> table, details = compare_models(
    ...     {"color": make_baseline("color-logreg", patch_shape=(32, 32, 3)),
    ...      "prior": DummyClassifier(strategy="prior")},
    ...     idc.data, idc.target, idc.groups, cv=3, progress=False,
    ...     return_details=True,
    ... )
    >>> details.predictions.columns.tolist()[:5]
    ['patient', 'fold', 'y_true', 'color_pred', 'color_score']
    >>> details.differences.columns.tolist()
    ['difference', 'low', 'high', 'n_patients']
    """
    pairs = _check_models(models)
    X, y, groups = _check_data(X, y, groups)
    if coords is not None:
        coords = check_coords(coords, len(y))
    scorers = _check_scoring(scoring, y)
    reference = _check_reference(reference, pairs)
    classes = _check_binary(y) if return_details else None
    folds, val_patients, description = _resolve_cv(cv, X, y, groups)
    fold_rows: dict[str, list[dict]] = {name: [] for name, _ in pairs}
    fold_predictions: list[pd.DataFrame] = []
    score_methods: dict[str, str | None] = {}
    histories: dict[str, list[list[dict]]] = {}
    with tqdm(total=len(pairs) * len(folds), disable=not progress, unit="fit") as bar:
        for k, (train, test) in enumerate(folds, start=1):
            # Each fold's patches are copied once, for all the models.
            metadata = {
                "groups": groups[test],
                "coords": None if coords is None else coords[test],
            }
            fold = (X[train], y[train], groups[train], X[test], y[test], metadata)
            columns = {"patient": groups[test], "fold": k, "y_true": y[test]}
            for name, model in pairs:
                bar.set_description(f"{name} (fold {k}/{len(folds)})")
                estimator = _prepare(model, val_patients)
                row, predictions = _run_fold(estimator, scorers, fold)
                fold_rows[name].append({"model": name, "fold": k, **row})
                if return_details:
                    history = _history(estimator)
                    if history is not None:
                        histories.setdefault(name, []).append(history)
                    score, score_methods[name] = _idc_score(predictions, classes[1])
                    columns[f"{name}_pred"] = predictions.cached("predict")
                    columns[f"{name}_score"] = np.nan if score is None else score
                bar.update()
            del fold
            if return_details:
                index = pd.Index(test, name="index")
                fold_predictions.append(pd.DataFrame(columns, index=index))
    rows = {
        name: _summarise(pd.DataFrame(fold_rows[name]), scorers) for name, _ in pairs
    }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "model"
    table.attrs.update(cv=description, n_folds=len(folds))
    if not return_details:
        return table
    per_fold = pd.DataFrame([row for name, _ in pairs for row in fold_rows[name]])
    per_fold = per_fold[["model", "fold", *scorers, "fit_seconds", "n_test"]]
    predictions = pd.concat(fold_predictions)
    predictions.attrs["score_method"] = score_methods
    names = [name for name, _ in pairs]
    details = Bunch(
        folds=per_fold,
        predictions=predictions,
        differences=_differences(predictions, names, reference, classes[1]),
        histories=histories,
    )
    return table, details


def _differences(predictions, names, reference, positive) -> pd.DataFrame:
    """Balanced accuracy of ``reference`` minus each other model's, with intervals."""
    y_true = (predictions["y_true"] == positive).to_numpy(dtype=np.int64)
    labels = {
        name: (predictions[f"{name}_pred"] == positive).to_numpy(dtype=np.int64)
        for name in names
    }
    folds = predictions["fold"].to_numpy()
    mean_score = {
        name: np.mean(
            [
                balanced_accuracy_score(y_true[folds == k], labels[name][folds == k])
                for k in np.unique(folds)
            ]
        )
        for name in names
    }
    others = sorted(
        (name for name in names if name != reference), key=lambda n: -mean_score[n]
    )
    rows = {}
    for other in others:
        result = paired_bootstrap(
            y_true, labels[reference], labels[other], predictions["patient"]
        )
        rows[other] = {key: result[key] for key in _DIFFERENCE_COLUMNS}
    differences = pd.DataFrame.from_dict(
        rows, orient="index", columns=list(_DIFFERENCE_COLUMNS)
    )
    differences.index.name = "model"
    differences.attrs.update(reference=reference, best=others[0] if others else None)
    return differences


def _summarise(folds: pd.DataFrame, scorers: dict) -> dict:
    summary = {}
    for name in scorers:
        scores = folds[name].astype(float)
        summary[f"{name}_mean"] = scores.mean()
        summary[f"{name}_std"] = scores.std(ddof=1) if len(scores) > 1 else np.nan
    summary["fit_seconds"] = folds["fit_seconds"].mean()
    predict_seconds = folds["predict_seconds"].sum()
    summary["predict_patches_per_second"] = (
        folds["n_test"].sum() / predict_seconds if predict_seconds > 0 else np.inf
    )
    return summary

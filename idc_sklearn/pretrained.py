"""Pretrained models shipped inside the package: weights read offline, no download.

Each network is two files in ``idc_sklearn/pretrained_models/``, package data: the
weights, written by :func:`~idc_sklearn.save_model` and read by
:func:`~idc_sklearn.load_model` (safetensors, never pickle), and its model card, a
JSON file, both written by ``scripts/build/train_pretrained.py``. An ensemble adds
the fitted handcrafted pipeline beside a network's weights, a skops file
(:mod:`skops.io`: no pickle, and only the types of ``FEATURES_TYPES`` are trusted),
written by ``scripts/build/ship_cv_models.py`` with the ensemble's card. A card's
``operating_point`` gives the decision threshold chosen by cross-validation, which
the loaded model's ``predict`` applies (scikit-learn's
:class:`~sklearn.model_selection.FixedThresholdClassifier`).
``docs/pretrained.md`` is the cards as a page.

Nothing heavy is imported at module level: the command line's ``--help`` lists the
names of :data:`PRETRAINED` without loading torch.
"""

from __future__ import annotations

import json
from importlib import resources
from types import MappingProxyType

from idc_sklearn._presets import PRESETS

__all__ = ["DEFAULT_PRETRAINED", "PRETRAINED", "load_pretrained", "pretrained_card"]

FOLDER = "pretrained_models"
_REBUILD = "scripts/build/train_pretrained.py"
_SHIP = "scripts/build/ship_cv_models.py"
# The network of "mlbn-small", as RECIPE in scripts/build/train_pretrained.py builds it.
_SMALL = PRESETS["small"]

#: The pretrained models by name: each entry's ``file`` (the weights), ``card``
#: (the model card, JSON) and ``description``. Read-only.
PRETRAINED = MappingProxyType(
    {
        "mlbn-small": MappingProxyType(
            {
                "file": "mlbn-small.safetensors",
                "card": "mlbn-small.json",
                "description": (
                    "The small MLBN Inception network (filters per branch "
                    f"{', '.join(map(str, _SMALL['filters']))}; dense "
                    f"{', '.join(map(str, _SMALL['head_units']))}; 0.83 M "
                    "parameters) "
                    "trained with flips and rotations on the real 50x50 patches "
                    "(2.5x) of the IDC archive's patients of the Cruz-Roa split's "
                    "training list, its epoch chosen on the split's 29 validation "
                    "patients; none of its test patients was seen."
                ),
            }
        ),
        "mlbn-small-all": MappingProxyType(
            {
                "file": "mlbn-small-all.safetensors",
                "card": "mlbn-small-all.json",
                "description": (
                    "The small MLBN Inception network of mlbn-small's recipe, "
                    "trained with flips and rotations on every real patch of the "
                    "114 patients in ../shared that the Cruz-Roa split allows (its "
                    "training and validation patients, and 3 outside it) for a "
                    "fixed 6 epochs, no early stopping; its recipe and threshold "
                    "chosen by cross-validation by patient; none of the split's "
                    "test patients was seen."
                ),
            }
        ),
        "mlbn-hgb": MappingProxyType(
            {
                "file": "mlbn-small-all.safetensors",
                "features": "features-hgb.skops",
                "card": "mlbn-hgb.json",
                "description": (
                    "The mean of two models' probabilities of IDC: mlbn-small-all's "
                    "and features-hgb's (colour and texture features, binned, into "
                    "histogram gradient boosting), fitted on the same 114 patients' "
                    "patches; IDC above the threshold chosen by cross-validation by "
                    "patient. The best shipped model by cross-validation for "
                    "patches scored alone, and what the default does without the "
                    "patients."
                ),
            }
        ),
        "mlbn-hgb-patient": MappingProxyType(
            {
                "file": "mlbn-small-all.safetensors",
                "features": "features-hgb.skops",
                "card": "mlbn-hgb-patient.json",
                "description": (
                    "mlbn-hgb, adapted to each patient's own share of IDC when "
                    "predict and predict_proba are given the patients "
                    "(groups=...): the share estimated from the patient's patches "
                    "by EM (Saerens et al. 2002) with a prior of pseudo-patches "
                    "chosen by cross-validation by patient, the probabilities "
                    "re-weighted to it, IDC above 0.5. Without groups, mlbn-hgb "
                    "exactly. The best shipped model by cross-validation for "
                    "patches given with their patients but not their positions."
                ),
            }
        ),
        "mlbn-hgb-context": MappingProxyType(
            {
                "file": "mlbn-small-all.safetensors",
                "features": "features-hgb.skops",
                "card": "mlbn-hgb-context.json",
                "description": (
                    "mlbn-hgb in each patch's context on its slide: given the "
                    "patches' positions (coords=...), each probability is mixed "
                    "with its neighbours' (smooth_neighbours), and given the "
                    "patients (groups=...), adapted to each patient's own share of "
                    "IDC as in mlbn-hgb-patient; the neighbours' weight and the "
                    "prior's strength chosen together by cross-validation by "
                    "patient, IDC above 0.5. Without groups and coords, mlbn-hgb "
                    "exactly. The best shipped model by cross-validation (every "
                    "patch of a patient scored together, with its position), and "
                    "the default."
                ),
            }
        ),
    }
)

#: The name :func:`load_pretrained` loads without one: the shipped model with the best
#: out-of-fold balanced accuracy in the cross-validation by patient over the split's
#: 111 training and validation patients (its card's ``cross_validation``). Given the
#: patches' positions (``predict(X, coords=...)``, slides) it mixes each patch with
#: its neighbours; given the patients (``groups=...``) it adapts to each patient's
#: IDC share; without either it is ``"mlbn-hgb"`` exactly.
DEFAULT_PRETRAINED = "mlbn-hgb-context"

#: The types a shipped handcrafted pipeline's skops file may hold, by full name: the
#: library's feature extractors and binning step, and scikit-learn's internals of a
#: fitted ``HistGradientBoostingClassifier`` (``skops.io`` trusts scikit-learn's
#: estimators themselves). A file naming any other type is refused.
FEATURES_TYPES = (
    "idc_sklearn.handcrafted._features.ColorHistogram",
    "idc_sklearn.handcrafted._features.ColorMoments",
    "idc_sklearn.handcrafted._features.GLCMFeatures",
    "idc_sklearn.handcrafted._features.HOGFeatures",
    "idc_sklearn.handcrafted._features.LBPFeatures",
    "idc_sklearn.handcrafted._pipelines._QuantileBins",
    "sklearn._loss.link.Interval",
    "sklearn._loss.link.LogitLink",
    "sklearn._loss.loss.HalfBinomialLoss",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
)


def _entry(name):
    """``PRETRAINED[name]``, or an error naming the argument and the choices."""
    if not isinstance(name, str):
        raise TypeError(
            f"name must be the name of a pretrained model, a str, or None; got "
            f"{type(name).__name__} {name!r}. Available: {sorted(PRETRAINED)}."
        )
    if name not in PRETRAINED:
        raise ValueError(
            f"name={name!r} is not a pretrained model; available: "
            f"{', '.join(sorted(PRETRAINED))}."
        )
    return PRETRAINED[name]


def _resource(file: str):
    return resources.files("idc_sklearn") / FOLDER / file


def _missing(name: str, what: str, file) -> FileNotFoundError:
    rebuild = _SHIP if "features" in PRETRAINED[name] else f"{_REBUILD} --name {name}"
    return FileNotFoundError(
        f"The {what} of the pretrained model {name!r} is missing: {file} does not "
        f"exist. Reinstall idc_sklearn, or rebuild them from a source checkout with "
        f"'python {rebuild}' (see docs/pretrained.md), which trains "
        "the model on the IDC patches in ../shared/data."
    )


def load_pretrained(name: str | None = None, *, device="auto"):
    """Load a fitted model whose weights ship in the package: offline, no download.

    Each call returns a new, independent estimator, read from the installed package
    (no network).

    Parameters
    ----------
    name : str or None, default=None
        A key of :data:`PRETRAINED`; None loads :data:`DEFAULT_PRETRAINED`, the
        shipped model with the best out-of-fold balanced accuracy by patient.

        - ``"mlbn-hgb-context"`` (the default): ``"mlbn-hgb"`` in a
          :class:`~idc_sklearn.PatientPriorClassifier` with a neighbours' weight:
          ``predict_proba(X, coords=positions)`` mixes each patch's probability
          with its neighbours' on the slide (:func:`~idc_sklearn.smooth_neighbours`;
          positions in the archive's pixels, adjacent patches 50 apart, as
          ``load_idc(...).frame[["x", "y"]]``), and ``groups=patients`` then
          adapts each patient's probabilities to its own IDC share; the weight and
          the prior's strength chosen by cross-validation by patient, IDC above
          0.5. Without ``groups`` and ``coords``, ``"mlbn-hgb"``'s own. A slide
          (:func:`~idc_sklearn.predict_slide`) is taken as one patient, its
          tiles' positions as their grid.
        - ``"mlbn-hgb-patient"``: the same without neighbours: ``predict(X,
          groups=patients)`` and ``predict_proba(X, groups=patients)`` adapt each
          patient's probabilities to its own IDC share, estimated from its patches
          (the strength of the prior chosen by cross-validation by patient), IDC
          above 0.5; without ``groups``, ``"mlbn-hgb"``'s own.
        - ``"mlbn-hgb"``: the mean of ``mlbn-small-all``'s and a
          handcrafted ``features-hgb`` pipeline's probabilities, IDC above the
          threshold chosen by cross-validation by patient.
        - ``"mlbn-small-all"``: the small MLBN Inception network
          (:data:`idc_sklearn.PRESETS` ``["small"]``, 0.83 M parameters) of
          ``mlbn-small``'s recipe, trained on every patch of the 114 patients in
          ``../shared`` the Cruz-Roa split allows for 6 epochs, with its threshold
          chosen by cross-validation by patient.
        - ``"mlbn-small"``: the first shipped network, trained on 85 patients, its
          epoch chosen on the split's 29 validation patients; predicts at 0.5.
    device : str or torch.device, default="auto"
        Where the network runs: ``"auto"`` (CUDA where present, else the CPU),
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``.

    Returns
    -------
    estimator
        Fitted, ``classes_`` ``[0, 1]`` (0 no IDC, 1 IDC), ``predict_proba``'s
        second column the probability of IDC; it predicts in float32.

        - A network without a chosen threshold (``"mlbn-small"``) is an
          :class:`~idc_sklearn.MLBNInceptionClassifier`, and ``partial_fit``
          fine-tunes it.
        - A model with a threshold or several members is scikit-learn's
          :class:`~sklearn.model_selection.FixedThresholdClassifier` (``predict``
          calls IDC where ``predict_proba(X)[:, 1] >= threshold``) around a
          :class:`~sklearn.frozen.FrozenEstimator` of the network, or around a
          soft-voting :class:`~idc_sklearn.PatientVotingClassifier` of frozen
          members. Frozen, refitting it (``fit``, ``clone`` then ``fit``, a grid
          search) keeps the shipped weights; the network is
          ``model.estimator_.estimator`` (one member) or
          ``model.estimator_.named_estimators_["mlbn"].estimator``.
        - A per-patient model (``"mlbn-hgb-context"``, the default, and
          ``"mlbn-hgb-patient"``) is a
          :class:`~idc_sklearn.PatientPriorClassifier` around a
          :class:`~sklearn.frozen.FrozenEstimator` of ``"mlbn-hgb"``'s model,
          which is ``model.estimator_.estimator``.

    Raises
    ------
    ValueError
        If ``name`` is not a key of :data:`PRETRAINED` (the message lists them).
    TypeError
        If ``name`` is not a str or None.
    FileNotFoundError
        If a file of the model is missing from the installed package; the message
        says how to rebuild it.

    See Also
    --------
    pretrained_card : What the model was trained on, how, and its scores.
    load_model : Load a model file of one's own.

    Notes
    -----
    **Training data**: the real patches of the IDC archive (Janowczyk & Madabhushi
    2016: H&E whole-mount breast-cancer slides scanned at 40x, patches of 50x50
    pixels at 2.5x, labelled IDC or not from coarse region annotations) in
    ``../shared/data``. The split's test patients (8864 and 8918 are in
    ``../shared``) were never read. The patients, patch counts by class, recipe,
    seed, epochs, machine, the threshold and the out-of-fold scores are in
    ``pretrained_card(name)`` and ``docs/pretrained.md``.

    **Intended use**: research, teaching and as a starting point for
    fine-tuning, on H&E patches like the archive's: 50x50 pixels at the
    archive's 2.5x, RGB, uint8 0-255. Not for diagnosis or any clinical
    decision.

    **Known limits**: small networks (about a fortieth of the paper's), trained
    on one archive from one lab and scanner; patch labels come from coarse
    annotations, so some are wrong; other magnifications, stains or patch sizes
    are outside what they have seen.

    **Fine-tuning**: ``load_pretrained("mlbn-small").partial_fit(X, y)`` trains
    ``max_epochs`` more epochs from the shipped weights (``set_params(max_epochs=
    ...)`` first); the optimiser starts afresh (Adam, ``lr=1e-3``). Of a thresholded
    model, fine-tune its network (see Returns). The model trains on all it is given
    (``train_split=None``); ``set_params(train_split=PatientValidSplit(0.2))`` and
    ``groups=`` bring back early stopping on held-out patients.

    Examples
    --------
    >>> from idc_sklearn import load_idc_sample, load_pretrained
    >>> clf = load_pretrained("mlbn-small", device="cpu")
    >>> clf.classes_.tolist()
    [0, 1]
    >>> X = load_idc_sample().data[:8]
    >>> clf.predict_proba(X).shape
    (8, 2)
    """
    name = DEFAULT_PRETRAINED if name is None else name
    entry = _entry(name)
    from idc_sklearn.persistence import load_model

    resource = _resource(entry["file"])
    if not resource.is_file():
        raise _missing(name, "weights file", resource)
    with resources.as_file(resource) as path:
        network = load_model(path, device=device)
    members = [("mlbn", network)]
    if "features" in entry:
        members.append(("features-hgb", _load_features(name, entry["features"])))
    card = pretrained_card(name)
    threshold = (card.get("operating_point") or {}).get("threshold")
    if len(members) == 1 and threshold is None:
        return network
    model = _frozen(members, 0.5 if threshold is None else threshold)
    if "per_patient" in card:
        return _per_patient(model, card["per_patient"], network)
    return model


def _per_patient(model, prior: dict, network):
    """``model``, frozen, in a :class:`~idc_sklearn.PatientPriorClassifier` of the
    card's ``per_patient`` strength, training share and neighbours' weight."""
    import numpy as np
    from sklearn.frozen import FrozenEstimator

    from idc_sklearn.prior_shift import PatientPriorClassifier

    wrapped = PatientPriorClassifier(
        FrozenEstimator(model),
        train_prior=prior["train_prior"],
        strength=float(prior["strength"]),
        neighbour_weight=float(prior.get("neighbour_weight", 0.0)),
        stride=float(prior.get("stride", 50.0)),
    )
    blank = np.zeros((2, *network.patch_shape), dtype=np.uint8)
    return wrapped.fit(blank, np.asarray(network.classes_))


def _load_features(name: str, file: str):
    """A shipped handcrafted pipeline, read with ``skops.io`` trusting
    :data:`FEATURES_TYPES` alone."""
    import skops.io

    resource = _resource(file)
    if not resource.is_file():
        raise _missing(name, "handcrafted pipeline", resource)
    with resources.as_file(resource) as path:
        found = set(skops.io.get_untrusted_types(file=path))
        if found - set(FEATURES_TYPES):
            raise ValueError(
                f"{path} names types that a shipped handcrafted pipeline may not "
                f"hold: {sorted(found - set(FEATURES_TYPES))}; trusted: the types "
                "of idc_sklearn.pretrained.FEATURES_TYPES."
            )
        return skops.io.load(path, trusted=list(FEATURES_TYPES))


def _frozen(members: list, threshold: float):
    """The fitted members, frozen, averaged (two or more), IDC at ``threshold``.

    ``FixedThresholdClassifier.fit`` only records the classes here: every member is
    a :class:`~sklearn.frozen.FrozenEstimator`, whose ``fit`` leaves it as it is,
    so two blank patches of the network's shape stand for the data.
    """
    import numpy as np
    from sklearn.frozen import FrozenEstimator
    from sklearn.model_selection import FixedThresholdClassifier

    network = members[0][1]
    frozen = [(member, FrozenEstimator(model)) for member, model in members]
    if len(frozen) == 1:
        model = frozen[0][1]
    else:
        from idc_sklearn.ensemble import PatientVotingClassifier

        model = PatientVotingClassifier(frozen, voting="soft")
    wrapped = FixedThresholdClassifier(
        model, threshold=float(threshold), response_method="predict_proba"
    )
    blank = np.zeros((2, *network.patch_shape), dtype=np.uint8)
    return wrapped.fit(blank, np.asarray(network.classes_))


def pretrained_card(name: str | None = None) -> dict:
    """The model card of a pretrained model: its data, recipe, training and scores.

    Parameters
    ----------
    name : str or None, default=None
        A key of :data:`PRETRAINED`; None is :data:`DEFAULT_PRETRAINED`.

    Returns
    -------
    dict
        The JSON card written with the weights by ``scripts/build/train_pretrained.py``,
        a new dict on each call. Its keys: ``name``, ``description``,
        ``estimator``, ``classes``, ``file``, ``file_bytes`` and ``sha256`` (of
        the weights file); ``data`` (source, magnification, patch size, the
        patients and their patches by class, the patients left out);
        ``recipe`` (the estimator's parameters); ``training`` (precision, epochs
        and their losses, seed, time taken); ``machine``, ``versions``,
        ``date``, ``command`` (how to train it again); ``validation`` (scores on
        held-out patients, or None where none were measured). The models chosen
        by cross-validation also hold ``cross_validation`` (the out-of-fold
        scores by patient, and the lead over features-hgb with its interval) and
        ``operating_point`` (the decision threshold and how it was chosen); an
        ensemble, ``members`` (each member's file and checksum).

    Raises
    ------
    ValueError
        If ``name`` is not a key of :data:`PRETRAINED`.
    FileNotFoundError
        If the card is missing from the installed package.

    Examples
    --------
    >>> from idc_sklearn import pretrained_card
    >>> card = pretrained_card("mlbn-small")
    >>> card["data"]["patients"], card["data"]["magnification"]
    (114, '2.5x')
    """
    name = DEFAULT_PRETRAINED if name is None else name
    entry = _entry(name)
    resource = _resource(entry["card"])
    if not resource.is_file():
        raise _missing(name, "model card", resource)
    return json.loads(resource.read_text(encoding="utf-8"))

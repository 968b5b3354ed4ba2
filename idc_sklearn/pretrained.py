"""Pretrained models shipped inside the package: weights read offline, no download.

Each model is two files in ``idc_sklearn/pretrained_models/``, package data: the
weights, written by :func:`~idc_sklearn.save_model` and read by
:func:`~idc_sklearn.load_model` (safetensors, never pickle), and its model card, a
JSON file. Both are written by ``scripts/build/train_pretrained.py``.
``docs/pretrained.md`` is the card as a page.

Nothing heavy is imported at module level: the command line's ``--help`` lists the
names of :data:`PRETRAINED` without loading torch.
"""

from __future__ import annotations

import json
from importlib import resources
from types import MappingProxyType

from idc_sklearn._presets import PRESETS

__all__ = ["PRETRAINED", "load_pretrained", "pretrained_card"]

FOLDER = "pretrained_models"
_REBUILD = "scripts/build/train_pretrained.py"
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
        "mlbn-small-ema": MappingProxyType(
            {
                "file": "mlbn-small-ema.safetensors",
                "card": "mlbn-small-ema.json",
                "description": (
                    "The small MLBN Inception network with an exponential moving "
                    "average of its weights, trained with flips and rotations on "
                    "every real patch of the 114 patients in ../shared that the "
                    "Cruz-Roa split allows (its training and validation patients, "
                    "and 3 outside it) for a fixed number of epochs; its recipe and "
                    "threshold chosen by cross-validation by patient; none of the "
                    "split's test patients was seen."
                ),
            }
        ),
    }
)


def _entry(name):
    """``PRETRAINED[name]``, or an error naming the argument and the choices."""
    if not isinstance(name, str):
        raise TypeError(
            f"name must be the name of a pretrained model, a str; got "
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
    return FileNotFoundError(
        f"The {what} of the pretrained model {name!r} is missing: {file} does not "
        f"exist. Reinstall idc_sklearn, or rebuild them from a source checkout with "
        f"'python {_REBUILD} --name {name}' (see docs/pretrained.md), which trains "
        "the model on the IDC patches in ../shared/data."
    )


def load_pretrained(name: str = "mlbn-small", *, device="auto"):
    """Load a fitted MLBN Inception classifier whose weights ship in the package.

    The weights are read from the installed package (no download, no network) with
    :func:`~idc_sklearn.load_model`. Each call returns a new, independent estimator.

    Parameters
    ----------
    name : str, default="mlbn-small"
        A key of :data:`PRETRAINED`. ``"mlbn-small"``: the small MLBN Inception
        network (:data:`idc_sklearn.PRESETS` ``["small"]``, 0.83 M
        parameters, 3.3 MB) trained with flips and rotations on 50x50
        H&E patches at 2.5x of 85 patients of the IDC archive (the Cruz-Roa
        split's training patients in ``../shared/data`` and 3 outside the split),
        its epoch chosen on the split's 29 validation patients.
    device : str or torch.device, default="auto"
        Where the network runs: ``"auto"`` (CUDA where present, else the CPU),
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``.

    Returns
    -------
    MLBNInceptionClassifier
        Fitted: ``classes_`` is ``[0, 1]`` (0 no IDC, 1 IDC), ``predict_proba``'s
        second column is the probability of IDC. It predicts in float32
        (``precision="float32"``), and ``partial_fit`` fine-tunes it.

    Raises
    ------
    ValueError
        If ``name`` is not a key of :data:`PRETRAINED` (the message lists them).
    TypeError
        If ``name`` is not a str.
    FileNotFoundError
        If the weights file is missing from the installed package; the message
        says how to rebuild it (``scripts/build/train_pretrained.py``).

    See Also
    --------
    pretrained_card : What the model was trained on, how, and its scores.
    load_model : Load a model file of one's own.

    Notes
    -----
    **Training data**: the real patches of the IDC archive (Janowczyk & Madabhushi
    2016: H&E whole-mount breast-cancer slides scanned at 40x, patches of 50x50
    pixels at 2.5x, labelled IDC or not from coarse region annotations): every
    patch in ``../shared/data`` of the Cruz-Roa split's training patients and of
    the 3 patients outside the split, 85 patients. Early stopping chose the epoch
    on the split's 29 validation patients, whose scores, with 95% intervals and
    against a handcrafted baseline trained on the same patches, are the card's
    ``validation``. The split's test patients (8864 and 8918 are in
    ``../shared``) were never read. The patients, patch counts by class, recipe,
    seed, epochs and machine are in ``pretrained_card(name)`` and
    ``docs/pretrained.md``.

    **Intended use**: research, teaching and as a starting point for
    fine-tuning, on H&E patches like the archive's: 50x50 pixels at the
    archive's 2.5x, RGB, uint8 0-255. Not for diagnosis or any clinical
    decision.

    **Known limits**: a small network (about a fortieth of the paper's), trained
    on 85 patients of one archive from one lab and scanner; patch labels come
    from coarse annotations, so some are wrong; other magnifications, stains or
    patch sizes are outside what it has seen. Its scores on the split's
    validation patients are in the card; those on patches of its own training
    patients (most of :func:`~idc_sklearn.load_idc_sample`) say nothing about new
    patients.

    **Fine-tuning**: ``partial_fit(X, y)`` trains ``max_epochs`` more epochs
    from the shipped weights (``set_params(max_epochs=...)`` first); the
    optimiser starts afresh (Adam, ``lr=1e-3``; a lower ``lr`` keeps more of
    the shipped weights). The model trains on all it is given
    (``train_split=None``); ``set_params(train_split=PatientValidSplit(0.2))``
    and ``groups=`` bring back early stopping on held-out patients.

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
    entry = _entry(name)
    from idc_sklearn.persistence import load_model

    resource = _resource(entry["file"])
    if not resource.is_file():
        raise _missing(name, "weights file", resource)
    with resources.as_file(resource) as path:
        return load_model(path, device=device)


def pretrained_card(name: str = "mlbn-small") -> dict:
    """The model card of a pretrained model: its data, recipe, training and scores.

    Parameters
    ----------
    name : str, default="mlbn-small"
        A key of :data:`PRETRAINED`.

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
        held-out patients, or None where none were measured).

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
    entry = _entry(name)
    resource = _resource(entry["card"])
    if not resource.is_file():
        raise _missing(name, "model card", resource)
    return json.loads(resource.read_text(encoding="utf-8"))

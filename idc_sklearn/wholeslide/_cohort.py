"""predict_slides: a cohort of slides, here one after another or on a Dask cluster.

Every argument is checked once, before any slide is read (:func:`_check`). Each
slide whose outputs are not complete and verified (``_outputs.verified_row``) is
then run by ``_outputs.run_slide``: in this process, or as a task on the cluster
of ``client`` (``_cluster.py``, which sends the model to each worker once). The
rows, in the order of ``slides``, make ``slides.csv``.
"""

from __future__ import annotations

import inspect
import math
import os
from collections import Counter
from pathlib import Path

import pandas as pd

from idc_sklearn._checks import check_fraction, check_output_path, check_path
from idc_sklearn._files import atomic_write
from idc_sklearn.prior_shift import PatientPriorClassifier, decision_threshold
from idc_sklearn.wholeslide._outputs import run_slide, verified_row
from idc_sklearn.wholeslide._pipeline import check_options, predict_slide

TABLE = "slides.csv"
# predict_slide's arguments that predict_slides takes itself, or not at all.
_OWN = ("estimator", "slide", "progress")
# Options that change how fast a slide is read, never its outputs: a rerun with
# other values skips the slides already done.
_SPEED_ONLY = ("batch_size", "num_workers")
# The table's columns: who and how first, the slide's figures (those of
# SlideResult.summary, and any it gains after these), then time and place.
_FIRST = ["slide", "name", "status", "skipped", "error"]
_FIGURES = [
    "tiles",
    "grid_tiles",
    "idc_tiles",
    "tissue_mm2",
    "idc_mm2",
    "idc_fraction",
    "mean_probability",
    "width",
    "height",
    "mpp",
    "threshold",
]
_LAST = ["seconds", "worker"]
# Counts, kept whole (pandas' nullable integers) beside a failed slide's blanks.
_COUNTS = ["tiles", "grid_tiles", "idc_tiles", "width", "height"]


def predict_slides(
    estimator,
    slides,
    output_dir,
    *,
    client=None,
    threshold: float | None = None,
    resume: bool = True,
    progress: bool = True,
    **options,
) -> pd.DataFrame:
    """Predict a cohort of slides, each into its own folder, here or on Dask.

    Each slide is predicted by :func:`predict_slide` and its outputs are written
    into ``output_dir/<slide file name>/``, as ``idc-sklearn slide`` writes them
    (:meth:`SlideResult.save`: ``heatmap.png``, ``probability.tif``,
    ``tiles.csv``, ``regions.geojson``, ``summary.json``), then a
    ``manifest.json``, last and atomically, with each output's size and CRC-32.
    ``output_dir/slides.csv`` holds one row per slide.

    With a ``dask.distributed`` client, the slides run as tasks on its cluster,
    one slide per task, and the estimator is sent to each worker once (a worker
    plugin), not with every task; the workers write the outputs, so the slides
    and ``output_dir`` must be on a file system that they and this process
    share. Without one, the slides run here, one after another. Either way each
    slide's outputs are those of :func:`predict_slide` on that slide alone.

    A slide that fails (missing, not a slide, no tissue, a worker lost) is
    reported in its row, with its error, and the others go on. A rerun skips the
    slides whose outputs are complete and unchanged, for the same slide file and
    settings, and redoes the others, so that an interrupted cohort resumes.

    Parameters
    ----------
    estimator : fitted classifier
        As :func:`predict_slide` takes it.
    slides : list of str or path-like
        The slide files. Their file names must differ: each names its folder.
    output_dir : str or path-like
        The folder to write; made where it does not exist, its parent must.
    client : distributed.Client, default=None
        Run the slides on this client's cluster; None runs them here.
    threshold : float, default=None
        A tile is IDC where its probability exceeds this, for the regions, the
        heatmap's outlines and the summary. None takes the estimator's own: the
        threshold chosen by cross-validation for a pretrained model that has one
        (``load_pretrained("mlbn-hgb")``), else 0.5; 0.5 for a
        :class:`~idc_sklearn.PatientPriorClassifier` (``load_pretrained()``'s
        default model), whose slides' probabilities are adapted to each slide's
        own IDC share.
    resume : bool, default=True
        Skip the slides whose outputs are complete and verified; False redoes
        every slide.
    progress : bool, default=True
        Show a progress bar over the slides (and here, over each slide's tiles).
    **options
        :func:`predict_slide`'s other keyword arguments (``mpp``,
        ``target_mpp``, ``tile_size``, ``min_tissue``, ``tissue_threshold``,
        ``origin``, ``batch_size``, ``num_workers``, ``backend``), the same for
        every slide.

    Returns
    -------
    pandas.DataFrame
        ``slides.csv``: one row per slide, in the order of ``slides``: ``slide``
        (its path), ``name`` (its folder), ``status`` ("done" or "failed"),
        ``skipped`` (done by an earlier run, verified), ``error``, the figures of
        :meth:`SlideResult.summary` (``tiles``, the tiles of tissue predicted;
        ``idc_tiles``, ``tissue_mm2``, ``idc_mm2``, ``idc_fraction``,
        ``mean_probability``, ...), ``grid_tiles`` (the tiles of the whole
        grid), ``seconds`` (to predict and write the slide) and ``worker`` (the
        Dask worker's address, or "local").

    Raises
    ------
    TypeError
        If ``slides`` is not a list of paths, ``client`` is not a
        ``distributed.Client``, or an option is not one of :func:`predict_slide`'s.
    ValueError
        If ``slides`` is empty, two slides share a file name, ``client`` is
        closed, or an option's value is one :func:`predict_slide` refuses.
    sklearn.exceptions.NotFittedError
        If ``estimator`` is not fitted.

    See Also
    --------
    predict_slide : one slide, its result in memory.

    Examples
    --------
    >>> from dask.distributed import Client  # doctest: +SKIP
    >>> from idc_sklearn import load_pretrained, predict_slides
    >>> model = load_pretrained("mlbn-small")
    >>> table = predict_slides(
    ...     model, ["a.svs", "b.svs"], "maps", client=Client("tcp://head:8786")
    ... )  # doctest: +SKIP
    >>> table[["name", "status", "idc_fraction"]]  # doctest: +SKIP
    """
    slides, folder, threshold, settings = _check(
        estimator, slides, output_dir, client, threshold, resume, progress, options
    )
    from tqdm.auto import tqdm

    folder.mkdir(exist_ok=True)
    jobs, rows = [], {}
    for index, slide in enumerate(slides):
        target = folder / Path(slide).name
        row = verified_row(slide, target, settings) if resume else None
        if row is None:
            jobs.append((index, slide, target))
        else:
            rows[index] = row
    with tqdm(
        total=len(jobs), desc="predict_slides", unit="slide", disable=not progress
    ) as bar:
        if client is None:
            for index, slide, target in jobs:
                rows[index] = run_slide(
                    estimator,
                    slide,
                    target,
                    threshold=threshold,
                    options=options,
                    settings=settings,
                    progress=progress,
                )
                bar.update()
        elif jobs:  # where every slide is done already, no model is sent
            from idc_sklearn.wholeslide._cluster import run_on_cluster

            rows.update(
                run_on_cluster(
                    client,
                    estimator,
                    jobs,
                    threshold=threshold,
                    options=options,
                    settings=settings,
                    bar=bar,
                )
            )
    table = _table([rows[index] for index in range(len(slides))])
    with atomic_write(folder / TABLE, "w", newline="") as f:
        table.to_csv(f, index=False)
    return table


def _check(estimator, slides, output_dir, client, threshold, resume, progress, options):
    """Every argument checked before any slide is read; the slides as str, the
    folder, the threshold and the settings a slide's outputs are valid for."""
    unknown = sorted(set(options) - _options())
    if unknown:
        raise TypeError(
            f"predict_slides got {', '.join(map(repr, unknown))}: not an option of "
            f"predict_slide (it takes {', '.join(sorted(_options()))})."
        )
    bound = inspect.signature(predict_slide).bind(estimator, "", **options)
    bound.apply_defaults()
    checked = check_options(
        estimator, **{k: v for k, v in bound.arguments.items() if k not in _OWN}
    )
    slides = _check_slides(slides)
    folder = check_output_path(output_dir, "output_dir", expected="a str or path-like")
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"output_dir={str(folder)!r} is a file; expected a folder.")
    _check_client(client)
    if threshold is None:
        own = decision_threshold(estimator)
        if own is None or isinstance(estimator, PatientPriorClassifier):
            own = 0.5  # adapted per slide, a patient's calls are at 0.5
        threshold = own
    threshold = check_fraction(threshold, "threshold")
    for name, value in (("resume", resume), ("progress", progress)):
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be True or False; got {value!r}.")
    # The settings a slide's outputs depend on: the model's kind and every
    # option, checked (so a default and its value agree), but those of speed.
    settings = {
        "model": type(estimator).__name__,
        "threshold": threshold,
        **{k: v for k, v in checked.items() if k not in _SPEED_ONLY},
    }
    if isinstance(estimator, PatientPriorClassifier):
        # The adaptation too: mlbn-hgb-patient and mlbn-hgb-context are one kind.
        # As floats: numpy numbers (a search's best_params_) are not JSON.
        settings["per_patient"] = {
            k: str(float(v)) if math.isinf(v) else float(v)
            for k, v in estimator.get_params(deep=False).items()
            if k in ("train_prior", "strength", "neighbour_weight", "stride")
        }
    return slides, folder, threshold, _as_json(settings)


def _options() -> set[str]:
    """The keyword arguments of predict_slide that predict_slides passes on."""
    return set(inspect.signature(predict_slide).parameters) - set(_OWN)


def _check_slides(slides) -> list[str]:
    """A non-empty list of paths whose file names differ, as str."""
    if isinstance(slides, (str, os.PathLike)) or not hasattr(slides, "__iter__"):
        raise TypeError(
            "slides must be a list of slide paths (for one slide, [slide]); got "
            f"{type(slides).__name__}."
        )
    slides = [
        str(check_path(slide, f"slides[{i}]", expected="the path of a slide"))
        for i, slide in enumerate(slides)
    ]
    if not slides:
        raise ValueError("slides is empty; expected at least one slide path.")
    for i, slide in enumerate(slides):
        if not Path(slide).name:
            raise ValueError(f"slides[{i}]={slide!r} names no file.")
    shared = [
        n for n, count in Counter(Path(s).name for s in slides).items() if count > 1
    ]
    if shared:
        clashes = [s for s in slides if Path(s).name in shared]
        raise ValueError(
            f"slides {clashes} share a file name ({', '.join(shared)}): each slide's "
            "outputs go to output_dir/<file name>/; rename or link them apart."
        )
    return slides


def _check_client(client) -> None:
    """None, or a running ``distributed.Client``."""
    if client is None:
        return
    try:
        from distributed import Client
    except ImportError:
        Client = None
    if Client is None or not isinstance(client, Client):
        raise TypeError(
            "client must be None or a dask.distributed.Client (pip install "
            f"'idc_sklearn[cluster]'); got {type(client).__name__}."
        )
    if client.status != "running":
        raise ValueError(
            f"client is {client.status}; expected a running Client, connected to "
            "its scheduler."
        )


def _as_json(value):
    """``value`` as JSON reads it back (tuples as lists), to compare with a
    manifest's."""
    import json

    return json.loads(json.dumps(value))


def _table(rows: list[dict]) -> pd.DataFrame:
    """The rows as ``slides.csv``, every column there where every slide failed."""
    table = pd.DataFrame(rows)
    known = _FIRST + _FIGURES + _LAST
    others = [c for c in table.columns if c not in known]
    table = table.reindex(columns=_FIRST + _FIGURES + others + _LAST)
    return table.astype(dict.fromkeys(_COUNTS, "Int64"))

"""Learning curves from a skorch history, read as the list of dicts it is (no torch)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from idc_sklearn.plotting._base import check_path, figure_and_axes, save

# The history columns each learning-curve panel draws, in order, with their labels.
# skorch's LRScheduler records the learning rate as ``event_lr``; ``lr`` is the
# name a user's own callback would most likely give it.
_CURVE_PANELS = (
    ("loss", {"train_loss": "train", "valid_loss": "validation"}),
    (
        "validation score",
        {"valid_bacc": "balanced accuracy", "valid_acc": "accuracy"},
    ),
    ("learning rate", {"event_lr": "learning rate", "lr": "learning rate"}),
)
# Where the best epoch is read from, first found first: the checkpoint the net
# restored, else the epochs skorch's scoring marked best.
_BEST_COLUMNS = ("event_cp", "valid_bacc_best", "valid_loss_best")


def _history_rows(net) -> list[Mapping]:
    """The per-epoch dicts of a fitted net, a skorch History or a list of dicts."""
    history = net
    if not isinstance(net, Sequence):
        # skorch's nets keep the history in ``history_`` (``history`` is an alias);
        # before fit neither exists, or it is None.
        history = getattr(net, "history_", getattr(net, "history", None))
    if (
        not isinstance(history, Sequence)
        or isinstance(history, str)
        or not all(isinstance(row, Mapping) for row in history)
    ):
        raise TypeError(
            "net must be a fitted skorch net, its history_ or a list of per-epoch "
            f"dicts; got {type(net).__name__}"
            + (" with no history (is it fitted?)." if history is None else ".")
        )
    if len(history) == 0:
        raise ValueError(
            "net's history is empty: no epoch was recorded, so there is no curve "
            "to draw; fit the net for at least one epoch first."
        )
    return list(history)


def _history_column(rows: list[Mapping], key: str) -> np.ndarray | None:
    """One column as floats, NaN where an epoch lacks it; None where none has it."""
    if not any(row.get(key) is not None for row in rows):
        return None
    return np.array(
        [np.nan if row.get(key) is None else float(row[key]) for row in rows]
    )


def _best_epoch(rows: list[Mapping]) -> int | None:
    """Index of the best epoch: the last one flagged by the first column present."""
    for key in _BEST_COLUMNS:
        flags = [bool(row.get(key, False)) for row in rows]
        if any(flags):
            return len(flags) - 1 - flags[::-1].index(True)
    return None


def plot_learning_curves(
    net,
    *,
    ax: Axes | Sequence[Axes] | None = None,
    path: str | os.PathLike | None = None,
) -> tuple[Figure, list[Axes], dict[str, Line2D]]:
    """Loss, validation score and learning rate per epoch of a fitted network.

    One panel each, side by side, for what the history records: the loss
    (``train_loss``, ``valid_loss``), the validation score (``valid_bacc``, the
    recipe's balanced accuracy, or skorch's ``valid_acc``) and the learning rate
    (``event_lr``, which skorch's ``LRScheduler`` records, or ``lr``; log scale).
    Panels whose columns the history lacks are left out. A dashed line marks the
    best epoch: the last one with ``event_cp`` (the checkpoint restored), else
    ``valid_bacc_best``, else ``valid_loss_best``.

    Parameters
    ----------
    net : skorch net, skorch History or list of dict
        A fitted net (its ``history_`` is read), or the history itself: one dict
        per epoch, as skorch records it. torch is not needed to read it.
    ax : matplotlib Axes or sequence of Axes, default=None
        One Axes per panel drawn; None makes a new figure.
    path : str or path-like, default=None
        Where to save the figure as PNG; its folder must exist.

    Returns
    -------
    figure : matplotlib.figure.Figure
        The figure holding the panels.
    axes : list of matplotlib.axes.Axes
        The panels, in the order loss, validation score, learning rate.
    lines : dict of str to matplotlib.lines.Line2D
        One line per history column drawn, by column name (one point per epoch),
        and ``"best_epoch"``, the marker line of the last panel, when a best
        epoch is known.

    Raises
    ------
    TypeError
        If ``net`` is not fitted, nor a history.
    ValueError
        If the history is empty or records none of the columns above.

    See Also
    --------
    idc_sklearn.default_callbacks : The callbacks that record these columns.

    Examples
    --------
    >>> from idc_sklearn.plotting import plot_learning_curves
    >>> history = [
    ...     {"epoch": 1, "train_loss": 0.69, "valid_loss": 0.62, "valid_bacc": 0.71,
    ...      "valid_bacc_best": True, "event_lr": 1e-3},
    ...     {"epoch": 2, "train_loss": 0.55, "valid_loss": 0.58, "valid_bacc": 0.78,
    ...      "valid_bacc_best": True, "event_lr": 1e-3},
    ...     {"epoch": 3, "train_loss": 0.47, "valid_loss": 0.61, "valid_bacc": 0.76,
    ...      "valid_bacc_best": False, "event_lr": 5e-4},
    ... ]
    >>> fig, axes, lines = plot_learning_curves(history)
    >>> [ax.get_title() for ax in axes]
    ['loss', 'validation score', 'learning rate']
    >>> lines["valid_bacc"].get_xdata().tolist(), lines["best_epoch"].get_xdata()
    ([1.0, 2.0, 3.0], [2.0, 2.0])
    """
    rows = _history_rows(net)
    path = check_path(path)
    panels = []
    for title, names in _CURVE_PANELS:
        columns = {}
        for key, label in names.items():
            values = _history_column(rows, key)
            # event_lr and lr are one curve under two names: the first found is drawn.
            if values is not None and label not in {lb for lb, _ in columns.values()}:
                columns[key] = (label, values)
        if columns:
            panels.append((title, columns))
    if not panels:
        recorded = sorted({key for row in rows for key in row})
        wanted = [key for _, names in _CURVE_PANELS for key in names]
        raise ValueError(
            f"net's history records none of {wanted}, so there is no curve to "
            f"draw; it records {recorded}."
        )
    epochs = _history_column(rows, "epoch")
    if epochs is None or np.isnan(epochs).any():
        epochs = np.arange(1.0, len(rows) + 1)
    best = _best_epoch(rows)
    figure, axes = figure_and_axes(ax, len(panels), (4.0 * len(panels), 3.4))
    lines: dict[str, Line2D] = {}
    for ax_, (title, columns) in zip(axes, panels, strict=True):
        for key, (label, values) in columns.items():
            (lines[key],) = ax_.plot(epochs, values, marker="o", ms=3, label=label)
            if title == "learning rate" and np.nanmin(values) > 0:
                ax_.set_yscale("log")
        if best is not None:
            lines["best_epoch"] = ax_.axvline(
                float(epochs[best]),
                color="0.4",
                linestyle="--",
                linewidth=1,
                label=f"best epoch ({epochs[best]:g})",
            )
        ax_.set_title(title)
        ax_.set_xlabel("epoch")
        ax_.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax_.grid(alpha=0.3)
        ax_.legend(fontsize=8)
    save(figure, path)
    return figure, axes, lines

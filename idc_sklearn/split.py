"""The internal validation split that early stopping uses, held out by patient.

:class:`PatientValidSplit` is the split; :func:`route_to_split` routes the
``groups`` an estimator's ``fit`` gets to it (metadata routing).
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.model_selection import (
    GroupShuffleSplit,
    StratifiedGroupKFold,
    StratifiedShuffleSplit,
)
from sklearn.utils import check_random_state
from sklearn.utils.metadata_routing import MetadataRequest, MethodMapping
from torch.utils.data import Subset

__all__ = ["PatientValidSplit", "route_to_split"]


class PatientValidSplit(BaseEstimator):
    """Hold out a validation fraction of whole patients (or patches) for skorch.

    A skorch ``train_split``: called with the training dataset, its labels and,
    where the estimator's ``fit`` got ``groups``, the patient of each patch. With
    groups, whole patients go to validation (no patient on both sides), chosen by
    :class:`~sklearn.model_selection.StratifiedGroupKFold` so both sides keep the
    class balance as far as patients allow; without groups, a stratified split of
    patches.

    Its parameters are a scikit-learn estimator's (``get_params``, ``set_params``,
    ``clone``), so an estimator's ``get_params(deep=True)`` lists them as
    ``train_split__valid_size``, ``train_split__random_state`` and
    ``train_split__valid_groups``.

    Parameters
    ----------
    valid_size : float, default=0.2
        Fraction held out, in (0, 1).
    random_state : int, RandomState instance or None, default=0
        Seed of the split. The default fixes it, so a seeded fit is reproducible.
    valid_groups : sequence or None, default=None
        Hold out exactly these patients (a fixed split such as the paper's 29
        validation patients) instead of drawing ``valid_size`` of them; needs
        ``groups``.

    Examples
    --------
    >>> import numpy as np
    >>> from idc_sklearn.batching import PatchDataset
    >>> X = np.zeros((20, 16, 16, 3), dtype=np.uint8)
    >>> y = np.tile([0, 1], 10)
    >>> groups = np.repeat(["a", "b", "c", "d", "e"], 4)
    >>> train, valid = PatientValidSplit(0.2)(PatchDataset(X, y), y, groups=groups)
    >>> len(train), len(valid)
    (16, 4)
    """

    def __init__(
        self, valid_size: float = 0.2, random_state=0, valid_groups=None
    ) -> None:
        self.valid_size = valid_size
        self.random_state = random_state
        self.valid_groups = valid_groups

    def __repr__(self) -> str:
        fixed = (
            "" if self.valid_groups is None else f", valid_groups={self.valid_groups!r}"
        )
        return (
            f"{type(self).__name__}(valid_size={self.valid_size!r}, "
            f"random_state={self.random_state!r}{fixed})"
        )

    def get_metadata_routing(self) -> MetadataRequest:
        """Request ``groups`` for ``split``, as sklearn's group splitters do.

        With metadata routing on, the estimator routes the ``groups`` it gets in
        ``fit`` here, so whole patients are held out then too.
        """
        request = MetadataRequest(owner=type(self).__name__)
        request.split.add_request(param="groups", alias=True)
        return request

    def _fixed_split(self, groups) -> tuple[np.ndarray, np.ndarray]:
        if groups is None:
            raise ValueError(
                "valid_groups needs the patient of each patch: pass groups to fit."
            )
        groups = np.asarray(groups).astype(str)
        wanted = np.asarray(list(self.valid_groups)).astype(str)
        missing = sorted(set(wanted) - set(groups))
        if missing:
            raise ValueError(
                f"valid_groups names patients absent from groups: {missing[:10]}"
                f"{' ...' if len(missing) > 10 else ''}."
            )
        is_valid = np.isin(groups, wanted)
        if is_valid.all():
            raise ValueError(
                "valid_groups holds every patient in groups; nothing is left to "
                "train on."
            )
        return np.flatnonzero(~is_valid), np.flatnonzero(is_valid)

    def split_indices(self, y, groups=None) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(train_indices, valid_indices)`` for labels ``y``."""
        if self.valid_groups is not None:
            return self._fixed_split(groups)
        if not (isinstance(self.valid_size, numbers.Real) and 0 < self.valid_size < 1):
            raise ValueError(
                f"valid_size must be a float in (0, 1); got {self.valid_size!r}."
            )
        y = np.asarray(y)
        rng = check_random_state(self.random_state)
        seed = rng.randint(np.iinfo(np.int32).max)
        if groups is None:
            splitter = StratifiedShuffleSplit(
                n_splits=1, test_size=self.valid_size, random_state=seed
            )
            return next(splitter.split(np.zeros(len(y)), y))

        groups = np.asarray(groups)
        if groups.shape != y.shape:
            raise ValueError(
                f"groups must have one entry per sample, shape {y.shape}; "
                f"got shape {groups.shape}."
            )
        n_groups = len(np.unique(groups))
        if n_groups < 2:
            raise ValueError(
                "groups must name at least 2 patients to hold one out for "
                f"validation; got {n_groups}. Pass train_split=None to train "
                "without a validation split."
            )
        n_splits = max(2, round(1 / self.valid_size))
        if n_groups >= n_splits:
            splitter = StratifiedGroupKFold(
                n_splits=n_splits, shuffle=True, random_state=seed
            )
            # The smallest fold is the validation side: the fold count follows from
            # valid_size, so one fold is about valid_size of the patients.
            train, valid = next(splitter.split(np.zeros(len(y)), y, groups))
        else:
            splitter = GroupShuffleSplit(
                n_splits=1, test_size=self.valid_size, random_state=seed
            )
            train, valid = next(splitter.split(np.zeros(len(y)), y, groups))
        return train, valid

    def __call__(self, dataset, y=None, groups=None):
        if y is None:
            raise ValueError(
                "PatientValidSplit needs the labels y to stratify; got y=None."
            )
        train, valid = self.split_indices(y, groups)
        return Subset(dataset, train), Subset(dataset, valid)


def route_to_split(router, split):
    """Add ``split`` to an estimator's metadata ``router`` for ``fit`` and
    ``partial_fit``, where it is a splitter that requests metadata.

    With metadata routing on, ``GridSearchCV(..., cv=GroupKFold()).fit(X, y,
    groups=...)`` then hands ``groups`` to the estimator's ``fit`` and on to a
    ``train_split`` that requests it (:class:`PatientValidSplit`). skorch's own
    ``ValidSplit`` (with a ``cv``) routes itself.
    """
    if (
        split is not None
        and not hasattr(split, "cv")
        and hasattr(split, "get_metadata_routing")
    ):
        router.add(
            splitter=split,
            method_mapping=MethodMapping()
            .add(caller="fit", callee="split")
            .add(caller="partial_fit", callee="split"),
        )
    return router

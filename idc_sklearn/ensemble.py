"""Ensembles of the network and the handcrafted features, split by patient.

scikit-learn's :class:`~sklearn.ensemble.StackingClassifier` and
:class:`~sklearn.ensemble.VotingClassifier` take the library's estimators as they
are. What they lack (scikit-learn 1.9) is a way to hand ``fit`` the patient of each
patch without leaking patients across a split:

- ``StackingClassifier.fit(X, y, groups=groups)`` needs metadata routing switched on
  (``sklearn.set_config(enable_metadata_routing=True)``), and even then its inner
  ``cv`` only sees ``groups`` through the base estimators that request them: a
  handcrafted pipeline requests none, so ``GroupKFold`` gets ``groups=None`` and
  fails. Its final estimator is also handed every fit parameter, ``groups``
  included, which ``LogisticRegression.fit`` does not take.
- ``VotingClassifier.fit`` takes ``groups`` only with routing switched on, and
  :func:`~idc_sklearn.compare_models`, like any caller that looks at ``fit``'s
  signature, never passes it.

The two classes here are those two ensembles with ``fit(X, y, groups=None)``: every
inner fold holds whole patients apart, and each base estimator that requests
``groups`` (the CNNs, for their early-stopping split) gets the patients of the
patches it is fitted on, whatever the global routing setting.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn import config_context
from sklearn.base import clone
from sklearn.ensemble import StackingClassifier, VotingClassifier
from sklearn.model_selection import GroupKFold, check_cv, cross_val_predict
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import Bunch
from sklearn.utils.metadata_routing import get_routing_for_object
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.parallel import Parallel, delayed

from idc_sklearn.patches import check_groups

__all__ = ["PatientStackingClassifier", "PatientVotingClassifier"]


def _requests_groups(estimator) -> bool:
    """Whether ``estimator.fit`` requests ``groups`` (the library's CNNs do)."""
    return bool(get_routing_for_object(estimator).consumes("fit", ["groups"]))


def _no_other_params(ensemble, fit_params: dict) -> None:
    if fit_params:
        raise TypeError(
            f"{type(ensemble).__name__}.fit with groups takes no other fit "
            f"parameters; got {sorted(fit_params)}."
        )


def _fit(estimator, X, y, params: dict):
    return estimator.fit(X, y, **params)


class PatientStackingClassifier(StackingClassifier):
    """scikit-learn's ``StackingClassifier`` whose inner folds hold patients apart.

    The parameters, attributes and methods are those of
    :class:`~sklearn.ensemble.StackingClassifier`; only ``fit`` differs, and only
    when it gets ``groups``. It then

    - splits ``X`` into inner folds by patient: ``cv=None`` or an int ``k`` is
      ``GroupKFold(k)`` (5 by default), a splitter is called as
      ``cv.split(X, y, groups)``, and a fold that puts one patient on both sides is
      an error;
    - fits each base estimator on all of ``X`` and, for the final estimator's
      training data, once per inner fold on the other folds (``cross_val_predict``):
      ``n_splits + 1`` fits in all;
    - gives ``groups`` to the base estimators that request them (the CNNs, whose
      early-stopping split then holds out whole patients too), never to the final
      estimator.

    Without ``groups`` it is scikit-learn's ``fit``. ``fit`` declares ``groups``,
    so :func:`~idc_sklearn.compare_models` passes each training fold's patients,
    and requests it, so a search or ``cross_validate`` with metadata routing on
    routes it here.

    See Also
    --------
    PatientVotingClassifier : the mean of the base estimators' probabilities.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from idc_sklearn import (
    ...     PRESETS, MLBNInceptionClassifier, PatientStackingClassifier,
    ...     make_baseline, make_idc_patches,
    ... )
    >>> idc = make_idc_patches(
    ...     n_patients=4, patches_per_patient=8, patch_size=32, random_state=0
    ... )
    >>> network = MLBNInceptionClassifier(
    ...     **PRESETS["tiny"], patch_shape=(32, 32, 3), max_epochs=1, verbose=0,
    ...     random_state=0,
    ... )
    >>> features = make_baseline("color-logreg", patch_shape=(32, 32, 3))
    >>> stack = PatientStackingClassifier(
    ...     [("mlbn", network), ("features", features)],
    ...     final_estimator=LogisticRegression(class_weight="balanced"),
    ...     cv=2,
    ...     stack_method="predict_proba",
    ... ).fit(idc.data, idc.target, groups=idc.groups)
    >>> stack.predict_proba(idc.data).shape
    (32, 2)
    """

    __metadata_request__fit = {"groups": True}

    def fit(self, X, y, groups=None, **fit_params):
        """Fit the base estimators, then the final estimator on their
        out-of-fold predictions, with inner folds by patient.

        Parameters
        ----------
        X : array-like of shape (n, ...)
            Patches as the base estimators take them.
        y : array-like of shape (n,)
            Labels.
        groups : array-like of shape (n,), default=None
            Patient of each patch. ``None`` is scikit-learn's ``fit``, with folds
            that ignore patients.
        **fit_params
            Only without ``groups``: passed to scikit-learn's ``fit``.

        Returns
        -------
        self
        """
        if groups is None or self.cv == "prefit":
            return super().fit(X, y, **fit_params)
        groups = check_groups(groups, len(np.asarray(y)))
        _no_other_params(self, fit_params)
        # scikit-learn's fit would hand groups to the final estimator, and to the
        # inner splitter only through base estimators that request them. Its steps
        # are redone here with the folds fixed first, through StackingClassifier's
        # own helpers and the label encoder its predict reads; tests/test_ensemble.py
        # checks the result against scikit-learn's fit on the same folds.
        self._validate_params()
        check_classification_targets(y)
        self._label_encoder = LabelEncoder().fit(y)
        self.classes_ = self._label_encoder.classes_
        y = self._label_encoder.transform(y)
        folds = self._patient_folds(X, y, groups)

        names, all_estimators = self._validate_estimators()
        self._validate_final_estimator()
        kept = [
            (n, e) for n, e in zip(names, all_estimators, strict=True) if e != "drop"
        ]
        params = {
            name: {"groups": groups} if _requests_groups(estimator) else {}
            for name, estimator in kept
        }
        parallel = Parallel(n_jobs=self.n_jobs)
        self.estimators_ = parallel(
            delayed(_fit)(clone(estimator), X, y, params[name])
            for name, estimator in kept
        )
        fitted = dict(zip((name for name, _ in kept), self.estimators_, strict=True))
        self.named_estimators_ = Bunch(
            **{name: fitted.get(name, "drop") for name in names}
        )
        self.stack_method_ = [
            self._method_name(name, estimator, self.stack_method)
            for name, estimator in kept
        ]
        # The folds are fixed above, so cross_val_predict needs no groups to
        # split; params carries them only to the estimators that request them.
        predictions = parallel(
            delayed(cross_val_predict)(
                clone(estimator),
                X,
                y,
                cv=folds,
                method=method,
                params=params[name],
                verbose=self.verbose,
            )
            for (name, estimator), method in zip(kept, self.stack_method_, strict=True)
        )
        self.final_estimator_.fit(self._concatenate_predictions(X, predictions), y)
        return self

    def get_metadata_routing(self):
        """scikit-learn's router of the ensemble, plus ``fit``'s own request for
        ``groups``.

        Returns
        -------
        sklearn.utils.metadata_routing.MetadataRouter
        """
        return super().get_metadata_routing().add_self_request(self)

    def _patient_folds(self, X, y, groups) -> list:
        """The inner folds, checked to hold every patient on one side."""
        cv = self.cv
        if cv is None or isinstance(cv, numbers.Integral):
            cv = GroupKFold(5 if cv is None else cv)
        folds = list(check_cv(cv).split(X, y, groups))
        for train, test in folds:
            shared = np.intersect1d(groups[train], groups[test])
            if shared.size:
                raise ValueError(
                    f"cv must hold each patient on one side of every fold; cv="
                    f"{self.cv!r} put patient {str(shared[0])!r} on both sides. Pass a "
                    "group splitter, such as GroupKFold, or an int."
                )
        return folds


class PatientVotingClassifier(VotingClassifier):
    """scikit-learn's ``VotingClassifier`` whose ``fit`` takes the patients.

    The parameters, attributes and methods are those of
    :class:`~sklearn.ensemble.VotingClassifier`; ``voting="soft"`` averages the
    base estimators' probabilities (weighted by ``weights``). ``fit(X, y,
    groups)`` fits each base estimator once, on all of ``X``, and gives ``groups``
    to those that request them (the CNNs, whose early-stopping split then holds out
    whole patients), whatever the global metadata routing setting. ``fit``
    declares ``groups``, so :func:`~idc_sklearn.compare_models` passes each
    training fold's patients.

    See Also
    --------
    PatientStackingClassifier : a final estimator learned on out-of-fold
        probabilities.

    Examples
    --------
    >>> from idc_sklearn import PatientVotingClassifier, make_baseline
    >>> from idc_sklearn import make_idc_patches
    >>> idc = make_idc_patches(
    ...     n_patients=6, patches_per_patient=10, patch_size=32, random_state=0
    ... )
    >>> vote = PatientVotingClassifier(
    ...     [
    ...         ("color", make_baseline("color-logreg", patch_shape=(32, 32, 3))),
    ...         ("rf", make_baseline("features-rf", patch_shape=(32, 32, 3))),
    ...     ],
    ...     voting="soft",
    ... ).fit(idc.data, idc.target, groups=idc.groups)
    >>> vote.predict_proba(idc.data).shape
    (60, 2)
    """

    __metadata_request__fit = {"groups": True}

    def fit(self, X, y, groups=None, **fit_params):
        """Fit every base estimator on all of ``X``.

        Parameters
        ----------
        X : array-like of shape (n, ...)
            Patches as the base estimators take them.
        y : array-like of shape (n,)
            Labels.
        groups : array-like of shape (n,), default=None
            Patient of each patch, for the base estimators that request it.
        **fit_params
            Only without ``groups``: passed to scikit-learn's ``fit``.

        Returns
        -------
        self
        """
        if groups is None:
            return super().fit(X, y, **fit_params)
        groups = check_groups(groups, len(np.asarray(y)))
        _no_other_params(self, fit_params)
        # scikit-learn's fit routes metadata only with routing on; on, it hands
        # groups to exactly the base estimators that request them.
        with config_context(enable_metadata_routing=True):
            return super().fit(X, y, groups=groups, **fit_params)

    def get_metadata_routing(self):
        """scikit-learn's router of the ensemble, plus ``fit``'s own request for
        ``groups``, so that ``groups`` is routed here even when no base estimator
        requests it.

        Returns
        -------
        sklearn.utils.metadata_routing.MetadataRouter
        """
        return super().get_metadata_routing().add_self_request(self)

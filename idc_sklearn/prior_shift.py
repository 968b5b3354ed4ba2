"""Each patient's own share of IDC, estimated from its patches, in the predictions.

A patch classifier scores every patch alone, as if each patient had the IDC share
of its training patches. Patients do not: in the IDC archive some hold almost no
IDC and others mostly IDC, and the patches a model gets wrong cluster in the
nearly all-negative ones, where every doubtful patch is called IDC.

This is label shift, and it has a classical correction that needs no labels of the
new patient: Saerens, Latinne & Decaestecker (2002), "Adjusting the outputs of a
classifier to new a priori probabilities: a simple procedure", Neural Computation
14(1). Their EM algorithm estimates the new prior from the model's own
probabilities on the new samples and re-weights each posterior by the ratio of the
new prior to the training one. Here it runs once per patient, on that patient's
patches, with a Beta prior on the patient's share that pulls patients with few
patches (and a model's overconfident probabilities) towards the training share:
the maximum a posteriori EM of the same paper's Section 3, with ``strength``
pseudo-patches at ``train_prior``.

:func:`adapt_to_patients` does it on probabilities; :class:`PatientPriorClassifier`
wraps any binary classifier so that ``predict(X, groups=...)`` and
``predict_proba(X, groups=...)`` do it per patient. Without ``groups`` the wrapper
is the classifier it wraps, unchanged: a patch alone has no patient to adapt to.
Given the patches' positions too (``coords=``) and a ``neighbour_weight`` above 0,
it first mixes each probability with its neighbours' on the slide
(:func:`~idc_sklearn.smooth_neighbours`).

:func:`decision_threshold` reads the probability from which a model, wrapped or
not, calls IDC: the slides' outputs and the command line report it.
"""

from __future__ import annotations

import copy
import numbers

import numpy as np
from scipy.special import expit, logit
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.utils import get_tags
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted, has_fit_parameter

from idc_sklearn.patches import check_groups
from idc_sklearn.spatial import (
    check_coords,
    check_neighbour_weight,
    check_stride,
    smooth_neighbours,
)

__all__ = ["PatientPriorClassifier", "adapt_to_patients"]

#: A patient's share is kept this far inside (0, 1): its log-odds stay finite.
_EDGE = 1e-6


def _check_prior(train_prior) -> float:
    if (
        isinstance(train_prior, bool)
        or not isinstance(train_prior, numbers.Real)
        or not 0 < train_prior < 1
    ):
        raise ValueError(
            "train_prior must be the IDC share the probabilities were trained at, "
            f"a float strictly between 0 and 1; got {train_prior!r}."
        )
    return float(train_prior)


def _check_strength(strength) -> float:
    if (
        isinstance(strength, bool)
        or not isinstance(strength, numbers.Real)
        or not strength >= 0  # also refuses NaN
    ):
        raise ValueError(
            "strength must be the weight of the training share in pseudo-patches, "
            f"a float >= 0 (np.inf: no adaptation); got {strength!r}."
        )
    return float(strength)


def adapt_to_patients(
    proba,
    groups,
    *,
    train_prior: float = 0.5,
    strength: float = 100.0,
    max_iter: int = 100,
    tol: float = 1e-6,
    return_priors: bool = False,
):
    """Re-weight each patient's IDC probabilities to that patient's own IDC share.

    Per patient, EM alternates: the posteriors at the current share (the model's
    odds times the ratio of the share's odds to ``train_prior``'s), then the share
    as the mean posterior, pulled towards ``train_prior`` by ``strength``
    pseudo-patches (Saerens et al. 2002, their MAP variant). A patient with many
    patches gets the share its patches show; one with few stays near
    ``train_prior``. No label is read.

    Parameters
    ----------
    proba : array-like of shape (n_patches,)
        The probability of IDC of each patch, from a model whose probabilities
        are calibrated to ``train_prior`` (a model trained with
        ``class_weight="balanced"`` or on balanced data: 0.5).
    groups : array-like of shape (n_patches,)
        The patient (or slide) of each patch.
    train_prior : float, default=0.5
        The IDC share the probabilities assume, strictly between 0 and 1.
    strength : float, default=100
        The weight of ``train_prior`` in the patient's share, in patches: the
        share is ``(sum of posteriors + strength * train_prior) / (n + strength)``.
        0 is the plain EM; ``np.inf`` returns ``proba`` unchanged. 100 was chosen
        by cross-validation by patient on the IDC archive (``docs/results.md``).
    max_iter : int, default=100
        EM iterations at most.
    tol : float, default=1e-6
        EM stops when no patient's share moves by more than this.
    return_priors : bool, default=False
        Also return each patient's estimated share.

    Returns
    -------
    adapted : ndarray of shape (n_patches,)
        The probabilities of IDC at each patient's own share, float64.
    priors : dict
        Only with ``return_priors``: ``{patient: share}``.

    Raises
    ------
    ValueError
        If ``proba`` is not one probability in [0, 1] per patch, ``groups`` not
        one patient per patch, or a parameter is out of its range.

    Examples
    --------
    >>> import numpy as np
    >>> from idc_sklearn import adapt_to_patients
    >>> proba = np.array([0.6, 0.6, 0.2, 0.2, 0.2, 0.2, 0.9, 0.9])
    >>> groups = np.array(["a", "a", "a", "a", "a", "a", "b", "b"])
    >>> adapted, shares = adapt_to_patients(
    ...     proba, groups, strength=2, return_priors=True
    ... )
    >>> adapted.round(2)
    array([0.33, 0.33, 0.07, 0.07, 0.07, 0.07, 0.96, 0.96])
    >>> {patient: round(share, 2) for patient, share in shares.items()}
    {'a': 0.24, 'b': 0.73}

    Patient ``a``, mostly doubtful patches, is re-weighted towards no IDC: its
    0.6 patches fall below 0.5. With ``strength=0`` (the plain EM) a patient whose
    patches all lean one way is driven to a share of 0 or 1.
    """
    proba = np.asarray(proba, dtype=float)
    if proba.ndim != 1 or not np.all((proba >= 0) & (proba <= 1)):
        raise ValueError(
            "proba must be one probability of IDC in [0, 1] per patch, a 1-D "
            f"array; got shape {proba.shape}"
            + ("" if proba.ndim != 1 else " with values outside [0, 1] or NaN")
            + "."
        )
    groups = check_groups(groups, len(proba))
    if groups is None:
        raise ValueError(
            "groups must hold one patient id per patch, shape "
            f"({len(proba)},); got None."
        )
    train_prior = _check_prior(train_prior)
    strength = _check_strength(strength)
    if not isinstance(max_iter, numbers.Integral) or max_iter < 1:
        raise ValueError(f"max_iter must be an int >= 1; got {max_iter!r}.")
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not tol >= 0:
        raise ValueError(f"tol must be a float >= 0; got {tol!r}.")
    patients, index = np.unique(groups, return_inverse=True)
    shares = np.full(len(patients), train_prior)
    if np.isinf(strength) or len(proba) == 0:
        adapted = proba.copy()
    else:
        counts = np.bincount(index, minlength=len(patients))
        scores = logit(proba) - logit(train_prior)  # log-odds, less the prior's
        for _ in range(max_iter):
            adapted = expit(scores + logit(shares)[index])
            new = (
                np.bincount(index, adapted, len(patients)) + strength * train_prior
            ) / (counts + strength)
            new = np.clip(new, _EDGE, 1 - _EDGE)
            moved = np.max(np.abs(new - shares))
            shares = new
            if moved <= tol:
                break
        adapted = expit(scores + logit(shares)[index])
    if return_priors:
        return adapted, dict(zip(patients.tolist(), shares.tolist(), strict=True))
    return adapted


class PatientPriorClassifier(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """A binary classifier whose predictions, given the patients, follow each
    patient's own IDC share (:func:`adapt_to_patients`).

    ``fit`` fits a clone of ``estimator`` (wrap a fitted model in
    :class:`~sklearn.frozen.FrozenEstimator` to keep it as it is).
    ``predict_proba(X, groups=groups)`` re-weights its probabilities of IDC to each
    patient's share, estimated from that patient's patches in ``X``, and
    ``predict(X, groups=groups)`` calls IDC where the re-weighted probability
    exceeds 0.5. Pass every patch of a patient (or of a slide) together: the share
    comes from the patches given.

    Given each patch's position on its slide too (``coords=``, for instance the
    archive's ``x`` and ``y``) and a ``neighbour_weight`` above 0, each
    probability is first mixed with its neighbours' on the same patient's slide
    (:func:`~idc_sklearn.smooth_neighbours`), then adapted to the patient's share.

    Without ``groups`` and ``coords`` (a scorer, a pipeline, one patch at a time),
    ``predict`` and ``predict_proba`` are ``estimator``'s own, threshold included:
    nothing is adapted. With ``coords`` alone the patches are smoothed as one
    slide's, and no share is estimated.

    Parameters
    ----------
    estimator : classifier
        A binary classifier with ``predict_proba``; the second column is read as
        the probability of IDC.
    train_prior : float, default=0.5
        The IDC share ``estimator``'s probabilities assume (0.5 for one trained
        balanced, as the library's pretrained models and ``features-hgb`` are).
    strength : float, default=100
        The weight of ``train_prior`` in each patient's share, in patches
        (:func:`adapt_to_patients`); ``np.inf`` adapts nothing.
    neighbour_weight : float, default=0
        The share of the neighbours' mean in each probability where ``coords`` are
        given (:func:`~idc_sklearn.smooth_neighbours`'s ``weight``), in [0, 1];
        0 ignores the positions.
    stride : float, default=50
        The distance between two adjacent patches' positions in ``coords``: 50
        pixels in the IDC archive.

    Attributes
    ----------
    estimator_ : classifier
        The fitted clone of ``estimator``.
    classes_ : ndarray of shape (2,)
        ``estimator_.classes_``.

    See Also
    --------
    adapt_to_patients : The adaptation, on probabilities.

    Examples
    --------
    >>> from sklearn.frozen import FrozenEstimator
    >>> from idc_sklearn import PatientPriorClassifier, load_idc_sample, make_baseline
    >>> data = load_idc_sample()
    >>> X, y, groups = data.data[:600], data.target[:600], data.groups[:600]
    >>> hgb = make_baseline("features-hgb", random_state=0).fit(X[:400], y[:400])
    >>> model = PatientPriorClassifier(FrozenEstimator(hgb)).fit(X[:400], y[:400])
    >>> model.predict(X[400:], groups=groups[400:]).shape
    (200,)

    With the patches' positions on their slides (the archive's ``x`` and ``y``),
    each patch is first mixed with its neighbours':

    >>> coords = data.frame[["x", "y"]].to_numpy()[400:600]
    >>> model.set_params(neighbour_weight=0.5)  # doctest: +ELLIPSIS
    PatientPriorClassifier(...)
    >>> model.predict(X[400:], groups=groups[400:], coords=coords).shape
    (200,)
    """

    def __init__(
        self,
        estimator,
        *,
        train_prior=0.5,
        strength=100.0,
        neighbour_weight=0.0,
        stride=50.0,
    ):
        self.estimator = estimator
        self.train_prior = train_prior
        self.strength = strength
        self.neighbour_weight = neighbour_weight
        self.stride = stride

    def fit(self, X, y, groups=None, **fit_params):
        """Fit a clone of ``estimator`` on ``X, y``.

        ``groups`` (the patients) go to ``estimator``'s ``fit`` where it takes
        them, as the library's CNNs do for a validation split by patient;
        ``fit_params`` go to it as they are.
        """
        _check_prior(self.train_prior)
        _check_strength(self.strength)
        check_neighbour_weight(self.neighbour_weight)
        check_stride(self.stride)
        if not hasattr(self.estimator, "predict_proba"):
            raise TypeError(
                "estimator must have predict_proba (the probability of IDC is "
                f"what is adapted); got {type(self.estimator).__name__}."
            )
        kind = type_of_target(y, input_name="y", raise_unknown=True)
        if kind != "binary":
            raise ValueError(
                "Only binary classification is supported: PatientPriorClassifier "
                f"adapts a binary classifier (IDC or not); y is {kind}."
            )
        if groups is not None and has_fit_parameter(self.estimator, "groups"):
            fit_params = {**fit_params, "groups": groups}
        self.estimator_ = clone(self.estimator).fit(X, y, **fit_params)
        classes = np.asarray(self.estimator_.classes_)
        if len(classes) != 2:
            raise ValueError(
                "Only binary classification is supported: PatientPriorClassifier "
                "adapts a binary classifier (IDC or not); the fitted estimator has "
                f"classes {classes.tolist()}."
            )
        self.classes_ = classes
        if hasattr(self.estimator_, "n_features_in_"):
            self.n_features_in_ = self.estimator_.n_features_in_
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # What it takes is what its estimator takes; its classes are two.
        tags.input_tags = copy.deepcopy(get_tags(self.estimator).input_tags)
        tags.classifier_tags.multi_class = False
        return tags

    def predict_proba(self, X, groups=None, coords=None):
        """``estimator_``'s probabilities; with ``coords``, mixed with each patch's
        neighbours'; with ``groups``, at each patient's share.

        Parameters
        ----------
        X : array-like
            Patches, as ``estimator`` takes them.
        groups : array-like of shape (n_patches,), default=None
            The patient of each patch; None estimates no share.
        coords : array-like of shape (n_patches, 2), default=None
            Each patch's (x, y) position on its slide, in the units of ``stride``;
            None (or ``neighbour_weight=0``) mixes in no neighbours.

        Returns
        -------
        ndarray of shape (n_patches, 2)
        """
        check_is_fitted(self)
        proba = np.asarray(self.estimator_.predict_proba(X))
        groups = check_groups(groups, len(proba))
        if coords is not None:
            coords = check_coords(coords, len(proba))
        if groups is None and not self._smooths(coords):
            return proba
        if groups is None:
            adapted = self._smooth(proba[:, 1], None, coords)
        else:
            adapted = self.adapt_proba(proba[:, 1], groups, coords=coords)
        return np.column_stack([1 - adapted, adapted])

    def _smooths(self, coords) -> bool:
        return coords is not None and self.neighbour_weight > 0

    def _smooth(self, proba, groups, coords):
        if not self._smooths(coords):
            return np.asarray(proba, dtype=float)
        return smooth_neighbours(
            proba,
            coords,
            groups,
            weight=self.neighbour_weight,
            stride=self.stride,
        )

    def patient_shares(self, X, groups, coords=None) -> dict:
        """Each patient's IDC share, estimated from its patches in ``X``: the
        share ``predict`` and ``predict_proba`` adapt that patient to, given the
        same ``groups`` and ``coords``.

        Returns
        -------
        dict
            ``{patient: share}``, the patients sorted.
        """
        check_is_fitted(self)
        proba = np.asarray(self.estimator_.predict_proba(X))[:, 1]
        return self.adapt_proba(proba, groups, coords=coords, return_shares=True)[1]

    def adapt_proba(self, proba, groups, *, coords=None, return_shares=False):
        """``estimator_``'s probabilities of IDC, computed already (in batches, over
        a slide), adapted to each patient's share at this model's ``train_prior``
        and ``strength``: :func:`adapt_to_patients` with them; with ``coords``,
        first mixed with each patch's neighbours' at ``neighbour_weight``.

        Parameters
        ----------
        proba : array-like of shape (n_patches,)
            ``estimator_.predict_proba(X)[:, 1]``.
        groups : array-like of shape (n_patches,)
            The patient of each patch.
        coords : array-like of shape (n_patches, 2), default=None
            Each patch's (x, y) position on its slide, in the units of ``stride``.
        return_shares : bool, default=False
            Also return ``{patient: share}``.
        """
        if self._smooths(coords):
            groups = check_groups(groups, len(np.asarray(proba)))
            proba = self._smooth(proba, groups, coords)
        return adapt_to_patients(
            proba,
            groups,
            train_prior=self.train_prior,
            strength=self.strength,
            return_priors=return_shares,
        )

    def predict(self, X, groups=None, coords=None):
        """IDC where the adapted probability exceeds 0.5; without ``groups`` and
        ``coords``, ``estimator_.predict(X)``."""
        check_is_fitted(self)
        if groups is None and not self._smooths(coords):
            return self.estimator_.predict(X)
        proba = self.predict_proba(X, groups, coords)[:, 1]
        return self.classes_[(proba > 0.5).astype(int)]


def decision_threshold(estimator) -> float | None:
    """The probability from which ``estimator``'s ``predict`` calls the positive
    class, where it has a threshold of its own; None where it calls the likelier
    class (0.5 for two classes).

    A model wrapped in a fixed threshold
    (:class:`~sklearn.model_selection.FixedThresholdClassifier`, as
    :func:`~idc_sklearn.load_pretrained` returns a model whose threshold was chosen
    by cross-validation) has its own. A
    :class:`PatientPriorClassifier` predicts without patients as the
    model inside it does, so it has that model's.
    """
    if isinstance(estimator, PatientPriorClassifier):
        inner = getattr(estimator, "estimator_", None)
        return decision_threshold(estimator.estimator if inner is None else inner)
    threshold = getattr(estimator, "threshold", None)
    if isinstance(threshold, numbers.Real) and not isinstance(threshold, bool):
        return float(threshold)
    return None

"""What a patch estimator checks and learns before it trains.

:class:`InputValidationMixin` gives a skorch net the checks of ``fit`` and
``partial_fit``: the parameters against the estimator's
``_parameter_constraints`` (sklearn's validation, once per call), the patches
(:func:`~idc_sklearn.patches.check_patches`), and ``classes_`` with the loss
weights of ``class_weight``, learned from the labels.
"""

from __future__ import annotations

import contextvars
from contextlib import contextmanager

import numpy as np
from sklearn.utils._param_validation import validate_parameter_constraints
from sklearn.utils.class_weight import compute_class_weight

from idc_sklearn._device import check_device
from idc_sklearn.patches import check_patch_shape, check_patches, warn_if_scaled

__all__ = ["InputValidationMixin"]

# The estimator whose parameters the fit in progress has validated, so that
# initialize does not check them again.
_VALIDATED = contextvars.ContextVar("idc_sklearn_validated", default=None)


class InputValidationMixin:
    """Parameters, patches and labels of a patch estimator, checked at the boundary.

    - ``_validated()``: the context of one ``fit`` or ``partial_fit``, which
      checks the parameters on entering; ``initialize`` inside it does not check
      them again (``_validate_once``), a direct call does;
    - ``_check_X``: patches of ``patch_shape`` (4-D, or 2-D rows), as a view;
    - ``_learn_classes``: ``classes_`` and ``class_weight_``;
    - ``_learn_input_statistics``: a hook for what the network needs of the
      training patches (the CNN baselines' mean);
    - ``check_data``: skorch's check, off (inputs are checked where they enter).

    Needs the estimator's ``_parameter_constraints``, ``patch_shape``,
    ``normalize``, ``classes``, ``class_weight`` and ``device``.
    """

    # The smallest patch side the network accepts (None: not checked here).
    _min_patch_size: int | None = None

    @contextmanager
    def _validated(self):
        """Check the parameters once for the ``fit`` or ``partial_fit`` inside."""
        self._validate_constraints()
        token = _VALIDATED.set(self)
        try:
            yield
        finally:
            _VALIDATED.reset(token)

    def _validate_once(self) -> None:
        """Check the parameters unless the ``fit`` in progress has checked them."""
        if _VALIDATED.get() is not self:
            self._validate_constraints()

    def _validate_constraints(self) -> None:
        """Check the parameters' values; ``fit`` calls it first, before any work."""
        params = self.get_params(deep=False)
        params["device"] = self.__dict__["device"]
        if params.get("batch_size") == -1:
            # skorch's "the whole dataset in one batch"
            params.pop("batch_size")
        validate_parameter_constraints(
            self._parameter_constraints, params, caller_name=type(self).__name__
        )
        height, width, _ = check_patch_shape(self.patch_shape)
        if self._min_patch_size is not None and min(height, width) < (
            self._min_patch_size
        ):
            raise ValueError(
                f"patch_shape {tuple(self.patch_shape)!r} is too small for "
                f"{type(self).__name__}: height and width must be at least "
                f"{self._min_patch_size}."
            )
        check_device(self.__dict__["device"])

    def _check_X(self, X, *, check_finite: bool = True) -> np.ndarray:
        X = check_patches(X, self.patch_shape, check_finite=check_finite)
        if self.normalize == "scale":
            warn_if_scaled(X)
        return X

    def _learn_classes(self, y: np.ndarray, classes=None) -> None:
        """``classes_`` (from ``classes``, the parameter, or ``y``) and the loss
        weights, which "balanced" computes from ``y``."""
        if classes is None:
            classes = self.classes
        classes = np.unique(y) if classes is None else np.asarray(classes)
        if len(classes) < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes in y; "
                f"got 1 class: {classes.tolist()}."
            )
        absent = np.setdiff1d(classes, y)
        if self.class_weight == "balanced" and len(absent):
            raise ValueError(
                'class_weight="balanced" weighs the classes by their frequency in '
                f"y, and y holds no {absent.tolist()} of classes "
                f"{classes.tolist()}; pass class_weight as a dict, or a first y "
                "with every class."
            )
        self.classes_inferred_ = classes
        self.class_weight_ = (
            None
            if self.class_weight is None
            else compute_class_weight(self.class_weight, classes=classes, y=y)
        )

    def _learn_input_statistics(self, X: np.ndarray) -> None:
        """Learn what the network needs of the training patches, before it is built.

        A no-op here; baselines that subtract a training mean override it.
        """

    def check_data(self, X, y):
        # Inputs are validated where they enter (fit / partial_fit); skorch's own
        # check would re-infer classes_ from the encoded labels.
        pass

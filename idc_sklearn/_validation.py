"""What a patch estimator checks and learns before it trains.

``fit`` and ``partial_fit`` of :class:`~idc_sklearn.PatchNetClassifier` call these
once, on entering: :func:`check_parameters` (the estimator's
``_parameter_constraints``, sklearn's validation, plus ``patch_shape`` and
``device``, which need more than a type or an option list) and
:func:`learn_classes` (``classes_`` and the loss weights of ``class_weight``, from
the labels). The patches themselves are checked by
:func:`~idc_sklearn.patches.check_patches`.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils._param_validation import validate_parameter_constraints
from sklearn.utils.class_weight import compute_class_weight

from idc_sklearn._device import check_device
from idc_sklearn.patches import check_patch_shape

__all__ = ["check_parameters", "learn_classes"]


def check_parameters(
    estimator, constraints: dict, *, min_patch_size: int | None = None
) -> None:
    """Check ``estimator``'s parameters against ``constraints`` and the shape rules.

    Errors are sklearn's ``InvalidParameterError`` (a ValueError naming the
    parameter, the value received and what is accepted), or a ValueError of
    :func:`~idc_sklearn.patches.check_patch_shape` or
    :func:`~idc_sklearn._device.check_device`. ``min_patch_size`` is the
    smallest patch side the network accepts (None: not checked).
    """
    params = estimator.get_params(deep=False)
    if params.get("batch_size") == -1:
        # skorch's "the whole dataset in one batch"
        params.pop("batch_size")
    name = type(estimator).__name__
    validate_parameter_constraints(constraints, params, caller_name=name)
    height, width, _ = check_patch_shape(params["patch_shape"])
    if min_patch_size is not None and min(height, width) < min_patch_size:
        raise ValueError(
            f"patch_shape {tuple(params['patch_shape'])!r} is too small for "
            f"{name}: height and width must be at least {min_patch_size}."
        )
    check_device(params["device"])


def learn_classes(
    y: np.ndarray, classes, class_weight, *, owner: str
) -> tuple[np.ndarray, np.ndarray | None]:
    """``classes_`` (``classes`` where given, else those of ``y``) and the loss
    weights of ``class_weight`` in their order, which "balanced" computes from
    ``y``; ``owner`` names the estimator in the errors."""
    classes = np.unique(y) if classes is None else np.asarray(classes)
    if len(classes) < 2:
        raise ValueError(
            f"{owner} needs samples of at least 2 classes in y; "
            f"got 1 class: {classes.tolist()}."
        )
    absent = np.setdiff1d(classes, y)
    if class_weight == "balanced" and len(absent):
        raise ValueError(
            'class_weight="balanced" weighs the classes by their frequency in '
            f"y, and y holds no {absent.tolist()} of classes "
            f"{classes.tolist()}; pass class_weight as a dict, or a first y "
            "with every class."
        )
    if class_weight is None:
        return classes, None
    return classes, compute_class_weight(class_weight, classes=classes, y=y)

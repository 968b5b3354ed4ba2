"""The checks of whole-slide arguments, each raised where the argument enters.

Every message names the argument, the value received and what is expected. The
fraction, output-path and last-step checks are the library's shared ones
(:mod:`idc_sklearn._checks`).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from idc_sklearn._checks import final_step, patch_networks

BACKENDS = ("auto", "openslide", "tiffslide")


def check_positive(value, name: str, *, none: bool = False) -> float | None:
    """A finite number > 0 (or None where ``none``), as a float."""
    if value is None and none:
        return None
    if isinstance(value, bool) or not (
        isinstance(value, (int, float, np.integer, np.floating))
        and math.isfinite(value)
        and value > 0
    ):
        expected = "None or a positive number" if none else "a positive number"
        raise ValueError(f"{name} must be {expected}; got {value!r}.")
    return float(value)


def check_count(value, name: str, least: int, *, auto: bool = False) -> int | str:
    """An int >= ``least``; also "auto" where ``auto``."""
    if auto and value == "auto":
        return value
    if isinstance(value, bool) or not (
        isinstance(value, (int, np.integer)) and value >= least
    ):
        expected = f"an int >= {least}" + (" or 'auto'" if auto else "")
        raise ValueError(f"{name} must be {expected}; got {value!r}.")
    return int(value)


def check_slide_path(slide) -> str:
    """The path of a slide file that exists, as a str."""
    if not isinstance(slide, (str, os.PathLike)):
        raise TypeError(
            f"slide must be the path of a whole-slide image; got "
            f"{type(slide).__name__}."
        )
    path = Path(slide).expanduser()
    if not path.exists():
        raise FileNotFoundError(
            f"slide={str(slide)!r} does not exist; expected the path of a "
            "whole-slide image file."
        )
    if path.is_dir():
        raise ValueError(
            f"slide={str(slide)!r} is a folder; expected a whole-slide image file "
            "(for MIRAX, the .mrxs file beside the folder)."
        )
    return str(path)


def check_origin(origin) -> tuple[float, float]:
    """Two non-negative level-0 pixel offsets."""
    try:
        values = tuple(float(v) for v in origin)
    except (TypeError, ValueError):
        values = ()
    if len(values) != 2 or not all(math.isfinite(v) and v >= 0 for v in values):
        raise ValueError(
            f"origin must be (x, y), two non-negative level-0 pixel offsets; "
            f"got {origin!r}."
        )
    return values


def check_backend(backend) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}; got {backend!r}.")
    return backend


def check_estimator(estimator, tile_size) -> tuple[int, int]:
    """The fitted estimator's IDC column and the tile side it takes."""
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    if not hasattr(estimator, "predict_proba"):
        raise TypeError(
            "estimator must be a fitted classifier with predict_proba (an estimator "
            "of idc_sklearn, or a Pipeline ending in one); got "
            f"{type(estimator).__name__}."
        )
    try:
        check_is_fitted(estimator)
    except NotFittedError as exc:
        raise NotFittedError(
            f"estimator: this {type(estimator).__name__} is not fitted yet; fit it, "
            "or load a saved or pretrained model (load_model, load_pretrained), "
            "before predict_slide."
        ) from exc
    final = final_step(estimator)
    classes = list(getattr(final, "classes_", [0, 1]))
    column = classes.index(1) if 1 in classes else len(classes) - 1
    shape = getattr(final, "patch_shape", None)
    if shape is None:
        # A wrapper (a fixed threshold, an ensemble): the shape its network takes.
        networks = patch_networks(estimator)
        shape = networks[0].patch_shape if networks else None
    return column, _tile_side(shape, tile_size)


def _tile_side(shape, tile_size) -> int:
    """``tile_size`` checked against the patch shape the model takes (if any)."""
    model_px = None
    if shape is not None:
        if shape[0] != shape[1] or shape[2] != 3:
            raise ValueError(
                f"estimator takes patches of shape {tuple(shape)}; predict_slide cuts "
                "square RGB tiles (height == width, 3 channels)."
            )
        model_px = int(shape[0])
    if tile_size is None:
        return model_px or 50
    if isinstance(tile_size, bool) or not (
        isinstance(tile_size, (int, np.integer)) and tile_size > 0
    ):
        raise ValueError(
            f"tile_size must be None or a positive int (pixels); got {tile_size!r}."
        )
    if model_px is not None and tile_size != model_px:
        raise ValueError(
            f"tile_size={tile_size}: the estimator takes {model_px}x{model_px} "
            f"patches (its patch_shape {tuple(shape)}); pass tile_size={model_px} "
            "or None."
        )
    return int(tile_size)

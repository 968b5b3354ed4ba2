"""The frame of a dataset's Bunch: one row per patch, the same columns everywhere.

``load_idc``, ``load_idc_sample`` and ``make_idc_patches`` all return it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FRAME_COLUMNS = ("patient", "x", "y", "target", "path", "height", "width")


def make_frame(*, patient, target, x, y, path, height, width) -> pd.DataFrame:
    """The frame of one patch a row, from its columns (sequences of equal length)."""
    return pd.DataFrame(
        {
            "patient": pd.Series(patient, dtype=str),
            "x": np.asarray(x, dtype=np.int64),
            "y": np.asarray(y, dtype=np.int64),
            "target": np.asarray(target, dtype=np.int64),
            "path": pd.Series(path, dtype=str),
            "height": np.asarray(height, dtype=np.int64),
            "width": np.asarray(width, dtype=np.int64),
        },
        columns=list(FRAME_COLUMNS),
    )

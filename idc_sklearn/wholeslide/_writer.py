"""An RGB image written as a pyramidal, tiled TIFF that OpenSlide and QuPath read."""

from __future__ import annotations

import numpy as np

from idc_sklearn._checks import check_output_path
from idc_sklearn.wholeslide._arguments import check_positive


def write_slide(image, path, *, mpp: float, tile: int = 256, compression="zlib"):
    """Write an RGB image as a tiled, pyramidal TIFF that OpenSlide reads.

    Each level halves the one before until the image fits in one tile; the
    resolution is recorded, so OpenSlide reports ``openslide.mpp-x`` and
    :func:`predict_slide` needs no ``mpp=``. For slides rebuilt from patches
    (:func:`idc_sklearn.plotting.slide_image`), or any image to open in QuPath.

    Parameters
    ----------
    image : ndarray of shape (height, width, 3), uint8
    path : str or path-like
        The TIFF to write (``.tif`` or ``.tiff``).
    mpp : float
        Microns per pixel of ``image``.
    tile : int, default=256
        The TIFF's tile side, a multiple of 16.
    compression : str, default="zlib"
        tifffile's compression ("zlib", "jpeg", "none", ...).
    """
    import tifffile
    from PIL import Image

    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(
            "image must be an RGB uint8 array of shape (height, width, 3); got "
            f"shape {image.shape} and dtype {image.dtype}."
        )
    mpp = check_positive(mpp, "mpp")
    if isinstance(tile, bool) or not (
        isinstance(tile, (int, np.integer)) and tile >= 16 and tile % 16 == 0
    ):
        raise ValueError(f"tile must be a positive multiple of 16; got {tile!r}.")
    path = check_output_path(path, "path", (".tif", ".tiff"), optional=True)
    level, scale = image, 1
    with tifffile.TiffWriter(path, bigtiff=image.nbytes > 2**31) as tif:
        while True:
            tif.write(
                level,
                tile=(tile, tile),
                photometric="rgb",
                compression=None if compression == "none" else compression,
                resolution=(1e4 / (mpp * scale),) * 2,
                resolutionunit="CENTIMETER",
                subfiletype=1 if scale > 1 else 0,
            )
            if max(level.shape[:2]) <= tile:
                break
            scale *= 2
            size = (max(1, level.shape[1] // 2), max(1, level.shape[0] // 2))
            level = np.asarray(
                Image.fromarray(level).resize(size, Image.Resampling.BOX)
            )

"""Data: the real IDC archive, its sample shipped here, and a synthetic generator.

None of them imports torch: loading and generating data needs numpy, pandas and Pillow.
The archive's loader is in parts, one job each: the scanner (``_scanner.py``) checks
the layout and lists the files, the decoder (``_decode.py``) reads PNG patches, the
cache (``_cache.py``) keeps what was decoded, and ``_loader.py`` joins them in
``load_idc``; ``_patient_split.py`` reads the paper's patient split.
"""

from ._decode import read_patch
from ._loader import load_idc
from ._patient_split import read_patient_split
from ._sample import idc_sample_file, load_idc_sample
from ._scanner import check_archive_layout
from ._synthetic import make_idc_patches

__all__ = [
    "check_archive_layout",
    "idc_sample_file",
    "load_idc",
    "load_idc_sample",
    "make_idc_patches",
    "read_patch",
    "read_patient_split",
]

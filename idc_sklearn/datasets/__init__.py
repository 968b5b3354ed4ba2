"""Data: the real IDC archive, its sample shipped here, and a synthetic generator.

None of them imports torch: loading and generating data needs numpy, pandas and Pillow.
"""

from ._loader import check_archive_layout, load_idc, read_patch, read_patient_split
from ._sample import idc_sample_file, load_idc_sample
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

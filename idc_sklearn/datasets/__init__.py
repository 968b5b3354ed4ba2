"""Data: the real IDC archive of PNG patches and a synthetic IDC-like generator.

Neither imports torch: loading and generating data needs numpy, pandas and Pillow only.
"""

from ._loader import load_idc, read_patient_split
from ._synthetic import make_idc_patches

__all__ = ["load_idc", "make_idc_patches", "read_patient_split"]

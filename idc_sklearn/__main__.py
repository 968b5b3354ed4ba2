"""``python -m idc_sklearn``: the ``idc-sklearn`` command line."""

import sys

from idc_sklearn.cli import main

if __name__ == "__main__":
    sys.exit(main())

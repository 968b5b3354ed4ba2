"""The public namespace: every name one hop from ``idc_sklearn``."""

import subprocess
import sys

import pytest

import idc_sklearn


@pytest.mark.parametrize("name", idc_sklearn.__all__)
def test_every_public_name_resolves_from_the_package(name):
    obj = getattr(idc_sklearn, name)
    module = idc_sklearn._PUBLIC[name]
    assert getattr(sys.modules[module], name) is obj
    if hasattr(obj, "__module__"):
        assert obj.__module__.startswith("idc_sklearn")


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'MLBN'"):
        idc_sklearn.MLBN  # noqa: B018


def test_importing_the_package_imports_no_torch():
    code = "import sys, idc_sklearn; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)

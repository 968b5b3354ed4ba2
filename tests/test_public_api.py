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


_NO_TORCH = """
import sys
from idc_sklearn import SCORING, compare_models, load_idc, make_baseline
from idc_sklearn import make_idc_patches
from idc_sklearn.baselines import BASELINES
from idc_sklearn.cli import main

data = make_idc_patches(n_patients=4, patches_per_patient=10, patch_size=32,
                        random_state=0)
models = {name: make_baseline(name, patch_shape=(32, 32, 3)) for name in
          ("color-logreg", "features-rf")}
compare_models(models, data.data, data.target, data.groups, cv=2, progress=False)
for argv in (["--help"], *([c, "--help"] for c in
             ("compare", "train", "predict", "heatmap", "info"))):
    try:
        main(argv)
    except SystemExit:
        pass
loaded = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
assert not loaded, loaded[:5]
assert "skorch" not in sys.modules
"""


def test_sklearn_only_paths_never_import_torch():
    # Data, handcrafted baselines, metrics, the comparison of sklearn pipelines and
    # the command line's help and every subcommand's: none of them needs torch, so
    # none loads it.
    subprocess.run(
        [sys.executable, "-c", _NO_TORCH], check=True, capture_output=True, text=True
    )

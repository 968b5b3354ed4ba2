"""The public namespace: every name one hop from ``idc_sklearn``; and the package's
own imports: no module reads another's private name, and none imports in a cycle."""

import ast
import graphlib
import subprocess
import sys
from pathlib import Path

import pytest

import idc_sklearn


@pytest.mark.parametrize("name", idc_sklearn.__all__)
def test_every_public_name_resolves_from_the_package(name):
    obj = getattr(idc_sklearn, name)
    module = idc_sklearn._PUBLIC[name]
    assert getattr(sys.modules[module], name) is obj
    if hasattr(obj, "__module__"):
        assert obj.__module__.startswith("idc_sklearn")


def _public_table_and_type_checking_imports(source: str):
    """``_PUBLIC`` as written in the package's ``__init__.py``, and what its ``if
    TYPE_CHECKING:`` block imports: each as {name: module}."""
    tree = ast.parse(source)
    table, imported = None, {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "_PUBLIC" for t in node.targets
        ):
            table = ast.literal_eval(node.value)
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            for statement in node.body:
                assert isinstance(statement, ast.ImportFrom), ast.unparse(statement)
                for alias in statement.names:
                    assert alias.asname in (None, alias.name), ast.unparse(statement)
                    assert alias.name not in imported, alias.name
                    imported[alias.name] = statement.module
    return table, imported


def test_the_type_checking_imports_mirror_the_lazy_table():
    # Editors and type checkers read the block; the package imports by the table.
    source = (PACKAGE / "__init__.py").read_text(encoding="utf-8")
    table, imported = _public_table_and_type_checking_imports(source)
    assert table == idc_sklearn._PUBLIC
    assert imported == table


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'MLBN'"):
        idc_sklearn.MLBN  # noqa: B018


# -- what each part loads: run in a fresh interpreter, then the modules it must not
# have imported. The paths that need no torch never load it (nor skorch); the network
# loads torch alone.

NO_TORCH = ("torch", "skorch")

_SKLEARN_ONLY = """
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
             ("compare", "train", "predict", "heatmap", "export", "info"))):
    try:
        main(argv)
    except SystemExit:
        pass
"""

# Without pyplot no backend is selected or switched: the user's stays theirs.
_FIGURES = """
import io, sys, numpy as np, pandas as pd
from idc_sklearn import plotting as p
p.plot_comparison(pd.DataFrame({'balanced_accuracy_mean': [0.8],
                                'f1_idc_mean': [0.7]})).savefig(io.BytesIO(),
                                                                 format='png')
p.plot_learning_curves([{'train_loss': 0.5}, {'train_loss': 0.4}])
p.plot_slide_heatmap(np.zeros((1, 8, 8, 3), np.uint8), [0], [0], [0.5])
assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'
# sklearn's displays import pyplot, but none leaves a figure open in it.
p.plot_roc_curves([0, 1, 1], {'m': [0.2, 0.7, 0.6]})
p.plot_confusion_matrix([0, 1, 1], [0, 1, 0])
import matplotlib.pyplot as plt
assert plt.get_fignums() == []
"""

IMPORT_CASES = {
    "package": ("import idc_sklearn", NO_TORCH),
    "datasets": ("import idc_sklearn.datasets", NO_TORCH),
    "sample": (
        "from idc_sklearn import load_idc_sample\n"
        "assert load_idc_sample().data.shape == (2800, 50, 50, 3)",
        NO_TORCH,
    ),
    # --device is checked before torch loads
    "device-check": (
        "import idc_sklearn._device as d\nassert d.is_device_name('mps')",
        NO_TORCH,
    ),
    "comparison-plotting-report": (
        "import idc_sklearn.comparison, idc_sklearn.plotting, idc_sklearn.report",
        NO_TORCH,
    ),
    # data, handcrafted baselines, metrics, the comparison of sklearn pipelines and
    # the command line's help and every subcommand's
    "sklearn-only-paths": (_SKLEARN_ONLY, NO_TORCH),
    "figures": (_FIGURES, NO_TORCH),
    "network": (
        "import idc_sklearn.network",
        ("sklearn", "pandas", "matplotlib", "skorch"),
    ),
}


@pytest.mark.parametrize("case", list(IMPORT_CASES))
def test_what_each_part_never_imports(case):
    code, forbidden = IMPORT_CASES[case]
    check = (
        "\nimport sys\n"
        f"loaded = sorted(m for m in sys.modules if m.split('.')[0] in {forbidden!r})\n"
        "assert not loaded, f'imported {loaded[:5]}'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code + check],
        cwd=Path(__file__).parents[1],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]


# -- the package's own imports: no private name across modules, no cycle --

PACKAGE = Path(idc_sklearn.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _source_of(node: ast.ImportFrom, module: str, is_package: bool) -> str | None:
    """The absolute name of the module a ``from ... import`` reads."""
    if node.level == 0:
        return node.module
    base = module.split(".")[: None if is_package else -1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(tree: ast.Module, module: str, is_package: bool):
    """(node, imported module, imported name or None) of each import in the package."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "idc_sklearn":
                    yield node, alias, alias.name, None
        elif isinstance(node, ast.ImportFrom):
            source = _source_of(node, module, is_package)
            if source and source.split(".")[0] == "idc_sklearn":
                for alias in node.names:
                    yield node, alias, source, alias.name


def private_imports(module: str, source: str, modules=MODULES) -> list[str]:
    """Where ``module``'s source reads a private name of another module.

    ``from <module> import _name`` and ``<module>._name`` (through a name bound to
    a module of the package); private *modules* themselves may be imported.
    """
    is_package = modules.get(module, Path()).name == "__init__.py"
    tree = ast.parse(source)
    found, bound = [], {}
    for node, alias, source_module, name in _imports(tree, module, is_package):
        if name is None:  # import idc_sklearn.x [as y]
            if alias.asname:
                bound[alias.asname] = alias.name
            else:
                bound[alias.name.split(".")[0]] = alias.name.split(".")[0]
        elif f"{source_module}.{name}" in modules:  # a module, private or not
            bound[alias.asname or name] = f"{source_module}.{name}"
        elif name.startswith("_") and source_module != module:
            found.append(f"line {node.lineno}: from {source_module} import {name}")
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            continue
        chain, value = [], node.value
        while isinstance(value, ast.Attribute):
            chain.append(value.attr)
            value = value.value
        if isinstance(value, ast.Name) and value.id in bound:
            owner = ".".join([bound[value.id], *reversed(chain)])
            if owner in modules and owner != module:
                found.append(f"line {node.lineno}: {owner}.{node.attr}")
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return "TYPE_CHECKING" in ast.unparse(test)


def _module_level(body: list[ast.stmt]):
    """The import statements a module runs when it is imported."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If) and not _is_type_checking(node.test):
            yield from _module_level(node.body)
            yield from _module_level(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                yield from _module_level(block)
            for handler in node.handlers:
                yield from _module_level(handler.body)


def _anywhere(body: list[ast.stmt]):
    """Every import statement, inside functions and classes too, but for those of
    ``if TYPE_CHECKING:`` blocks, which never run."""
    for node in body:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _anywhere(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        for field in ("body", "orelse", "finalbody", "handlers"):
            block = getattr(node, field, None)
            if isinstance(block, list):
                yield from _anywhere(block)


def import_graph(modules=MODULES, *, inside_functions=False) -> dict[str, set[str]]:
    """Each module of the package and the package modules it imports.

    By default, what it imports on import: imports inside functions (the lazy
    ones) are not edges. With ``inside_functions``, they are, and a public name
    read from the package itself (``from idc_sklearn import X``, loaded on first
    use) is an edge to the module that defines it (``_PUBLIC``). ``from package
    import name`` is an edge to ``package.name`` where that is a module, else to
    the package.
    """
    graph = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found = _anywhere if inside_functions else _module_level
        statements = ast.Module(body=list(found(tree.body)), type_ignores=[])
        edges = set()
        for _, alias, source, name in _imports(
            statements, module, path.name == "__init__.py"
        ):
            if name is None:
                target = alias.name
            else:
                target = f"{source}.{name}"
                if target not in modules:
                    lazy = idc_sklearn._PUBLIC if inside_functions else {}
                    target = (
                        lazy.get(name, source) if source == "idc_sklearn" else source
                    )
            if target in modules and target != module:
                edges.add(target)
        graph[module] = edges
    return graph


@pytest.mark.parametrize(
    "source",
    [
        "from idc_sklearn.checkpoint import _FREE_PARAMS",
        "from .checkpoint import _FREE_PARAMS",
        "from idc_sklearn import checkpoint\nx = checkpoint._FREE_PARAMS",
        "import idc_sklearn.checkpoint as c\nx = c._FREE_PARAMS",
        "import idc_sklearn\nx = idc_sklearn.datasets._loader._read_patch",
        "from idc_sklearn import _PUBLIC",
    ],
)
def test_the_private_import_scan_finds_private_names(source):
    assert private_imports("idc_sklearn.metrics", source)


@pytest.mark.parametrize(
    "source",
    [
        "from idc_sklearn._files import atomic_write",
        "from idc_sklearn.cli import _common\nx = _common.PROG",
        "from idc_sklearn import classifier\nx = classifier.PatchNetClassifier",
        "from sklearn.utils._param_validation import Interval",
        "_SECRET = 1\nfrom idc_sklearn.metrics import _SECRET",
    ],
)
def test_the_private_import_scan_passes_public_names(source):
    assert private_imports("idc_sklearn.metrics", source) == []


def test_no_module_imports_another_modules_private_name():
    found = {
        module: hits
        for module, path in MODULES.items()
        if (hits := private_imports(module, path.read_text(encoding="utf-8")))
    }
    assert found == {}


def test_the_import_graph_sees_module_level_imports_only(tmp_path):
    sources = {
        "a": "from idc_sklearn import b\n",
        "b": "try:\n    from .c import x\nexcept ImportError:\n    pass\n",
        "c": "def f():\n    from idc_sklearn.a import y\n",
    }
    modules = {}
    for name, source in sources.items():
        modules[f"idc_sklearn.{name}"] = tmp_path / f"{name}.py"
        modules[f"idc_sklearn.{name}"].write_text(source)
    graph = import_graph(modules)
    assert graph == {
        "idc_sklearn.a": {"idc_sklearn.b"},
        "idc_sklearn.b": {"idc_sklearn.c"},
        "idc_sklearn.c": set(),
    }
    modules["idc_sklearn.c"].write_text("from idc_sklearn.a import y\n")
    with pytest.raises(graphlib.CycleError):
        tuple(graphlib.TopologicalSorter(import_graph(modules)).static_order())


def test_the_graph_of_every_import_sees_imports_inside_functions(tmp_path):
    sources = {
        "a": "def f():\n    from idc_sklearn import load_idc\n",
        "b": (
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    import idc_sklearn.a\n"
        ),
    }
    modules = {}
    for name, source in sources.items():
        modules[f"idc_sklearn.{name}"] = tmp_path / f"{name}.py"
        modules[f"idc_sklearn.{name}"].write_text(source)
    modules["idc_sklearn.datasets"] = tmp_path / "datasets.py"
    modules["idc_sklearn.datasets"].write_text("def g():\n    import idc_sklearn.a\n")
    graph = import_graph(modules, inside_functions=True)
    assert graph == {
        "idc_sklearn.a": {"idc_sklearn.datasets"},  # load_idc, by _PUBLIC
        "idc_sklearn.b": set(),  # TYPE_CHECKING never runs
        "idc_sklearn.datasets": {"idc_sklearn.a"},
    }
    with pytest.raises(graphlib.CycleError):
        tuple(graphlib.TopologicalSorter(graph).static_order())


def test_no_import_circle_even_counting_imports_inside_functions():
    graph = import_graph(inside_functions=True)
    # The slide figure takes arrays: plotting/ never reaches for wholeslide/.
    assert not {
        target
        for source, targets in graph.items()
        if source.startswith("idc_sklearn.plotting")
        for target in targets
        if target.startswith("idc_sklearn.wholeslide")
    }
    tuple(graphlib.TopologicalSorter(graph).static_order())


def test_the_package_import_graph_has_no_cycle():
    graph = import_graph()
    assert graph["idc_sklearn.classifier"] >= {
        "idc_sklearn._forward",
        "idc_sklearn.checkpoint",
    }
    # CycleError names the modules of the cycle.
    tuple(graphlib.TopologicalSorter(graph).static_order())

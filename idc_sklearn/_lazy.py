"""Names of a package imported from their modules on first use (PEP 562)."""

from __future__ import annotations

import importlib
import sys


def lazy_namespace(package: str, where: dict[str, str]):
    """Return the ``__getattr__`` and ``__dir__`` of ``package``.

    ``where`` maps each public name to the module that defines it; a name is
    imported from there when first asked for, then kept in the package.
    """

    def __getattr__(name: str):
        try:
            module = where[name]
        except KeyError:
            msg = f"module {package!r} has no attribute {name!r}"
            raise AttributeError(msg) from None
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__():
        return sorted(set(vars(sys.modules[package])) | set(where))

    return __getattr__, __dir__

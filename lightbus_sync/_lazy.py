"""Lazy package exports (PEP 562): a package's public names, imported on first use."""

from __future__ import annotations

import importlib
import types
from typing import Any, Callable, Mapping


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``exports`` maps each public name to
    the relative module defining it. A name is imported once, then cached in the
    package's namespace. Define them under ``if not TYPE_CHECKING``: a checker must see
    the real imports, not a ``__getattr__`` that would accept any name."""
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        imported = importlib.import_module(module, package)
        # Importing a submodule sets it as the package's attribute of its name; where an
        # export has that name too (testing.in_memory), the export wins.
        for other, other_module in exports.items():
            if other_module == module and isinstance(namespace.get(other), types.ModuleType):
                namespace[other] = getattr(imported, other)
        value = getattr(imported, name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__

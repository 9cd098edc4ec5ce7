"""Package exports imported on first use, so that importing a package stays cheap.

LangChain's agent stack costs about a second of CPU to import; a store, the command
line's ``--help`` or ``memory ls`` must not pay it. A package lists its exports and
the modules defining them; ``from package import Name`` imports that module then.

Example:
    >>> __getattr__, __dir__ = exports(__name__, {"SQLiteStore": "deepmemory.stores.sqlite"})
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def exports(
    package: str, where: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module ``__getattr__`` and ``__dir__`` of ``package`` for its lazy ``where``."""

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)  # later lookups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *where})

    return __getattr__, __dir__

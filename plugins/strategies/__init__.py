"""The built-in strategies, written as a third-party package would write them.

Each ``<name>.py`` is an entry-point module: it registers specs whose loaders are strings naming
its implementation module ``_<name>.py``, so registration (``bench list``) imports no torch. The
implementation imports torch at the top. Shared pieces come from :mod:`bench.adaptation`,
:mod:`bench.training` and :mod:`bench.probe`; no strategy imports another.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import Any


def lazy_exports(module: str, impl: str, names: Iterable[str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that keeps ``<module>.<name>`` importable without importing torch
    at registration: ``names`` come from ``impl`` on first use."""
    local = frozenset(names)

    def __getattr__(name: str) -> Any:
        if name in local:
            return getattr(importlib.import_module(impl), name)
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__

"""Optional dependencies: import one, or stop with one line naming the extra that installs it.

The core and the default run need only the packages in ``[project.dependencies]``. A feature that
needs more (plots, a cluster executor) calls :func:`require` where it imports the package, so a
user who lacks it reads ``--executor ray needs the 'ray' package; pip install
'transfer-bench[ray]'`` (a :class:`~bench.errors.UserError`: exit status 2, no traceback) instead
of a ``ModuleNotFoundError`` traceback.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType

from bench.errors import UserError

#: extra name -> the packages it installs (mirrors ``[project.optional-dependencies]``)
EXTRAS: dict[str, tuple[str, ...]] = {
    "plots": ("matplotlib",),
    "ray": ("ray",),
    "submitit": ("submitit",),
}


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import ``module`` (e.g. ``"ray"`` or ``"matplotlib.pyplot"``) for ``feature``, or raise.

    ``extra`` names the ``transfer-bench[...]`` extra that provides it; ``feature`` is what the user
    asked for, as they wrote it (``"--executor ray"``, ``"--contact-sheet"``).
    """
    if extra not in EXTRAS:
        raise ValueError(f"unknown extra {extra!r}; declared extras: {', '.join(sorted(EXTRAS))}")
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        # Only the module itself (or its top package) missing means "not installed"; an
        # ImportError from inside an installed package is a real bug and keeps its traceback.
        missing = getattr(exc, "name", None) or ""
        top = module.split(".")[0]
        if missing and missing != module and missing.split(".")[0] != top:
            raise
        raise UserError(f"{feature} needs the {top!r} package; pip install 'transfer-bench[{extra}]'") from None



def optional(extra: str, loader: str) -> Callable[[], object]:
    """An executor spec's loader for an implementation that imports the ``extra`` package: it calls
    :func:`require` before resolving ``loader`` (``"package.module:name"``), so without the package the
    user reads ``--executor EXTRA needs the ...`` in one line, while ``bench list`` stays import-free."""
    from bench.specs import resolve_loader

    def load() -> object:
        require(extra, extra, f"--executor {extra}")
        return resolve_loader(loader)()

    return load

"""Built-in executors: ``local`` (this process or ``--jobs N`` processes), ``ray`` and ``submitit`` (extras)."""

from __future__ import annotations

from collections.abc import Callable

from bench.extras import require
from bench.specs import resolve_loader


def optional(extra: str, loader: str) -> Callable[[], object]:
    """A loader for an executor whose implementation imports the ``extra`` package: without it,
    one line naming the extra (``--executor ray needs the 'ray' package; pip install ...``)."""

    def load() -> object:
        require(extra, extra, f"--executor {extra}")
        return resolve_loader(loader)()

    return load

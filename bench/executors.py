"""The executor protocol: where cell groups run. An executor takes groups and yields records.

The runner hands an executor an iterable of :class:`~bench.worker.CellGroup` (the cells of one
(task, encoder) pair and the run's settings; picklable). The executor runs each group with
:func:`bench.worker.run_group` wherever it likes (this process, a process pool, Ray, Slurm) and
yields the records as cells finish, in any order; the runner alone appends them to
``results.jsonl``. A worker process re-reads task data, manifests and cached features from disk,
and loads plugins through their entry points: plugins registered in code
(``load_plugins(extra=...)``) exist only in the driver's process.

Executors written against the first API (``run(cells, run_cell)``, one call per group, cells run
in the driver's process) still work: the runner detects the two-argument signature and adapts, with
a ``DeprecationWarning``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from bench.worker import CellGroup, run_group


class Executor(Protocol):
    def run(self, groups: Iterable[CellGroup]) -> Iterator[dict[str, Any]]:
        """Run every group, yielding each record as soon as its cell finishes (any order)."""
        ...


class LocalExecutor:
    """Groups one after another, in this process (sharing the loaded encoder and features)."""

    def run(self, groups: Iterable[Any],
            run_cell: Callable[[Any], dict[str, Any]] | None = None) -> Iterator[dict[str, Any]]:
        if run_cell is not None:  # called the first API's way: ``groups`` are cells
            for cell in groups:
                yield run_cell(cell)
            return
        for group in groups:
            yield from run_group(group)

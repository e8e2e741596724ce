"""Executors decide where cells run. The harness hands an executor the cells of one
(task, encoder) group and a function that runs one cell and returns its record; the executor
yields records as cells finish, and the harness appends each to ``results.jsonl`` at once.

The built-in ``local`` executor runs cells one after another in this process, sharing the loaded
encoder and cached features. A cluster executor (submitit, ray) ships ``run_cell`` and the cell
to workers: both are picklable, and workers re-read task data, manifests and features from disk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol


class Executor(Protocol):
    def run(self, cells: Iterable[Any], run_cell: Callable[[Any], dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """Run every cell, yielding each record as soon as its cell finishes (any order)."""
        ...


class LocalExecutor:
    """Cells one after another, in this process."""

    def run(self, cells: Iterable[Any], run_cell: Callable[[Any], dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for cell in cells:
            yield run_cell(cell)

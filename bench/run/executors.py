"""The executor protocol: where cell groups run. An executor takes groups and yields records.

The runner hands an executor an iterable of :class:`~bench.run.worker.CellGroup` (the cells of one
(task, encoder) pair and the run's settings; picklable). The executor runs each group with
:func:`bench.run.worker.run_group` wherever it likes (this process, a process pool, Ray, Slurm) and
yields the records as cells finish, in any order; the runner alone appends them to
``results.jsonl``. A worker process re-reads task data, manifests and cached features from disk,
and loads plugins through their entry points: plugins registered in code
(``load_plugins(extra=...)``) exist only in the driver's process.

An executor's settings (``--jobs``, ``--address``, ``--slurm-partition``, ...) travel in
``group.config.executor_options``; :func:`take_options` reads them from the first group and
refuses the ones the executor does not take. An executor that ships groups elsewhere collects the
groups whose job failed in :class:`GroupFailures` and reports them once the others have finished.

Every mode's driver (grid, ``--stream``, ``--episodes``) hands its groups over through
:func:`execute`. Executors written against the first API (``run(cells, run_cell)``, one call per
group, cells run in the driver's process) still work: :func:`execute` detects the two-argument
signature and adapts, with a ``DeprecationWarning``.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from bench import _compat
from bench.errors import UserError
from bench.run.worker import CellGroup, Session, open_group, run_group


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


def execute(spec: Any, groups: Iterable[CellGroup], session: Session) -> Iterator[dict[str, Any]]:
    """Run ``groups`` on the executor ``spec`` (an ``ExecutorSpec``), yielding records as cells finish;
    an executor on the first protocol runs each group's cells in this process, with ``session``."""
    executor = spec.load()
    if not _takes_cells(executor):
        yield from executor.run(groups)
        return
    _compat.warn("run(cells, run_cell)", f"executor {spec.name!r}")
    for group in groups:  # the old protocol: one call per group, cells run in this process
        state = open_group(group, session)
        yield from executor.run(list(group.cells), state.run)


def _takes_cells(executor: Any) -> bool:
    """True for an executor written against the old ``run(cells, run_cell)`` protocol."""
    try:
        params = list(inspect.signature(executor.run).parameters.values())
    except (TypeError, ValueError):
        return False
    required = [p for p in params if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(required) >= 2


def take_options(groups: Iterable[CellGroup], executor: str,
                 accepted: Iterable[str]) -> tuple[dict[str, Any], Iterator[CellGroup]]:
    """The run's executor options (from the first group) and the groups, none consumed.

    An option ``executor`` does not take is a :class:`~bench.errors.UserError` naming the ones it does.
    """
    it = iter(groups)
    first = next(it, None)
    if first is None:
        return {}, iter(())
    options = dict(first.config.executor_options)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        takes = ", ".join(sorted(accepted)) or "none"
        raise UserError(f"executor option {unknown[0]!r} does not apply to --executor {executor}; "
                        f"it takes: {takes}")
    return options, itertools.chain([first], it)


class GroupFailures:
    """Groups whose job failed as a whole (a killed process, a lost node, a time limit): their
    cells have no record, so the same command resumes them."""

    def __init__(self, executor: str) -> None:
        self.executor = executor
        self.failed: list[tuple[CellGroup, BaseException]] = []

    def add(self, group: CellGroup, exc: BaseException) -> None:
        self.failed.append((group, exc))

    def raise_if_any(self, total: int) -> None:
        if not self.failed:
            return
        group, exc = self.failed[0]
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
        raise UserError(f"{len(self.failed)} of {total} cell groups failed on --executor {self.executor} "
                        f"(first: {group.task} | {group.encoder}: {reason}); their cells have no record: "
                        "run the same command again to resume them")

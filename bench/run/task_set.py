"""What the drivers over several tasks share (``--stream``, ``--multitask``): manifests, identities, one cell's run.

Both drivers draw every task's labelled budget from the shared manifests, identify a cell by its
encoder as loaded on the CPU, resume by ``cell_id`` and run a cell under the protocol's torch thread
count (:func:`bench.run.device.cell_threads`), its seed, its deadline and its peak-memory probe,
recording a failure instead of raising. :class:`TaskSetDriver` holds that; a driver adds its
``record`` (the record's skeleton) and ``compute`` (the cell's work, filling the record).
:class:`TaskSetGroup` is a worker's side of either driver's cell group.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.errors import UserError
from bench.run.plan import Cell
from bench.tasks import TaskData


class TaskSetDriver:
    """The shared half of :class:`~bench.continual.driver.StreamRunner` and
    :class:`~bench.multitask.driver.MultitaskRunner` (their ``__init__`` sets the attributes)."""

    cfg: Any
    planner: Any
    manifests: Any
    folder: Any
    results: Any
    sizing: TaskData
    log: Callable[[str], None]
    _id_encoders: dict[str, Any]
    what = "cells"  # how the resume line names them

    def record(self, cell: Cell, ident: Any, device: str) -> dict[str, Any]:
        raise NotImplementedError

    def compute(self, cell: Cell, device: str, rec: dict[str, Any]) -> None:
        """The cell's work: fill ``rec`` (``status``, ``metrics``, ``info``, ...) or raise."""
        raise NotImplementedError

    def positions(self, task: TaskData, budget: str, seed: int) -> np.ndarray:
        """Task ``task``'s labelled budget in the shared manifest, disjoint from its test split."""
        b = next(b for b in self.planner.budgets if b.label == budget)
        pos = self.manifests.positions(task, b, seed)
        overlap = {task.train.ids[int(i)] for i in pos} & set(task.test.ids)
        if overlap:
            raise UserError(f"task {task.name!r}: budget {budget} shares item ids with the test split "
                            f"(e.g. {sorted(overlap)[0]!r}); the task plugin's splits overlap")
        return pos

    def encoder_ingredients(self, cell: Cell, encoder: Any) -> dict[str, Any]:
        """The strategy's and encoder's part of a cell's identity (``encoder`` None for a skipped cell)."""
        return {
            "strategy": cell.strategy, **{f"option.{k}": v for k, v in cell.config},
            "encoder": cell.encoder,  # skipped cells load no encoder
            "encoder.weights": encoder.weights if encoder is not None else None,
            "encoder.fingerprint": encoder.fingerprint() if encoder is not None else None,
            **({f"encoder.{k}": v for k, v in encoder.preprocessing().items()} if encoder is not None else {}),
        }

    def identity(self, cell: Cell, encoder: Any) -> Any:
        raise NotImplementedError

    def id_encoder(self, name: str) -> Any:
        """Encoder ``name`` as the cells' identities see it (pre-trained, on the CPU), loaded once."""
        if name not in self._id_encoders:
            self._id_encoders[name] = self.load_encoder(name, "cpu")
        return self._id_encoders[name]

    def load_encoder(self, name: str, device: str, pretrained: bool = True) -> Any:
        from bench.run.worker import load_encoder

        return load_encoder(self.planner, name, self.sizing, device, pretrained)

    def resume(self, cells: list[Cell], skips: list[tuple[Cell, str]],
               device: str) -> tuple[list[dict[str, Any]], list[Cell]]:
        """Records the skipped cells not yet on file, and the cells still to run."""
        done = self.folder.done_ids()
        new: list[dict[str, Any]] = []
        for cell, reason in skips:
            ident = self.identity(cell, None)
            if ident.cell_id not in done:
                new.append(self.folder.skip(self.record(cell, ident, device), reason))
        pending = [c for c in cells if self.identity(c, self.id_encoder(c.encoder)).cell_id not in done]
        if len(pending) < len(cells):
            self.log(f"resuming: {len(cells) - len(pending)} of {len(cells)} {self.what} already finished "
                     f"in {self.results.path}")
        return new, pending

    def run_cell(self, cell: Cell, ident: Any, device: str) -> dict[str, Any]:
        """The cell's record: computed under the protocol's threads, seed, deadline and memory
        probe; a failure is recorded (``status: failed``, ``error``, ``failure``), never raised."""
        from bench.run.cell import PeakMemory, failure_reason
        from bench.run.deadline import CellTimeout, deadline
        from bench.run.device import cell_threads, seed_everything

        rec = self.record(cell, ident, device)
        start = time.perf_counter()
        try:
            with PeakMemory(device) as peak, deadline(self.cfg.cell_timeout), cell_threads():
                seed_everything(cell.seed)
                self.compute(cell, device, rec)
            rec["peak_mem_mb"] = round(peak.peak_mb, 1)
        except (KeyboardInterrupt, UserError):
            raise
        except (Exception, CellTimeout) as exc:
            rec.update(status="failed", error=f"{type(exc).__name__}: {exc}", failure=failure_reason(exc))
            self.log(f"  failed: {rec['error']}")
        rec["wall_s"] = round(time.perf_counter() - start, 3)
        return rec


class TaskSetGroup:
    """A worker's side of a task-set cell group: the driver itself when it runs in the driver's
    process, else one built from the group's config; ``run(cell)`` gives a cell's record."""

    driver_type: type[Any] = TaskSetDriver

    def __init__(self, group: Any, session: Any) -> None:
        from bench.run.device import resolve_device

        driver = session.driver
        self.runner = driver if isinstance(driver, self.driver_type) else self.driver_type(
            group.config, session.plugins, log=session.log)
        self.device = resolve_device(group.device)
        self.cells = {c.key(): k for k, c in enumerate(group.cells, 1)}
        self.total = len(group.cells)

    def run(self, cell: Cell) -> dict[str, Any]:
        runner = self.runner
        runner.log(f"[{self.cells.get(cell.key(), 0)}/{self.total}] {cell.label()}")
        return runner.run_cell(cell, runner.identity(cell, runner.id_encoder(cell.encoder)), self.device)

"""Running a plan: the :class:`Runner` drives a run and hands (task, encoder) cell groups to the executor.

``Runner.run()`` does, in order (:meth:`Runner.prepare`: everything before the first cell)::

    resume scan of results.jsonl started (bench.run.scan.ScanJob: a process of its own for a big file,
      while the next steps run) -> plan (bench.run.plan) -> for each task: load it, write every budget
      manifest, check budget/test disjointness (errors before any training) -> cell identities ->
      scan collected -> skipped cells recorded -> finished cells dropped (resume: same ``cell_id``,
      see bench.run.records) -> one CellGroup per (task, encoder)
      -> bench.run.executors.execute(groups) -> each record appended to results.jsonl at once and
      passed to the observers (bench.run.folder.RunFolder, which also holds the folder)

Workers run groups with :func:`bench.run.worker.run_group`; only this driver writes ``results.jsonl``.
Which driver a ``bench run`` gets (this one, ``--stream``'s or ``--episodes``') is
:mod:`bench.run.dispatch`'s choice.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from bench.errors import UserError
from bench.loading import TaskLoader, cache_root
from bench.run.budgets import Budget, Manifests
from bench.run.executors import execute
from bench.run.folder import RunFolder
from bench.run.identities import cell_identities
from bench.run.plan import Cell, Plan, Planner, RunConfig
from bench.run.records import CellIdentity, base_record
from bench.run.worker import CellGroup, Session, group_device, hosted, load_encoder, run_group
from bench.tasks import TaskData


class Runner:
    def __init__(self, cfg: RunConfig, plugins: Any, log: Callable[[str], None] | None = None) -> None:
        self.cfg = cfg
        self.plugins = plugins
        self.log = log or (lambda msg: print(msg, file=sys.stderr))
        self.planner = Planner(cfg, plugins)
        self.budgets = self.planner.budgets
        self.encoder_specs = self.planner.encoder_specs
        self.strategy_specs = self.planner.strategy_specs
        self.task_specs = self.planner.task_specs
        self.configs = self.planner.configs
        self.executor = plugins.executors.get(cfg.executor)
        self.out = Path(cfg.out)
        self.folder = RunFolder(self.out, plugins, log=self.log)
        self.results = self.folder.results
        self.manifests = Manifests(self.out)
        self.tasks = TaskLoader(plugins, cfg.data_dir, cfg.download)
        self._content_copies: dict[tuple[str, str, int], int] = {}
        self.device = "cpu"

    # planning ------------------------------------------------------------------------------------

    def load_task(self, name: str) -> TaskData:
        return self.tasks.load(name)

    def encoder_meta(self, name: str) -> Any:
        return self.planner.encoder_meta(name)

    def cells_for(self, task: str, encoder: str) -> list[Cell]:
        return self.planner.cells_for(task, encoder)

    def resolution_for(self, meta: Any, task: TaskData, encoder: str | None = None) -> int | None:
        return self.planner.resolution_for(meta, task, encoder)

    def reference_task(self, task_name: str) -> TaskData | None:
        """The task forgetting is measured on, or None."""
        name = self.planner.reference_task_name(task_name)
        return self.load_task(name) if name else None

    def plan(self) -> Plan:
        """Load tasks, write manifests (budget errors surface here), expand and filter the grid."""
        return self.planner.plan(self.load_task, self._write_manifest)

    def _write_manifest(self, task: TaskData, budget: Budget, seed: int) -> None:
        pos = self.manifests.positions(task, budget, seed)
        if self.cfg.contamination:
            self._check_disjoint(task, budget, seed, pos)

    def _check_disjoint(self, task: TaskData, budget: Budget, seed: int, positions: np.ndarray) -> None:
        """A manifest must share no item id with test; content copies of test items are recorded."""
        from bench import contamination

        check = contamination.check_budget_disjoint(task, positions, cache_root())
        if check.id_overlap:
            raise UserError(f"task {task.name!r}: budget {budget.label} seed {seed} shares item ids with the test "
                            f"split (e.g. {sorted(check.id_overlap)[0]!r}); the task plugin's splits overlap")
        self._content_copies[(task.name, budget.label, seed)] = len(check.content_overlap)

    # running -------------------------------------------------------------------------------------

    def run(self) -> list[dict[str, Any]]:
        """Run the pending cells, holding ``--out`` (:meth:`bench.run.folder.RunFolder.hold`: a second
        run on the same folder refuses at once, naming this one)."""
        with self.folder.hold():
            return self._run()

    def _run(self) -> list[dict[str, Any]]:
        new_records, pending = self.prepare()
        bar = _progress(len(pending), self.cfg.progress)
        events = _bar_events(bar)
        session = Session(self.plugins, self.planner, self.load_task, events, self.log)
        try:
            with hosted(session) as key:
                for rec in execute(self.executor, self.groups(pending, key), session):
                    new_records.append(self.folder.finish(rec))
                    bar.update(1)
        finally:
            bar.close()
        return new_records

    def prepare(self) -> tuple[list[dict[str, Any]], list[Cell]]:
        """Everything before the first cell runs: the skip records it appended, and the pending cells.

        The resume scan of ``results.jsonl`` (:class:`bench.run.scan.ScanJob`) runs in a process of
        its own while this one plans and computes the cells' identities, when the file is big enough
        to be worth it; the file is appended to only once the scan is in. A bad results file fails
        before any encoder loads when its scan has already failed by then, else when it ends.
        """
        with self.folder.start_scan() as scanning:  # also validates an existing results file
            self.device = group_device(self.cfg)
            plan = self.plan()
            scanning.check()
            skips = [] if self.cfg.retry_failed else plan.skips
            skip_ids = self.skip_identities([cell for cell, _ in skips])
            # a big file is a resume: its cells' identities are needed, so compute them while it is read
            ids = self.identities(plan.cells) if scanning.background else None
            found = scanning.result()
        done = found.done
        if self.cfg.retry_failed:  # exactly the failed cells: everything else counts as done
            failed = found.failed
            self.log(f"--retry-failed: {len(failed)} failed cells in {self.results.path}")
            done = _AllBut(failed)
        new_records: list[dict[str, Any]] = []
        for cell, reason in skips:
            ident = skip_ids[cell.key()]
            if ident.cell_id not in done:
                task = self.load_task(cell.task)
                rec = base_record(cell, task, self.device, self.planner.encoder_info(cell.encoder, task), ident)
                new_records.append(self.folder.skip(rec, reason))
        pending = self.pending(plan.cells, done, ids)
        n_done = len(plan.cells) - len(pending)
        if n_done:
            self.log(f"resuming: {n_done} of {len(plan.cells)} cells already finished in {self.results.path}")
        return new_records, pending

    def skip_identities(self, cells: list[Cell]) -> dict[tuple[Any, ...], CellIdentity]:
        """The identities of cells skipped as incompatible (they never load an encoder nor read a manifest)."""
        out: dict[tuple[Any, ...], CellIdentity] = {}
        for task_name, enc, group in self._by_pair(cells):
            out.update(cell_identities(self.planner, self.load_task(task_name), enc, group, None))
        return out

    def identities(self, cells: list[Cell]) -> dict[tuple[Any, ...], CellIdentity]:
        """Every cell's identity (:func:`bench.run.identities.cell_identities`), by :meth:`Cell.key`.

        A cell's identity includes its encoder's weight fingerprint, so each (task, encoder) pair
        loads its encoder here once (and the worker that runs the group loads it again): cheap for
        the built-ins (a second or two for EfficientNet-Lite0, nothing for pixels).
        """
        out: dict[tuple[Any, ...], CellIdentity] = {}
        for task_name, enc, group in self._by_pair(cells):
            task = self.load_task(task_name)
            encoder = load_encoder(self.planner, enc, task, "cpu", self.encoder_meta(enc).trainable)  # fingerprint
            out.update(cell_identities(self.planner, task, enc, group, self.manifests, encoder,
                                       self.reference_task(task_name)))
            del encoder
        return out

    def pending(self, cells: list[Cell], done: set[str],
                ids: dict[tuple[Any, ...], CellIdentity] | None = None) -> list[Cell]:
        """The cells whose ``cell_id`` has no finished record, in the grid's order (``ids``: their
        :meth:`identities`, computed here if not given, and not at all on a fresh run, where nothing
        can be done yet)."""
        if ids is None:
            if not done and not isinstance(done, _AllBut):
                return list(cells)
            ids = self.identities(cells)
        return [c for c in cells if ids[c.key()].cell_id not in done]

    def _by_pair(self, cells: list[Cell]) -> Iterator[tuple[str, str, list[Cell]]]:
        """``cells`` by (task, encoder), in the grid's order."""
        for task_name in self.task_specs:
            for enc in self.encoder_specs:
                group = [c for c in cells if c.task == task_name and c.encoder == enc]
                if group:
                    yield task_name, enc, group

    def groups(self, pending: list[Cell], session: str = "") -> Iterator[CellGroup]:
        """One group per (task, encoder) with cells to run, in the grid's order. Under a parallel
        executor (``--jobs N`` > 1, ray, submitit) a (task, encoder) pair is cut further, one group per
        training strategy and one for its frozen-feature strategies, so that the workers share one
        encoder's cells instead of one worker running them all (records never depend on grouping)."""
        split = self.parallel()
        for task_name in self.task_specs:
            for enc in self.encoder_specs:
                cells = tuple(c for c in pending if c.task == task_name and c.encoder == enc)
                if cells:
                    copies = tuple(((b, s), n) for (t, b, s), n in self._content_copies.items() if t == task_name)
                    for part in (self.by_strategy(cells) if split else [cells]):
                        yield CellGroup(task_name, enc, part, self.cfg, self.device, copies, session)

    def parallel(self) -> bool:
        """Whether the run's executor runs groups side by side."""
        jobs = dict(self.cfg.executor_options).get("jobs", 1)
        return self.cfg.executor != "local" or (isinstance(jobs, int) and jobs > 1)

    def by_strategy(self, cells: tuple[Cell, ...]) -> list[tuple[Cell, ...]]:
        """``cells`` cut by training strategy, the frozen-feature ones together (they share one
        encoder pass), in order of first appearance."""
        parts: dict[str, list[Cell]] = {}
        for c in cells:
            key = "" if self.planner.strategy(c.strategy).kind == "features" else c.strategy
            parts.setdefault(key, []).append(c)
        return [tuple(p) for p in parts.values()]


class _AllBut(set[str]):
    """Every ``cell_id`` except the given ones counts as done (``--retry-failed``)."""

    def __contains__(self, item: object) -> bool:
        return not super().__contains__(item)


class _NoBar:
    def update(self, n: int = 1) -> None: ...
    def set_description(self, s: str) -> None: ...
    def set_postfix_str(self, s: str, refresh: bool = True) -> None: ...
    def close(self) -> None: ...


def _progress(total: int, enabled: bool) -> Any:
    if not enabled or total == 0:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, unit="cell", dynamic_ncols=True, file=sys.stderr)


def _bar_events(bar: Any) -> Callable[[str, str], None]:
    def events(kind: str, text: str) -> None:
        if kind == "status":
            bar.set_description(text)
        else:
            bar.set_postfix_str(text, refresh=False)

    return events


__all__ = ["CellGroup", "Runner", "run_group"]

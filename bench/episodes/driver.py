"""Running ``bench run --episodes``: one record per (task, encoder, strategy, spec, seed) in ``DIR/episodes.jsonl``.

The driver (:class:`EpisodeRunner`, chosen by :mod:`bench.run.dispatch` when the run config has
``episodes``) hands one cell group per (task, encoder) to the run's executor; a group
(:class:`EpisodeGroup`, in any process) loads its task and encoder once, encodes the test split once
through the feature cache (episodes index into it), draws the seed's episodes
(:func:`bench.episodes.spec.sample_episodes`, the same for every strategy and encoder) and runs
every strategy on all of them, each cell under ``--cell-timeout``. Each record is appended at once;
a record's ``cell_id`` covers the strategy's options, the encoder's weights, the task's content, the
episode spec and the seed, so running the command again resumes. Records live in ``episodes.jsonl``,
not ``results.jsonl``: their ``budget`` is an episode spec, not a label budget, and the budget
tables, ranks and learning curves never mix them in.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.episodes.classes import class_split
from bench.episodes.spec import EpisodeSpec, meta_train, parse_episodes, run_episode, sample_episodes, summarise
from bench.run.cell import PeakMemory, failure_reason
from bench.run.deadline import CellTimeout, deadline
from bench.run.device import cell_threads, deterministic_settings, resolve_device, seed_everything
from bench.run.executors import execute
from bench.run.folder import RunFolder
from bench.run.identities import cell_identities
from bench.run.plan import Cell, Planner, RunConfig, config_id, incompatibility
from bench.run.records import ResultsFile, base_record, jsonable
from bench.run.runner import Runner
from bench.run.worker import CellGroup, FeatureStore, Session, group_device, hosted, load_encoder
from bench.tasks import TaskData

FILE = "episodes.jsonl"


def episodes_file(out: Path | str) -> ResultsFile:
    return ResultsFile(Path(out) / FILE)


def cells(planner: Planner, spec: EpisodeSpec, task: TaskData) -> tuple[list[Cell], list[tuple[Cell, str]]]:
    """The episode cells of one task (budget = the spec's label), and those skipped with why."""
    run: list[Cell] = []
    skips: list[tuple[Cell, str]] = []
    for enc in planner.encoder_specs:
        meta = planner.encoder_meta(enc)
        for s in planner.strategy_specs:
            conf = planner.configs[s.name]
            for seed in range(planner.cfg.seeds):
                cell = Cell(enc, s.name, task.name, spec.label, seed, config_id(s, conf), tuple(sorted(conf.items())))
                reason = incompatibility(s, meta, enc, task, conf)
                (skips.append((cell, reason)) if reason else run.append(cell))
    return run, skips


def check(cfg: RunConfig, planner: Planner, load_task: Callable[[str], TaskData]) -> EpisodeSpec:
    """The spec, after checking that every task can give its episodes (one line otherwise)."""
    from bench.errors import UserError

    spec = parse_episodes(cfg.episodes)
    if any(key == "tune" and value for _, key, value in cfg.options):
        raise UserError("--tune does not apply to --episodes (there is no validation split inside a support "
                        "set of K items per class); drop --tune")
    for name in planner.task_specs:
        task = load_task(name)
        for seed in range(cfg.seeds):  # a derived class split differs by seed
            sample_episodes(task.test.labels, task.test.ids, EpisodeSpec(spec.n_way, spec.k_shot, spec.q_query, 1),
                            seed, what=f"the test split of {name!r}", among=class_split(task, seed).novel)
    return spec


class EpisodeRunner(Runner):
    """The driver of a ``--episodes`` run: the grid's planner and tasks, episode cells instead of budgets."""

    def __init__(self, cfg: RunConfig, plugins: Any, log: Callable[[str], None] | None = None) -> None:
        super().__init__(cfg, plugins, log)
        self.folder = RunFolder(self.out, plugins, FILE, self.log)
        self.results = self.folder.results

    def run(self) -> list[dict[str, Any]]:
        """Every pending episode cell, one cell group per (task, encoder) on the run's executor
        (``--jobs``, ray, submitit); returns the records written now."""
        cfg, planner, log = self.cfg, self.planner, self.log
        spec = check(cfg, planner, self.load_task)
        with self.folder.hold():
            done = self.folder.done_ids()
            self.device = device = group_device(cfg)
            written: list[dict[str, Any]] = []
            groups: list[tuple[str, str, tuple[Cell, ...]]] = []
            for task_name in planner.task_specs:
                task = self.load_task(task_name)
                run, skips = cells(planner, spec, task)
                for cell, reason in skips:
                    ident = cell_identities(planner, task, cell.encoder, [cell], None)[cell.key()]
                    if ident.cell_id not in done:
                        rec = base_record(cell, task, device, planner.encoder_info(cell.encoder, task), ident)
                        written.append(self.folder.skip(rec, reason, mode="episodes"))
                        log(progress_line(rec))
                for enc in planner.encoder_specs:
                    group = [c for c in run if c.encoder == enc]
                    pending = self._pending(task, enc, group, done) if done and group else group
                    if len(pending) < len(group):
                        log(f"resuming: {len(group) - len(pending)} episode cells of {task_name} | {enc} "
                            "already finished")
                    if pending:
                        groups.append((task_name, enc, tuple(pending)))
            session = Session(self.plugins, planner, self.load_task, log=log)
            with hosted(session) as key:
                todo = (CellGroup(t, e, c, cfg, device, session=key, kind="episodes") for t, e, c in groups)
                for rec in execute(self.executor, todo, session):
                    written.append(self.folder.finish(rec))
                    log(progress_line(rec))
        return written

    def _pending(self, task: TaskData, enc: str, group: list[Cell], done: set[str]) -> list[Cell]:
        """The cells of ``group`` without a finished record (their ids need the loaded encoder)."""
        encoder = load_encoder(self.planner, enc, task, "cpu", self.encoder_meta(enc).trainable)
        ids = cell_identities(self.planner, task, enc, group, None, encoder, None)
        return [c for c in group if ids[c.key()].cell_id not in done]


class EpisodeGroup:
    """A worker's side of an episode cell group (one task x encoder): the encoder, the test split's
    features and the strategies, loaded once; ``run(cell)`` gives a cell's record."""

    def __init__(self, group: CellGroup, session: Session) -> None:
        planner, log = session.planner, session.log
        self.spec = parse_episodes(group.config.episodes)
        self.task = task = session.load_task(group.task)
        self.device = device = resolve_device(group.device)
        self.planner, self.log, self.timeout = planner, log, group.config.cell_timeout
        self.meta = planner.encoder_meta(group.encoder)
        deterministic_settings(device)
        self.encoder = load_encoder(planner, group.encoder, task, device, self.meta.trainable)
        self.ids = cell_identities(planner, task, group.encoder, group.cells, None, self.encoder, None)
        self.store = FeatureStore(self.encoder, device, _encoding_log(log, f"{group.task} | {group.encoder}"))
        self.info = planner.encoder_info(group.encoder, task)
        self.info["resolution"] = int(self.encoder.input_size)
        self.total = sum(p.numel() for p in self.encoder.module.parameters())
        self.strategies = {n: planner.strategy(n).load() for n in {c.strategy for c in group.cells}}

    def run(self, cell: Cell) -> dict[str, Any]:
        rec = base_record(cell, self.task, self.device, dict(self.info), self.ids[cell.key()])
        kind = self.planner.strategy(cell.strategy).kind
        return run_cell(cell, self.spec, self.task, self.strategies[cell.strategy], kind,
                        encoder_loader(self.planner, self.encoder, cell, self.task, self.device), self.total,
                        self.meta, self.store, self.device, rec, self.log, self.timeout)


def run_cell(cell: Cell, spec: EpisodeSpec, task: TaskData, strategy: Any, kind: str,
             load_encoder: Callable[..., Any], encoder_total: int, meta: Any, store: Any, device: str,
             rec: dict[str, Any], log: Callable[[str], None], timeout: float | None = None) -> dict[str, Any]:
    """All episodes of one cell, within ``timeout`` seconds (``--cell-timeout``); the record ``ok`` with
    the summary, or ``failed`` with the reason (``timeout`` past the limit)."""
    context = {"config": dict(cell.config), "seed": cell.seed, "device": device, "load_encoder": load_encoder,
               "encoder_meta": meta, "progress": lambda m: None}
    split = class_split(task, cell.seed)
    episodes = sample_episodes(task.test.labels, task.test.ids, spec, cell.seed, among=split.novel)
    rec.update(mode="episodes", n_labelled=spec.n_way * spec.k_shot,
               episodes={"n_way": spec.n_way, "k_shot": spec.k_shot, "q_query": spec.q_query,
                         "episodes": spec.episodes, "episodes_sha256": episodes.digest, **split.record(task.classes)})
    start, accuracies, fitted = time.perf_counter(), [], None
    try:
        with PeakMemory(device) as mem, deadline(timeout), cell_threads():
            seed_everything(cell.seed)
            state = meta_train(strategy, task, store, context, split, spec)
            if callable(getattr(strategy, "meta_train", None)):
                rec["episodes"]["meta_train"] = meta_cost(state, time.perf_counter() - start)
            for i in range(len(episodes)):
                seed_everything(cell.seed)
                acc, fitted = run_episode(strategy, task, episodes, i, store, context, state)
                accuracies.append(acc)
                if (i + 1) % 100 == 0:
                    log(f"{cell.label()}: {i + 1}/{len(episodes)} episodes, mean {np.mean(accuracies):.3f}")
    except (Exception, CellTimeout) as exc:
        rec.update(status="failed", reason=failure_reason(exc), error=f"{type(exc).__name__}: {exc}",
                   wall_s=round(time.perf_counter() - start, 3), episodes_done=len(accuracies))
        return rec
    summary = summarise(accuracies)
    rec["episodes"].update(summary)
    trainable, total = (int(fitted.trainable_params), int(fitted.total_params)) if fitted else (0, 0)
    if kind == "features":
        total += encoder_total
    rec.update(status="ok", metrics={"accuracy": summary["mean"], "accuracy_ci95": summary["ci95"]},
               trainable_params=trainable, total_params=total, trainable_share=round(trainable / total, 6) if total
               else 0.0, wall_s=round(time.perf_counter() - start, 3), peak_mem_mb=mem.peak_mb,
               info=jsonable(fitted.info if fitted else {}))
    return rec


def meta_cost(state: Any, wall_s: float) -> dict[str, Any]:
    """The meta-training cost a record carries: its wall time and what the state reports
    (``state.info``: steps, images seen, final loss)."""
    return {"wall_s": round(wall_s, 3), **jsonable(dict(getattr(state, "info", None) or {}))}


def encoder_loader(planner: Planner, encoder: Any, cell: Cell, task: TaskData, device: str) -> Callable[..., Any]:
    """``ctx.load_encoder``: a fresh copy of the pre-trained encoder, or the architecture randomly
    initialised (seeded by the cell's seed), as in a budget cell."""
    def load(pretrained: bool = True) -> Any:
        if pretrained:
            return copy.deepcopy(encoder)
        import torch

        from bench.run.worker import load_encoder

        torch.manual_seed(cell.seed)
        return load_encoder(planner, cell.encoder, task, device, False)

    return load


def _encoding_log(log: Callable[[str], None], where: str) -> Callable[[int], None]:
    return lambda n: log(f"{where}: encoding {n} images")


def progress_line(rec: dict[str, Any]) -> str:
    e = rec.get("episodes") or {}
    if rec.get("status") != "ok":
        return f"{rec['task']} | {rec['encoder']} | {rec['strategy']}: {rec['status']} {rec.get('error') or ''}"
    return (f"{rec['task']} | {rec['encoder']} | {rec['strategy']} | {rec['budget']}: "
            f"{100 * e['mean']:.2f} ± {100 * e['ci95']:.2f} ({rec['wall_s']:.0f} s)")


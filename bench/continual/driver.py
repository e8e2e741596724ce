"""Running continual learning on a task stream (``bench run --stream``): one record per stream cell.

A stream cell is (stream, encoder, strategy, budget, seed). The runner builds the stream's tasks
(:mod:`bench.continual.spec`), draws each task's labelled budget with the shared manifests
(:class:`bench.run.budgets.Manifests`: content-seeded, the same for every strategy of a (stream,
budget, seed)), then for each cell::

    strategy.begin(stream, ctx without labels) -> baseline b_j = accuracy of the untrained model on task j
    for i in 0..T-1: strategy.learn(i, ctx_i) -> R[i][j] = accuracy on task j's test split, every j

and appends one record (``record_type: "stream"``, schema 2) with ``metrics``: ``acc``, ``bwt``,
``fwt`` (GEM), ``accuracy`` (= ``acc``), ``R`` and ``baseline``. Resume skips cells whose
``cell_id`` finished, as for other cells (:class:`bench.run.folder.RunFolder`). The pending cells of
one encoder are one cell group (``kind="stream"``, run by :class:`StreamGroup`) on the run's
executor, under ``--cell-timeout`` (a cell past it fails with ``failure: timeout``).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.continual.spec import StreamInfo, StreamPlan, class_pairs, gem_metrics, parse_stream, resolve_continual
from bench.errors import UserError
from bench.loading import TaskLoader
from bench.run.budgets import Manifests, ids_digest
from bench.run.folder import RunFolder
from bench.run.plan import Cell, Planner, RunConfig, incompatibility, unique
from bench.run.records import base_record, digest, identity, jsonable
from bench.run.task_set import TaskSetDriver, TaskSetGroup
from bench.tasks import ArraySplit, Split, TaskData

RECORD_TYPE = "stream"


class _Relabelled(Split):
    """Some positions of a split with new labels (a split task's local class indices)."""

    def __init__(self, parent: Split, positions: np.ndarray, labels: np.ndarray) -> None:
        self.parent, self.positions = parent, positions
        self.ids = [parent.ids[int(i)] for i in positions]
        self.labels = np.asarray(labels, dtype=np.int64)

    def images(self, positions: Any) -> list[np.ndarray]:
        return self.parent.images([int(self.positions[i]) for i in positions])


def _cut(split: Split, classes: list[int]) -> _Relabelled:
    labels = np.asarray(split.labels)
    pos = np.flatnonzero(np.isin(labels, classes))
    local = np.searchsorted(np.asarray(classes), labels[pos])
    return _Relabelled(split, pos, local)


def stream_tasks(plan: StreamPlan, load: Callable[[str], TaskData]) -> list[TaskData]:
    """The stream's tasks in order, each with local labels ``0..n-1``."""
    if not plan.split:
        return [load(n) for n in plan.base_tasks]
    base = load(plan.base_tasks[0])
    out = []
    for pair in class_pairs(base.num_classes, plan.name):
        names = [base.classes[c] for c in pair]
        out.append(dataclasses.replace(base, name=f"{base.name}/{'-'.join(names)}", classes=names,
                                       train=_cut(base.train, pair), test=_cut(base.test, pair),
                                       target_train=None, target_test=None, extra=dict(base.extra)))
    return out


class StreamRunner(TaskSetDriver):
    """Plans and runs the cells of one ``--stream`` run; only this driver writes ``results.jsonl``."""

    what = "stream cells"

    def __init__(self, cfg: RunConfig, plugins: Any, log: Callable[[str], None] | None = None) -> None:
        self.log = log or (lambda msg: print(msg, file=sys.stderr))
        self.plugins = plugins
        self.stream = parse_stream(str(cfg.stream), cfg.stream_scenario, plugins.tasks)
        specs = [resolve_continual(plugins.strategies, n) for n in unique(cfg.strategies, "strategy")]
        self.cfg = dataclasses.replace(cfg, strategies=[s.name for s in specs], tasks=list(self.stream.base_tasks))
        self.planner = Planner(self.cfg, plugins)
        self.loader = TaskLoader(plugins, cfg.data_dir, cfg.download)
        self.tasks = stream_tasks(self.stream, self.loader.load)
        for t in self.tasks:
            if len(t.test) == 0:
                raise UserError(f"--stream {self.stream.name!r}: task {t.name!r} has no test items")
        self.info = StreamInfo(self.stream.name, self.cfg.stream_scenario,
                               tuple(_view(t) for t in self.tasks))
        self.manifests = Manifests(self.cfg.out)
        self.folder = RunFolder(self.cfg.out, plugins, log=self.log)
        self.results = self.folder.results
        self.executor = plugins.executors.get(cfg.executor)
        self._id_encoders: dict[str, Any] = {}
        # the largest native size decides --resolution auto for the whole stream (one encoder for all tasks)
        self.sizing = max(self.tasks, key=lambda t: t.native_size or 0)

    def cells(self) -> tuple[list[Cell], list[tuple[Cell, str]]]:
        run: list[Cell] = []
        skips: list[tuple[Cell, str]] = []
        for enc in self.planner.encoder_specs:
            meta = self.planner.encoder_meta(enc)
            for cell in self.planner.cells_for(self.stream.name, enc):
                spec = self.planner.strategy(cell.strategy)
                reason = incompatibility(spec, meta, enc, None, dict(cell.config))
                scenarios = spec.metadata.get("scenarios", ("task", "class"))
                if reason is None and self.cfg.stream_scenario not in scenarios:
                    reason = f"{spec.name} runs only in the {' or '.join(scenarios)} scenario"
                (skips.append((cell, reason)) if reason else run.append(cell))
        return run, skips

    def identity(self, cell: Cell, encoder: Any) -> Any:
        from bench.run.identities import task_fingerprint

        manifest = digest([ids_digest([t.train.ids[int(i)] for i in self.positions(t, cell.budget, cell.seed)])
                           for t in self.tasks])
        ingredients = {
            "record_type": RECORD_TYPE, "stream": self.stream.name, "scenario": self.cfg.stream_scenario,
            "stream.tasks": [t.name for t in self.tasks],
            "tasks.fingerprint": digest([task_fingerprint(self.loader.load(n)) for n in self.stream.base_tasks]),
            **self.encoder_ingredients(cell, encoder),
        }
        return identity(ingredients, cell.budget, manifest, cell.seed)

    def record(self, cell: Cell, ident: Any, device: str) -> dict[str, Any]:
        rec = base_record(cell, self.loader.load(self.stream.base_tasks[0]), device,
                          self.planner.encoder_info(cell.encoder, self.sizing), ident)
        rec["record_type"] = RECORD_TYPE
        rec["stream"] = {"name": self.stream.name, "scenario": self.cfg.stream_scenario,
                         "tasks": [t.name for t in self.tasks], "classes": [t.classes for t in self.tasks],
                         "test": [len(t.test) for t in self.tasks]}
        return rec

    def run(self) -> list[dict[str, Any]]:
        """Every pending stream cell, one cell group per encoder on the run's executor (``--jobs``,
        ray, submitit); returns the records written now."""
        from bench.run.executors import execute
        from bench.run.worker import CellGroup, Session, group_device, hosted

        with self.folder.hold():
            device = group_device(self.cfg)
            cells, skips = self.cells()
            for t in self.tasks:  # every manifest now: budget errors before any training
                for b in self.planner.budgets:
                    for s in range(self.cfg.seeds):
                        self.positions(t, b.label, s)
            new, pending = self.resume(cells, skips, device)
            session = Session(self.plugins, self.planner, self.loader.load, log=self.log, driver=self)
            with hosted(session) as key:
                groups = (CellGroup(self.stream.name, enc, tuple(c for c in pending if c.encoder == enc), self.cfg,
                                    device, session=key, kind="stream")
                          for enc in self.planner.encoder_specs if any(c.encoder == enc for c in pending))
                new.extend(self.folder.finish(rec) for rec in execute(self.executor, groups, session))
            return new

    def compute(self, cell: Cell, device: str, rec: dict[str, Any]) -> None:
        """Begin, then learn each task in turn, scoring every task after each."""
        metrics, infos = self._learn_stream(cell, device)
        rec.update(status="ok", metrics=metrics, info=jsonable(infos))
        last = infos[-1] if infos else {}
        rec["trainable_params"] = int(last.get("trainable_params", 0))
        rec["total_params"] = int(last.get("total_params", 0))
        rec["trainable_share"] = round(rec["trainable_params"] / max(1, rec["total_params"]), 6)
        self.log(f"  ACC {100 * metrics['acc']:.1f}  BWT {_pts(metrics['bwt'])}  FWT {_pts(metrics['fwt'])}")

    def _learn_stream(self, cell: Cell, device: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        from bench.strategies import FitContext
        from bench.views import LabelFreeSplit, LabelledSplit

        spec = self.planner.strategy(cell.strategy)
        strategy = spec.load()
        config = dict(cell.config)
        meta = self.planner.encoder_meta(cell.encoder)
        offsets = self.info.offsets if self.cfg.stream_scenario == "class" else (0,) * len(self.tasks)
        tests = [LabelFreeSplit.of(t.test) for t in self.tasks]

        def context(task: TaskData | None, labelled: Split, i: int) -> FitContext:
            def progress(message: str) -> None:
                if self.cfg.progress:
                    print(f"\r  task {i + 1}/{len(self.tasks)}: {message}   ", end="", file=sys.stderr, flush=True)

            return FitContext(labelled=LabelledSplit.of(labelled), config=dict(config), seed=cell.seed,
                              device=device, load_encoder=lambda pretrained=True: self.load_encoder(
                                  cell.encoder, device, pretrained),
                              encoder_meta=meta, progress=progress, task_name=task.name if task else self.stream.name,
                              classes=list(task.classes) if task else [], extra=dict(task.extra) if task else {})

        def scores() -> list[float]:
            out = []
            for j, t in enumerate(self.tasks):
                pred = np.asarray(strategy.predict(j, tests[j]))
                labels = np.asarray(t.test.labels) + offsets[j]
                if pred.shape != labels.shape:
                    raise ValueError(f"predict() returned shape {pred.shape}, expected {labels.shape}")
                out.append(round(float((pred == labels).mean()), 6))
            return out

        empty = ArraySplit([], np.zeros((0, 1, 1, 1), dtype=np.uint8), [])
        strategy.begin(self.info, context(None, empty, 0))
        baseline = scores()
        R: list[list[float]] = []
        infos: list[dict[str, Any]] = []
        for i, task in enumerate(self.tasks):
            budget = task.train.subset(self.positions(task, cell.budget, cell.seed).tolist())
            infos.append(dict(strategy.learn(i, context(task, budget, i)) or {}))
            R.append(scores())
            if self.cfg.progress:
                print("\r", end="", file=sys.stderr)
            self.log(f"  after task {i + 1}/{len(self.tasks)} ({task.name}): "
                     + " ".join(f"{100 * a:.0f}" for a in R[-1]))
        gem = gem_metrics(R, baseline)
        metrics = {**{k: (round(v, 6) if v is not None else None) for k, v in gem.items()},
                   "accuracy": round(float(gem["acc"] or 0.0), 6), "R": R, "baseline": baseline}
        return metrics, infos


class StreamGroup(TaskSetGroup):
    """A worker's side of a stream cell group (one stream x encoder)."""

    driver_type = StreamRunner


def _view(task: TaskData) -> Any:
    from bench.views import TaskView

    return TaskView(task.name, task.classes, task.extra)


def _pts(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:+.1f}"

"""Running multi-task cells (``bench run --multitask A,B,...``): one record per cell, paired with single-task cells.

A multi-task cell is (task set, encoder, weighting, budget, seed). :meth:`MultitaskRunner.run`
first runs (or, resuming, reuses from the folder) the single-task ``finetune`` cells of every task
of the set with the same encoders, budgets, seeds and recipe options (the plain grid's cells, the
same ``cell_id`` a ``bench run --strategies finetune`` gives them), then each multi-task cell:

    every task's labelled budget from the shared manifests -> one encoder, a head per task, trained
    jointly (bench.multitask.joint) -> accuracy and balanced accuracy on each task's test split

and appends one record (``record_type: "multitask"``) whose ``metrics`` hold ``accuracy`` (the
mean over tasks), ``tasks`` (per task: ``accuracy``, ``balanced_accuracy``, ``single_task_accuracy``,
``gain``, the paired single-task ``single_task_cell_id``), ``mean_gain`` and ``delta_m``
(:func:`bench.multitask.spec.paired_gains`), and ``multitask.task_weights`` the learned weights
(final and a trajectory). A single-task cell pairs when its manifest digest equals the task's.
The pending cells of one (encoder, weighting) are one cell group (``kind="multitask"``) on the
run's executor, under ``--cell-timeout``; the driver adds the gains as records come back.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.errors import UserError
from bench.loading import TaskLoader
from bench.multitask.spec import RECORD_TYPE, REFERENCE, paired_gains, parse_multitask, resolve_weighting, weightings
from bench.run.budgets import Manifests, ids_digest
from bench.run.folder import RunFolder
from bench.run.plan import DEFAULT_STRATEGIES, Cell, Planner, RunConfig, incompatibility, unique
from bench.run.records import base_record, digest, identity, jsonable, latest
from bench.run.task_set import TaskSetDriver, TaskSetGroup


class MultitaskRunner(TaskSetDriver):
    """Plans and runs one ``--multitask`` run (its single-task reference cells first)."""

    what = "multi-task cells"

    def __init__(self, cfg: RunConfig, plugins: Any, log: Callable[[str], None] | None = None) -> None:
        self.log = log or (lambda msg: print(msg, file=sys.stderr))
        self.plugins = plugins
        self.task_names = parse_multitask(str(cfg.multitask), plugins.tasks)
        self.name = ",".join(self.task_names)
        names = weightings(plugins.strategies) if list(cfg.strategies) == list(DEFAULT_STRATEGIES) else cfg.strategies
        specs = [resolve_weighting(plugins.strategies, n) for n in unique(list(names), "strategy")]
        self.cfg = dataclasses.replace(cfg, strategies=[s.name for s in specs], tasks=list(self.task_names))
        self.planner = Planner(self.cfg, plugins)
        if REFERENCE not in plugins.strategies:
            raise UserError(f"--multitask pairs every cell with single-task {REFERENCE!r}, which is not registered")
        self.reference_cfg = dataclasses.replace(
            cfg, strategies=[REFERENCE], tasks=list(self.task_names), multitask=None,
            options=[o for o in cfg.options if o[0] in (None, REFERENCE)
                     and o[1] in plugins.strategies.get(REFERENCE).defaults])
        self.loader = TaskLoader(plugins, cfg.data_dir, cfg.download)
        self.tasks = [self.loader.load(n) for n in self.task_names]
        self.manifests = Manifests(self.cfg.out)
        self.folder = RunFolder(self.cfg.out, plugins, log=self.log)
        self.results = self.folder.results
        self.executor = plugins.executors.get(cfg.executor)
        self._id_encoders: dict[str, Any] = {}
        # the largest native size decides --resolution auto for the set (one encoder for all tasks)
        self.sizing = max(self.tasks, key=lambda t: t.native_size or 0)

    def reference(self) -> Any:
        """The grid driver of the paired single-task ``finetune`` cells."""
        from bench.run.runner import Runner

        return Runner(self.reference_cfg, self.plugins, self.log)

    def cells(self) -> tuple[list[Cell], list[tuple[Cell, str]]]:
        run: list[Cell] = []
        skips: list[tuple[Cell, str]] = []
        for enc in self.planner.encoder_specs:
            meta = self.planner.encoder_meta(enc)
            for cell in self.planner.cells_for(self.name, enc):
                reason = incompatibility(self.planner.strategy(cell.strategy), meta, enc, None, dict(cell.config))
                (skips.append((cell, reason)) if reason else run.append(cell))
        return run, skips

    def manifest_digests(self, budget: str, seed: int) -> list[str]:
        return [ids_digest([t.train.ids[int(i)] for i in self.positions(t, budget, seed)]) for t in self.tasks]

    def identity(self, cell: Cell, encoder: Any) -> Any:
        from bench.run.identities import task_fingerprint

        ingredients = {
            "record_type": RECORD_TYPE, "multitask.tasks": list(self.task_names),
            "tasks.fingerprint": digest([task_fingerprint(t) for t in self.tasks]),
            **self.encoder_ingredients(cell, encoder),
        }
        return identity(ingredients, cell.budget, digest(self.manifest_digests(cell.budget, cell.seed)), cell.seed)

    def record(self, cell: Cell, ident: Any, device: str) -> dict[str, Any]:
        rec = base_record(cell, self.tasks[0], device, self.planner.encoder_info(cell.encoder, self.sizing), ident)
        rec["record_type"] = RECORD_TYPE
        rec["task_info"] = {"tasks": list(self.task_names),
                            "dataset": sorted({d for t in self.tasks for d in t.dataset}),
                            "pool": [len(t.train) for t in self.tasks], "test": [len(t.test) for t in self.tasks],
                            "shifted": False}
        rec["multitask"] = {"tasks": list(self.task_names), "classes": [t.classes for t in self.tasks],
                            "manifest_sha256": self.manifest_digests(cell.budget, cell.seed)}
        return rec

    def run(self) -> list[dict[str, Any]]:
        """The single-task reference cells, then every pending multi-task cell (one group per encoder
        and weighting on the run's executor); returns the multi-task records written now."""
        from bench.run.executors import execute
        from bench.run.worker import CellGroup, Session, group_device, hosted

        self.log(f"single-task {REFERENCE} cells of {self.name} (the paired reference)")
        self.reference().run()
        with self.folder.hold():
            device = group_device(self.cfg)
            cells, skips = self.cells()
            new, pending = self.resume(cells, skips, device)
            singles = self.single_task_records()
            session = Session(self.plugins, self.planner, self.loader.load, log=self.log, driver=self)
            with hosted(session) as key:
                groups = (CellGroup(self.name, enc, cell_group, self.cfg, device, session=key, kind=RECORD_TYPE)
                          for enc in self.planner.encoder_specs for s in self.cfg.strategies
                          if (cell_group := tuple(c for c in pending if c.encoder == enc and c.strategy == s)))
                new.extend(self.folder.finish(add_gains(rec, singles))
                           for rec in execute(self.executor, groups, session))
            return new

    def single_task_records(self) -> dict[tuple[Any, ...], dict[str, Any]]:
        """The folder's finished single-task ``finetune`` records of this run's recipe, by
        (task, encoder, budget, seed, manifest digest)."""
        config = jsonable(self.reference().planner.configs[REFERENCE])
        out = {}
        for r in latest(self.results.load()):
            if (r.get("record_type") is None and r.get("strategy") == REFERENCE and r.get("status") == "ok"
                    and r.get("config") == config and r.get("task") in self.task_names):
                out[(r["task"], r["encoder"], r["budget"], r["seed"], r.get("manifest_sha256"))] = r
        return out

    def compute(self, cell: Cell, device: str, rec: dict[str, Any]) -> None:
        """Train the cell's joint model and score every task."""
        metrics, info, counts = self._learn(cell, device)
        rec.update(status="ok", metrics=metrics, info=jsonable(info))
        rec["multitask"]["task_weights"] = {"final": info["task_weights"], "trajectory": info["weight_trajectory"]}
        rec["trainable_params"], rec["total_params"] = counts
        rec["trainable_share"] = round(counts[0] / max(1, counts[1]), 6)
        rec["n_labelled"] = info["n_labelled"]
        rec["flags"] = flags(metrics, info)
        self.log("  " + "  ".join(f"{t} {100 * m['accuracy']:.1f}" for t, m in metrics["tasks"].items())
                 + f"  weights {info['task_weights']}")

    def _learn(self, cell: Cell, device: str) -> tuple[dict[str, Any], dict[str, Any], tuple[int, int]]:
        from bench.encoders import count_parameters
        from bench.multitask.joint import JointModel, predict_task, train_joint
        from bench.run.cell import classification_metrics

        config = dict(cell.config)
        weighting = self.planner.strategy(cell.strategy).load(len(self.tasks), config, cell.seed)
        encoder = self.load_encoder(cell.encoder, device)
        model = JointModel(encoder.module, encoder.feature_dim, [t.num_classes for t in self.tasks])
        counts = count_parameters(model)
        labelled = [t.train.subset(self.positions(t, cell.budget, cell.seed).tolist()) for t in self.tasks]

        def progress(message: str) -> None:
            if self.cfg.progress:
                print(f"\r  {message}   ", end="", file=sys.stderr, flush=True)

        info = train_joint(model, encoder, labelled, weighting, config, cell.seed, device, progress)
        if self.cfg.progress:
            print("\r", end="", file=sys.stderr)
        info["n_labelled"] = [len(s) for s in labelled]
        tasks = {}
        for i, t in enumerate(self.tasks):
            pred = predict_task(model, encoder, i, device)(t.test)
            tasks[t.name] = {**classification_metrics(t.test.labels, pred, t.num_classes), "num_classes": t.num_classes}
        metrics = {"accuracy": round(float(np.mean([m["accuracy"] for m in tasks.values()])), 6),
                   "balanced_accuracy": round(float(np.mean([m["balanced_accuracy"] for m in tasks.values()])), 6),
                   "tasks": tasks}
        return metrics, info, counts


def flags(metrics: dict[str, Any], info: dict[str, Any]) -> list[str]:
    """``chance-level`` when some task's balanced accuracy is at most 1/K + 0.05 (its K classes),
    ``capped`` when ``max_steps`` cut the steps rule short."""
    out = []
    if any(m["balanced_accuracy"] <= 1 / m["num_classes"] + 0.05 for m in metrics["tasks"].values()):
        out.append("chance-level")
    if info.get("capped"):
        out.append("capped")
    return out


def add_gains(rec: dict[str, Any], singles: dict[tuple[Any, ...], dict[str, Any]]) -> dict[str, Any]:
    """``rec`` with each task's paired single-task accuracy and gain, ``mean_gain`` and ``delta_m``."""
    if rec.get("status") != "ok":
        return rec
    tasks = rec["metrics"]["tasks"]
    single: dict[str, float | None] = {}
    for name, sha in zip(rec["multitask"]["tasks"], rec["multitask"]["manifest_sha256"]):
        ref = singles.get((name, rec["encoder"], rec["budget"], rec["seed"], sha))
        single[name] = float(ref["metrics"]["accuracy"]) if ref else None
        tasks[name]["single_task_accuracy"] = single[name]
        tasks[name]["single_task_cell_id"] = ref["cell_id"] if ref else None
    paired = paired_gains({n: float(m["accuracy"]) for n, m in tasks.items()}, single)
    for name, gain in paired["gains"].items():
        tasks[name]["gain"] = gain
    rec["metrics"].update(mean_gain=paired["mean_gain"], delta_m=paired["delta_m"])
    return rec


class MultitaskGroup(TaskSetGroup):
    """A worker's side of a multi-task cell group (one encoder x weighting); its records carry no
    gains: the driver adds them."""

    driver_type = MultitaskRunner


__all__ = ["MultitaskGroup", "MultitaskRunner", "add_gains", "flags"]

"""Planning a run without torch: the configuration, the grid of cells, options and skip reasons.

Everything ``bench run --dry-run`` needs lives here and imports no model code::

    names -> specs (registries) -> grid (task x encoder x strategy x budget x seed)
      -> per task: budget manifests (errors before any training) -> incompatible cells skipped

What one cell needs (compatibility, resolution, weights) is :mod:`bench.run.compatibility`;
execution is :mod:`bench.run.runner`; one cell is :mod:`bench.run.cell`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.continual.spec import check_stream_strategies
from bench.errors import UserError
from bench.run.budgets import Budget, parse_budgets
from bench.run.compatibility import incompatibility, resolution_for
from bench.run.tunables import check_tune_request
from bench.specs import EncoderMeta, EncoderSpec, StrategySpec, TaskSpec
from bench.tasks import TaskData

DEFAULT_ENCODERS = ("efficientnet-lite0", "pixels")
DEFAULT_STRATEGIES = ("scratch", "linear-probe", "finetune")
DEFAULT_TASKS = ("mnist5k",)
DEFAULT_BUDGETS = "1,2,5,10,20"
DEFAULT_SEEDS = 3

#: Command-line aliases for strategy options (they apply to every strategy that declares the key).
OPTION_ALIASES = {"layer_decay", "lora_rank", "lora_alpha", "head_init", "tune"}

Options = list[tuple[str | None, str, Any]]


@dataclass
class RunConfig:
    encoders: list[str] = field(default_factory=lambda: list(DEFAULT_ENCODERS))
    strategies: list[str] = field(default_factory=lambda: list(DEFAULT_STRATEGIES))
    tasks: list[str] = field(default_factory=lambda: list(DEFAULT_TASKS))
    budgets: str | list[str] = DEFAULT_BUDGETS
    seeds: int = DEFAULT_SEEDS
    out: Path = Path("bench-results")
    device: str = "auto"
    #: ``--precision``: fp32, or bf16 autocast in encode passes and training; ``--compile``: torch.compile (bench.accel)
    precision: str = "fp32"
    compile: bool = False
    #: encoder name -> local checkpoint path (``--weights NAME=PATH``)
    weights: dict[str, str] = field(default_factory=dict)
    #: ``"auto"``, an input side for every encoder, or per encoder ``{"*": default, name: side}``
    #: (:func:`bench.run.compatibility.parse_resolution`)
    resolution: Any = "auto"
    #: (strategy or None for all that declare it, key, value)
    options: Options = field(default_factory=list)
    data_dir: str | None = None
    download: bool = False
    pretraining_indexes: list[str] = field(default_factory=list)
    executor: str = "local"
    #: the executor's settings (``--jobs``, ``--address``, ``--slurm-partition``, ...; bench.cli.executor_options)
    executor_options: dict[str, Any] = field(default_factory=dict)
    #: reference task for forgetting: "auto" (the task's declared ``reference_task``), "off", or a task name
    forgetting: str = "auto"
    #: run the contamination checks (hash detectors per task, embedding detector per encoder)
    contamination: bool = True
    dry_run: bool = False
    progress: bool = True
    #: seconds a cell may run before it is recorded as failed (reason ``timeout``); None: no limit
    cell_timeout: float | None = None
    #: run only the cells whose latest record is ``failed`` (``--retry-failed``)
    retry_failed: bool = False
    #: ``--stream``: a task stream for continual learning (bench.continual.spec), None: a grid of single tasks
    stream: str | None = None
    #: ``--stream-scenario``: ``task`` (a head per task) or ``class`` (one head that grows)
    stream_scenario: str = "task"
    #: few-shot episodes ``N:K:Q:E`` (``--episodes``; bench.episodes.spec) instead of label budgets; None: budgets
    episodes: str | None = None
    #: ``--multitask``: two or more tasks trained jointly (bench.multitask.spec), None: single tasks
    multitask: str | None = None


@dataclass(frozen=True)
class Cell:
    encoder: str
    strategy: str
    task: str
    budget: str
    seed: int
    config_id: str
    config: tuple[tuple[str, Any], ...]

    def key(self) -> tuple[Any, ...]:
        return (self.encoder, self.strategy, self.task, self.budget, self.seed, self.config_id)

    def label(self) -> str:
        extra = "" if self.config_id == "default" else f"[{self.config_id}]"
        return f"{self.task} | {self.encoder} | {self.strategy}{extra} | {self.budget} | seed {self.seed}"


@dataclass
class Plan:
    cells: list[Cell]
    skips: list[tuple[Cell, str]]
    budgets: list[Budget]



def check_device_name(device: str, precision: str = "fp32") -> None:
    if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
        raise UserError(f"unknown device {device!r}; use auto, cpu or cuda")
    if precision not in ("fp32", "bf16"):
        raise UserError(f"--precision {precision!r}: use fp32 (default) or bf16")


def unique(names: list[str], kind: str) -> list[str]:
    """``names`` stripped, empty ones dropped; a name listed twice or none at all is an error."""
    out: list[str] = []
    for n in names:
        n = n.strip()
        if not n:
            continue
        if n in out:
            raise UserError(f"{kind} {n!r} is listed twice")
        out.append(n)
    if not out:
        raise UserError(f"no {kind} given")
    return out


def strategy_config(spec: StrategySpec, options: Options) -> dict[str, Any]:
    config = dict(spec.defaults)
    for target, key, value in options:
        if target in (None, spec.name) and key in spec.defaults:
            config[key] = value
    return config


def config_id(spec: StrategySpec, config: dict[str, Any]) -> str:
    """``"default"`` or a readable, stable id of the options that differ from the defaults."""
    changed = {k: v for k, v in sorted(config.items()) if spec.defaults.get(k) != v}
    if not changed:
        return "default"
    text = ",".join(f"{k}={v}" for k, v in changed.items())
    return text if len(text) <= 60 else hashlib.sha256(text.encode()).hexdigest()[:12]


def check_options(strategies: list[StrategySpec], options: Options) -> None:
    names = {s.name for s in strategies}
    for target, key, _ in options:
        if target is not None and target not in names:
            raise UserError(f"option {target}.{key}: strategy {target!r} is not in this run "
                            f"({', '.join(sorted(names))})")
        owners = [s for s in strategies if (target in (None, s.name)) and key in s.defaults]
        if not owners:
            known = sorted({k for s in strategies if target in (None, s.name) for k in s.defaults})
            where = f"strategy {target!r}" if target else f"any selected strategy ({', '.join(sorted(names))})"
            raise UserError(f"option {key!r} is not an option of {where}; known options: {', '.join(known)}")


class Planner:
    """Checks a :class:`RunConfig` against the registries and expands its grid."""

    def __init__(self, cfg: RunConfig, plugins: Any) -> None:
        self.cfg = cfg
        self.budgets = parse_budgets(cfg.budgets)
        check_device_name(cfg.device, cfg.precision)
        if not isinstance(cfg.seeds, int) or cfg.seeds < 1:
            raise UserError(f"--seeds must be a positive integer, not {cfg.seeds!r}")
        self.encoder_specs: dict[str, tuple[EncoderSpec, str | None]] = {
            n: plugins.encoders.resolve(n) for n in unique(cfg.encoders, "encoder")}
        self.strategy_specs: list[StrategySpec] = [
            plugins.strategies.get(n) for n in unique(cfg.strategies, "strategy")]
        check_stream_strategies(cfg, self.strategy_specs)  # continual strategies run only on --stream
        self.task_specs: dict[str, tuple[TaskSpec, str | None]] = {
            n: plugins.tasks.resolve(n) for n in unique(cfg.tasks, "task")}
        bare = {n.split(":")[0] for n in self.encoder_specs}
        for name in cfg.weights:
            if name not in self.encoder_specs and name.split(":")[0] not in bare:
                raise UserError(f"--weights {name}=...: encoder {name!r} is not in this run "
                                f"({', '.join(self.encoder_specs)})")
        # before check_options: its message for a strategy with nothing to tune is the clearer one
        check_tune_request(self.strategy_specs, cfg.options)
        check_options(self.strategy_specs, cfg.options)
        self.configs = {s.name: strategy_config(s, cfg.options) for s in self.strategy_specs}
        for spec in self.strategy_specs:  # bad option values stop the run here, not in every cell
            spec.check(self.configs[spec.name])
        if cfg.forgetting not in ("auto", "off"):
            plugins.tasks.resolve(cfg.forgetting)  # unknown names fail now, with suggestions

    def encoder_meta(self, name: str) -> EncoderMeta:
        spec, variant = self.encoder_specs[name]
        return spec.variant_metadata(variant)

    def strategy(self, name: str) -> StrategySpec:
        return next(s for s in self.strategy_specs if s.name == name)

    def cells_for(self, task: str, encoder: str) -> list[Cell]:
        cells = []
        for s in self.strategy_specs:
            conf = self.configs[s.name]
            cid = config_id(s, conf)
            for b in self.budgets:
                for seed in range(self.cfg.seeds):
                    cells.append(Cell(encoder, s.name, task, b.label, seed, cid, tuple(sorted(conf.items()))))
        return cells

    def expand(self, task: TaskData) -> tuple[list[Cell], list[tuple[Cell, str]]]:
        """The cells of one loaded task, split into those to run and those skipped (with why)."""
        cells: list[Cell] = []
        skips: list[tuple[Cell, str]] = []
        for enc in self.encoder_specs:
            meta = self.encoder_meta(enc)
            for cell in self.cells_for(task.name, enc):
                reason = incompatibility(self.strategy(cell.strategy), meta, enc, task, dict(cell.config))
                (skips.append((cell, reason)) if reason else cells.append(cell))
        return cells, skips

    def plan(self, load_task: Callable[[str], TaskData],
             on_budget: Callable[[TaskData, Budget, int], None] | None = None) -> Plan:
        """Load every task, call ``on_budget`` per (task, budget, seed) (the runner writes and
        checks manifests there, so budget errors surface before any training), expand the grid."""
        cells: list[Cell] = []
        skips: list[tuple[Cell, str]] = []
        for task_name in self.task_specs:
            task = load_task(task_name)
            if on_budget is not None:
                for b in self.budgets:
                    for seed in range(self.cfg.seeds):
                        on_budget(task, b, seed)
            run, skipped = self.expand(task)
            cells += run
            skips += skipped
        return Plan(cells, skips, self.budgets)

    def reference_task_name(self, task_name: str) -> str | None:
        """The task forgetting is measured on, or None."""
        choice: str | None = self.cfg.forgetting
        if choice == "off":
            return None
        if choice == "auto":
            spec, _ = self.task_specs[task_name]
            choice = spec.reference_task
            if not choice:
                return None
        return None if choice == task_name else choice

    def resolution_for(self, meta: Mapping[str, Any], task: TaskData, encoder: str | None = None) -> int | None:
        return resolution_for(self.cfg.resolution, meta, task, encoder)

    def encoder_info(self, encoder: str, task: TaskData) -> dict[str, Any]:
        """The record's ``encoder_info``: plugin, pretraining data, weights and input size."""
        spec, _variant = self.encoder_specs[encoder]
        meta = self.encoder_meta(encoder)
        return {
            "plugin": spec.plugin,
            "pretraining_data": list(meta.pretraining_data),
            "weights": self.cfg.weights.get(encoder) or meta.weights,
            "resolution": self.resolution_for(meta, task, encoder) or meta.input_size,
        }


def make_plan(cfg: RunConfig, plugins: Any) -> Plan:
    """The grid of a run without writing anything (tasks are loaded; no manifests, no checks)."""
    from bench.loading import TaskLoader

    planner = Planner(cfg, plugins)
    return planner.plan(TaskLoader(plugins, cfg.data_dir, cfg.download).load)

"""Grid expansion, compatibility, running cells, resume, progress.

``run(config)`` does, in order::

    names -> specs (registries) -> grid (task x encoder x strategy x budget x seed)
      -> for each task: load it, write every budget manifest (errors before any training)
      -> for each encoder: skip incompatible cells (reason recorded), drop finished cells (resume)
         -> load the encoder once; frozen features of every split in one pass (feature cache)
         -> the executor runs the cells; each record is appended to results.jsonl at once
      -> leaderboard
"""

from __future__ import annotations

import copy
import hashlib
import json
import platform
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench import __version__
from bench.budgets import Budget, Manifests, ids_digest, parse_budgets
from bench.errors import UserError
from bench.plugins import Plugins
from bench.results import SCHEMA_VERSION, ResultsFile, cell_key
from bench.specs import EncoderRequest, EncoderSpec, StrategySpec, TaskRequest
from bench.tasks import Split, SubsetSplit, TaskData

DEFAULT_ENCODERS = ("efficientnet-lite0", "pixels")
DEFAULT_STRATEGIES = ("scratch", "linear-probe", "finetune")
DEFAULT_TASKS = ("mnist5k",)
DEFAULT_BUDGETS = "1,2,5,10,20"
DEFAULT_SEEDS = 3
#: Smallest input side ``--resolution auto`` gives a flexible-resolution encoder on tiny images.
AUTO_MIN_RESOLUTION = 64

#: Command-line aliases for strategy options (they apply to every strategy that declares the key).
OPTION_ALIASES = {"layer_decay", "lora_rank", "lora_alpha", "head_init", "tune"}


@dataclass
class RunConfig:
    encoders: list[str] = field(default_factory=lambda: list(DEFAULT_ENCODERS))
    strategies: list[str] = field(default_factory=lambda: list(DEFAULT_STRATEGIES))
    tasks: list[str] = field(default_factory=lambda: list(DEFAULT_TASKS))
    budgets: str | list[str] = DEFAULT_BUDGETS
    seeds: int = DEFAULT_SEEDS
    out: Path = Path("bench-results")
    device: str = "auto"
    #: encoder name -> local checkpoint path (``--weights NAME=PATH``)
    weights: dict[str, str] = field(default_factory=dict)
    #: ``"auto"``, or an input side length for every encoder
    resolution: int | str = "auto"
    #: (strategy or None for all that declare it, key, value)
    options: list[tuple[str | None, str, Any]] = field(default_factory=list)
    data_dir: str | None = None
    download: bool = False
    pretraining_indexes: list[str] = field(default_factory=list)
    executor: str = "local"
    #: reference task for forgetting: "auto" (the task's declared ``reference_task``), "off", or a task name
    forgetting: str = "auto"
    #: run the contamination checks (hash detectors per task, embedding detector per encoder)
    contamination: bool = True
    dry_run: bool = False
    progress: bool = True


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


# -- resolving names and options --------------------------------------------------------------------


def _check_device_name(device: str) -> None:
    if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
        raise UserError(f"unknown device {device!r}; use auto, cpu or cuda")


def resolve_device(device: str) -> str:
    _check_device_name(device)
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {device} was asked for but no CUDA GPU is available; use --device cpu or auto")
    return device


def strategy_config(spec: StrategySpec, options: list[tuple[str | None, str, Any]]) -> dict[str, Any]:
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


def check_options(strategies: list[StrategySpec], options: list[tuple[str | None, str, Any]]) -> None:
    names = {s.name for s in strategies}
    for target, key, _ in options:
        if target is not None and target not in names:
            raise UserError(f"option {target}.{key}: strategy {target!r} is not in this run ({', '.join(sorted(names))})")
        owners = [s for s in strategies if (target in (None, s.name)) and key in s.defaults]
        if not owners:
            known = sorted({k for s in strategies if target in (None, s.name) for k in s.defaults})
            where = f"strategy {target!r}" if target else f"any selected strategy ({', '.join(sorted(names))})"
            raise UserError(f"option {key!r} is not an option of {where}; known options: {', '.join(known)}")


def incompatibility(strategy: StrategySpec, encoder_meta: dict[str, Any], encoder: str, task: TaskData | None,
                    config: dict[str, Any] | None = None) -> str | None:
    """Why ``strategy`` (with ``config``) cannot run with this encoder/task, or None."""
    trainable = encoder_meta.get("trainable", True)
    needs = list(strategy.requires)
    if (config or {}).get("head_init") == "zero-shot":
        needs.append("text_tower")
    for need in needs:
        if need == "trainable" and not trainable:
            return f"{strategy.name} trains the encoder, and {encoder} has no trainable parameters"
        if need == "pretrained" and not trainable:
            return f"{strategy.name} needs pre-trained weights, and {encoder} has none"
        if need == "vit" and not encoder_meta.get("is_vit", False):
            return f"{strategy.name} needs a ViT encoder; {encoder} is not one"
        if need == "text_tower" and not encoder_meta.get("has_text_tower", False):
            return f"{strategy.name} needs an encoder with a text tower (CLIP-like); {encoder} has none"
        if need == "unlabelled_target" and task is not None and task.target_train is None:
            return f"{strategy.name} needs unlabelled target-domain data; task {task.name} is not a shifted task"
    return None


# -- the runner -------------------------------------------------------------------------------------


class Runner:
    def __init__(self, cfg: RunConfig, plugins: Plugins, log: Callable[[str], None] | None = None) -> None:
        self.cfg = cfg
        self.plugins = plugins
        self.log = log or (lambda msg: print(msg, file=sys.stderr))
        self.budgets = parse_budgets(cfg.budgets)
        _check_device_name(cfg.device)
        if not isinstance(cfg.seeds, int) or cfg.seeds < 1:
            raise UserError(f"--seeds must be a positive integer, not {cfg.seeds!r}")
        self.encoder_specs = {n: plugins.encoders.resolve(n) for n in _unique(cfg.encoders, "encoder")}
        self.strategy_specs = [plugins.strategies.get(n) for n in _unique(cfg.strategies, "strategy")]
        self.task_specs = {n: plugins.tasks.resolve(n) for n in _unique(cfg.tasks, "task")}
        for name in cfg.weights:
            if name not in self.encoder_specs and name.split(":")[0] not in {n.split(":")[0] for n in self.encoder_specs}:
                raise UserError(f"--weights {name}=...: encoder {name!r} is not in this run ({', '.join(self.encoder_specs)})")
        check_options(self.strategy_specs, cfg.options)
        self.configs = {s.name: strategy_config(s, cfg.options) for s in self.strategy_specs}
        self.executor = plugins.executors.get(cfg.executor)
        self.out = Path(cfg.out)
        self.results = ResultsFile(self.out / "results.jsonl")
        self.manifests = Manifests(self.out)
        self._tasks: dict[str, TaskData] = {}
        self._budget_content_overlap: dict[tuple[str, str, int], int] = {}
        self.device = "cpu"
        if cfg.forgetting not in ("auto", "off"):
            plugins.tasks.resolve(cfg.forgetting)  # unknown names fail now, with suggestions

    # tasks ---------------------------------------------------------------------------------------

    def load_task(self, name: str) -> TaskData:
        if name not in self._tasks:
            spec, variant = self.task_specs.get(name) or self.plugins.tasks.resolve(name)
            request = TaskRequest(name=name, data_dir=self.cfg.data_dir, download=self.cfg.download,
                                  resolve=self.load_task)
            task = spec.load(request)
            if not isinstance(task, TaskData):
                raise UserError(f"task plugin {spec.plugin!r} returned {type(task).__name__} for {name!r}, not TaskData")
            task.name = name
            # what the spec declares counts too (a wrapper task may reuse another task's data)
            task.dataset = tuple(dict.fromkeys([*task.dataset, *spec.dataset]))
            self._tasks[name] = task
        return self._tasks[name]

    # grid ----------------------------------------------------------------------------------------

    def encoder_meta(self, name: str) -> dict[str, Any]:
        spec, variant = self.encoder_specs[name]
        return spec.variant_metadata(variant)

    def cells_for(self, task: str, encoder: str) -> list[Cell]:
        cells = []
        for s in self.strategy_specs:
            conf = self.configs[s.name]
            cid = config_id(s, conf)
            for b in self.budgets:
                for seed in range(self.cfg.seeds):
                    cells.append(Cell(encoder, s.name, task, b.label, seed, cid, tuple(sorted(conf.items()))))
        return cells

    def plan(self) -> Plan:
        """Load tasks, write manifests (budget errors surface here), expand and filter the grid."""
        cells: list[Cell] = []
        skips: list[tuple[Cell, str]] = []
        specs = {s.name: s for s in self.strategy_specs}
        for task_name in self.task_specs:
            task = self.load_task(task_name)
            for b in self.budgets:
                for seed in range(self.cfg.seeds):
                    pos = self.manifests.positions(task, b, seed)
                    if self.cfg.contamination:
                        self._check_disjoint(task, b, seed, pos)
            for enc in self.encoder_specs:
                meta = self.encoder_meta(enc)
                for cell in self.cells_for(task_name, enc):
                    reason = incompatibility(specs[cell.strategy], meta, enc, task, dict(cell.config))
                    (skips.append((cell, reason)) if reason else cells.append(cell))
        return Plan(cells, skips, self.budgets)

    def _check_disjoint(self, task: TaskData, budget: Budget, seed: int, positions: np.ndarray) -> None:
        """A manifest must share no item id with test; content copies of test items are recorded."""
        from bench import contamination

        check = contamination.check_budget_disjoint(task, positions, _contamination_cache())
        if check.id_overlap:
            raise UserError(f"task {task.name!r}: budget {budget.label} seed {seed} shares item ids with the test split "
                            f"(e.g. {sorted(check.id_overlap)[0]!r}); the task plugin's splits overlap")
        self._budget_content_overlap[(task.name, budget.label, seed)] = len(check.content_overlap)

    def reference_task(self, task_name: str) -> TaskData | None:
        """The task forgetting is measured on, or None."""
        choice = self.cfg.forgetting
        if choice == "off":
            return None
        if choice == "auto":
            spec, _ = self.task_specs[task_name]
            choice = spec.metadata.get("reference_task")
            if not choice:
                return None
        if choice == task_name:
            return None
        return self.load_task(choice)

    # running -------------------------------------------------------------------------------------

    def run(self) -> list[dict[str, Any]]:
        _check_writable(self.out)
        done = self.results.done_keys()  # also validates an existing results file
        self.device = resolve_device(self.cfg.device)
        plan = self.plan()
        new_records: list[dict[str, Any]] = []
        for cell, reason in plan.skips:
            if cell.key() not in done:
                rec = self._base_record(cell, self.load_task(cell.task))
                rec.update(status="skipped", error=reason)
                self._finish(rec)
                new_records.append(rec)
        pending = [c for c in plan.cells if c.key() not in done]
        n_done = len(plan.cells) - len(pending)
        if n_done:
            self.log(f"resuming: {n_done} of {len(plan.cells)} cells already finished in {self.results.path}")
        bar = _progress(len(pending), self.cfg.progress)
        try:
            for task_name in self.task_specs:
                for enc in self.encoder_specs:
                    group = [c for c in pending if c.task == task_name and c.encoder == enc]
                    if group:
                        for rec in self._run_group(task_name, enc, group, bar):
                            new_records.append(rec)
        finally:
            bar.close()
        return new_records

    def _run_group(self, task_name: str, enc: str, cells: list[Cell], bar: Any) -> Iterator[dict[str, Any]]:
        task = self.load_task(task_name)
        spec, variant = self.encoder_specs[enc]
        bar.set_description(f"{task_name} | {enc}: loading encoder")
        encoder = self._load_encoder(spec, variant, enc, task, pretrained=spec.variant_metadata(variant).get("trainable", True))
        from bench.features import FeatureCache

        cache = FeatureCache()
        feats: dict[int, np.ndarray] = {}
        splits = task.splits()

        def features(split: Split) -> np.ndarray:
            if isinstance(split, SubsetSplit):
                return features(split.parent)[split.positions]
            if id(split) not in feats:
                bar.set_description(f"{task_name} | {enc}: encoding {len(split)} images")
                feats[id(split)] = cache.get(encoder, split, device=self.device)
            return feats[id(split)]

        strategy_specs = {s.name: s for s in self.strategy_specs}
        if any(strategy_specs[c.strategy].kind == "features" for c in cells):
            for split in splits.values():  # one pass per split, before any cell
                features(split)
        encoder_total = _count(encoder)
        strategies = {name: strategy_specs[name].load() for name in {c.strategy for c in cells}}
        report = None
        if self.cfg.contamination:
            bar.set_description(f"{task_name} | {enc}: contamination checks")
            report = self._contamination(task, spec, variant, {n: feats[id(s)] for n, s in splits.items() if id(s) in feats})
        reference = self.reference_task(task_name)

        def run_cell(cell: Cell) -> dict[str, Any]:
            bar.set_description(cell.label())
            rec = self._run_cell(cell, task, spec, variant, encoder, encoder_total, strategies[cell.strategy],
                                 strategy_specs[cell.strategy], features, bar, report, reference)
            return rec

        executor = self.executor.load()
        for rec in executor.run(cells, run_cell):
            self._finish(rec)
            bar.update(1)
            yield rec

    def _load_encoder(self, spec: EncoderSpec, variant: str | None, name: str, task: TaskData, pretrained: bool):
        meta = spec.variant_metadata(variant)
        weights = self.cfg.weights.get(name) or self.cfg.weights.get(name.split(":")[0])
        request = EncoderRequest(name=spec.name, variant=variant, pretrained=pretrained, weights=weights,
                                 resolution=self.resolution_for(meta, task), native_size=task.native_size,
                                 device=self.device)
        encoder = spec.load(request)
        encoder.module.to(self.device).eval()
        return encoder

    def resolution_for(self, meta: dict[str, Any], task: TaskData) -> int | None:
        """``--resolution N`` for every encoder; ``auto``: the encoder's own input size, except that
        flexible-resolution encoders (CNNs) on tasks of small images get the smallest multiple of 32
        that holds the native size, at least 64, instead of being blown up to 224 (on CPUs 224 px
        costs ~12x the compute of 64 px; measured: ImageNet EfficientNet-Lite0 features at 32 px
        lose most of their transfer, at 64 px they keep most of it)."""
        res = self.cfg.resolution
        if res != "auto":
            return int(res)
        native = task.native_size or _native_size(task)
        if meta.get("flexible_resolution") and native:
            size = max(AUTO_MIN_RESOLUTION, -(-native // 32) * 32)  # ceil to a multiple of 32
            return min(size, int(meta.get("input_size") or size))
        return None

    def _contamination(self, task: TaskData, spec: EncoderSpec, variant: str | None, features: dict[str, np.ndarray]) -> Any:
        from bench import contamination

        meta = spec.variant_metadata(variant)
        indexes = list(self.cfg.pretraining_indexes)
        if meta.get("pretraining_index"):
            indexes.append(str(meta["pretraining_index"]))
        return contamination.task_report(task, _contamination_cache(), features=features or None,
                                         pretraining_indexes=indexes,
                                         encoder_pretraining_data=list(meta.get("pretraining_data", [])))

    def _run_cell(self, cell, task, spec, variant, encoder, encoder_total, strategy, sspec, features, bar,
                  report=None, reference=None) -> dict[str, Any]:
        from bench.strategies import FitContext

        rec = self._base_record(cell, task)
        budget = next(b for b in self.budgets if b.label == cell.budget)
        pos = self.manifests.positions(task, budget, cell.seed)
        labelled = task.train.subset(pos)
        rec["n_labelled"] = len(pos)
        rec["manifest_sha256"] = ids_digest(labelled.ids)
        config = dict(cell.config)

        def load_encoder(pretrained: bool = True):
            import torch

            if pretrained:
                return copy.deepcopy(encoder)
            torch.manual_seed(cell.seed)
            return self._load_encoder(spec, variant, cell.encoder, task, pretrained=False)

        ctx = FitContext(
            task=task, labelled=labelled, unlabelled_target=task.target_train, config=config, seed=cell.seed,
            device=self.device, load_encoder=load_encoder, features=features,
            encoder_meta=spec.variant_metadata(variant),
            progress=lambda msg: bar.set_postfix_str(msg, refresh=False),
        )
        start = time.perf_counter()
        try:
            with PeakMemory(self.device) as mem:
                _seed_everything(cell.seed)
                fitted = strategy.fit(ctx)
                pred = np.asarray(fitted.predict(task.test))
                metrics = classification_metrics(task.test.labels, pred, task.num_classes)
                if report is not None:
                    rec["contamination"] = _overlap_metrics(report, task.test, pred, metrics, "")
                if task.target_test is not None:
                    tpred = np.asarray(fitted.predict(task.target_test))
                    tm = classification_metrics(task.target_test.labels, tpred, task.num_classes)
                    metrics["target_accuracy"] = tm["accuracy"]
                    metrics["target_balanced_accuracy"] = tm["balanced_accuracy"]
                    metrics["transfer_gap"] = round(metrics["accuracy"] - tm["accuracy"], 6)
                    if report is not None:
                        rec["contamination"].update(_overlap_metrics(report, task.target_test, tpred, metrics, "target_"))
                wall = time.perf_counter() - start
                if reference is not None and fitted.encoder is not None and fitted.encoder.pretrained:
                    from bench import forgetting

                    bar.set_postfix_str(f"forgetting on {reference.name}", refresh=False)
                    f = forgetting.measure(encoder, fitted.encoder, reference, self.device, seed=0)
                    metrics["forgetting"] = f["forgetting"]
                    rec["forgetting"] = f
        except UserError:
            raise
        except Exception as exc:
            rec.update(status="failed", error=f"{type(exc).__name__}: {exc}", wall_s=round(time.perf_counter() - start, 3))
            return rec
        if report is not None:
            flags = []
            if rec["contamination"].get("declared_overlap"):
                flags.append("declared-overlap:" + "+".join(rec["contamination"]["declared_overlap"]))
            if rec["contamination"].get("overlap_flag") and rec["contamination"].get("overlap_rate", 0) > 0.01:
                flags.append("overlap>1%")
            rec["flags"] = flags
            content = self._budget_content_overlap.get((task.name, cell.budget, cell.seed))
            if content is not None:
                rec["contamination"]["budget_test_content_copies"] = content
        trainable, total = int(fitted.trainable_params), int(fitted.total_params)
        if sspec.kind == "features":
            total += encoder_total  # the frozen encoder is part of the deployed model
        rec.update(
            status="ok",
            metrics=metrics,
            trainable_params=trainable,
            total_params=total,
            trainable_share=round(trainable / total, 6) if total else 0.0,
            wall_s=round(wall, 3),
            peak_mem_mb=mem.peak_mb,
            info=_jsonable(fitted.info),
        )
        return rec

    def _base_record(self, cell: Cell, task: TaskData) -> dict[str, Any]:
        spec, variant = self.encoder_specs[cell.encoder]
        meta = spec.variant_metadata(variant)
        return {
            "schema": SCHEMA_VERSION,
            "encoder": cell.encoder,
            "strategy": cell.strategy,
            "task": cell.task,
            "budget": cell.budget,
            "seed": cell.seed,
            "config_id": cell.config_id,
            "config": _jsonable(dict(cell.config)),
            "status": "skipped",
            "error": None,
            "metrics": {},
            "trainable_params": 0,
            "total_params": 0,
            "trainable_share": 0.0,
            "wall_s": 0.0,
            "peak_mem_mb": 0.0,
            "device": self.device,
            "encoder_info": {
                "plugin": spec.plugin,
                "pretraining_data": list(meta.get("pretraining_data", [])),
                "weights": self.cfg.weights.get(cell.encoder) or meta.get("weights"),
                "resolution": self.resolution_for(meta, task) or meta.get("input_size"),
            },
            "task_info": {
                "dataset": list(task.dataset),
                "split": task.split_info,
                "pool": len(task.train),
                "test": len(task.test),
                "skipped_items": task.skipped_items,
                "source_domain": task.source_domain,
                "target_domain": task.target_domain,
                "shifted": task.shifted,
            },
            "versions": versions(),
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }

    def _finish(self, rec: dict[str, Any]) -> None:
        self.results.append(rec)
        self.plugins.notify_cell_finished(rec)


# -- helpers ----------------------------------------------------------------------------------------


def _native_size(task: TaskData) -> int | None:
    """The largest side among the first image of each split (tasks that mix sources, such as
    ``mnist5k->digits`` with 28 and 8 px images, declare no single native size)."""
    sides = [max(split.images([0])[0].shape[:2]) for split in task.splits().values() if len(split)]
    return max(sides) if sides else None


def _overlap_metrics(report: Any, split: Split, pred: np.ndarray, metrics: dict[str, Any], prefix: str) -> dict[str, Any]:
    """Clean-vs-All scores of one split; headline numbers go into ``metrics`` (prefixed for the
    target domain), the full breakdown is returned for the record's ``contamination`` field."""
    correct = pred == np.asarray(split.labels)
    m = report.cell_metrics(split.ids, correct, split="target_test" if prefix else "test")
    if m.get("accuracy_clean") is not None:
        metrics[f"{prefix}accuracy_clean"] = round(m["accuracy_clean"], 6)
    metrics[f"{prefix}overlap_rate"] = round(m["overlap_rate"], 6)
    return {f"{prefix}{k}": v for k, v in m.items()}


def _contamination_cache() -> Path:
    from bench.loading import cache_root

    return cache_root()


def classification_metrics(labels: np.ndarray, pred: np.ndarray, num_classes: int) -> dict[str, float]:
    labels = np.asarray(labels)
    pred = np.asarray(pred)
    if pred.shape != labels.shape:
        raise ValueError(f"predict() returned shape {pred.shape}, expected {labels.shape}")
    acc = float((pred == labels).mean()) if len(labels) else float("nan")
    recalls = [float((pred[labels == c] == c).mean()) for c in range(num_classes) if (labels == c).any()]
    return {"accuracy": round(acc, 6), "balanced_accuracy": round(float(np.mean(recalls)), 6)}


class PeakMemory:
    """Peak memory of one cell: CUDA's allocator peak on a GPU; on the CPU, the peak resident set
    size of this process sampled every 20 ms (so it includes what was resident before the cell)."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.peak_mb = 0.0
        self._stop = threading.Event()

    def __enter__(self) -> PeakMemory:
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.reset_peak_memory_stats()
        else:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _rss_mb(self) -> float:
        try:
            with open("/proc/self/statm") as f:
                pages = int(f.read().split()[1])
            import os

            return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
        except (OSError, ValueError):
            import resource

            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, self._rss_mb())
            self._stop.wait(0.02)

    def __exit__(self, *exc: Any) -> None:
        if self.device.startswith("cuda"):
            import torch

            self.peak_mb = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        else:
            self._stop.set()
            self._thread.join()
            self.peak_mb = round(max(self.peak_mb, self._rss_mb()), 1)


def versions() -> dict[str, str]:
    out = {"transfer-bench": __version__, "python": platform.python_version()}
    for mod in ("torch", "timm", "sklearn", "numpy"):
        m = sys.modules.get(mod)
        if m is not None:
            out[mod] = getattr(m, "__version__", "?")
    return out


def _seed_everything(seed: int) -> None:
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _count(encoder: Any) -> int:
    return sum(p.numel() for p in encoder.module.parameters())


def _unique(names: list[str], kind: str) -> list[str]:
    out = []
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


def _check_writable(out: Path) -> None:
    probe = out / ".write-test"
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UserError(f"output folder {str(out)!r} is not writable ({exc.strerror}); pass a writable --out") from None


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


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


def run(cfg: RunConfig, plugins: Plugins) -> list[dict[str, Any]]:
    return Runner(cfg, plugins).run()


__all__ = ["Cell", "Plan", "RunConfig", "Runner", "cell_key", "classification_metrics", "run"]

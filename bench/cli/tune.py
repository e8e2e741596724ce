"""``bench tune``: choose a strategy's default options on a validation carve-out of the training pool.

    bench tune finetune --task mnist5k --encoder efficientnet-lite0 --option lr=1e-4,3e-4,1e-3 \\
        --budgets 10,20 --seeds 2

The carve-out never holds an item of a published cell's budget: every item in a manifest of the
published budgets (``--published-budgets``, seeds ``0..--published-seeds - 1``, drawn exactly as
``bench run`` draws them) is removed from the pool; what is left is split by a fixed seeded
permutation into a validation set (``--validation`` items) and a tuning pool, from which the
tuning budgets are drawn. Each candidate runs the ordinary cell pipeline with the validation set in
place of the test split; the choice is the best mean validation accuracy over tasks, budgets and
seeds (ties: the current default, else the first candidate). The test split and target labels are
never read (shifted tasks keep their unlabelled target images, which strategies may use anyway).

``--criterion`` says what "best" means: a validator of :mod:`bench.domain.validators`, chosen and
guarded by :mod:`bench.domain.selection` (every validator's score and the collapse guard are kept
per cell of a shifted task). The target pool reaches the cells as a split whose labels raise.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.cli.options import csv_list, parse_value, resolution_option
from bench.cli.run import _parse_set
from bench.domain import selection
from bench.domain.select import fitted_ratios
from bench.errors import UserError
from bench.report.validator_study import STUDY_NOTE
from bench.run.plan import DEFAULT_BUDGETS, DEFAULT_SEEDS
from bench.tasks import Split
from bench.views import ProtocolError

#: The permutation seed of the carve-out (fixed: the split must not be chosen either).
CARVE_SEED = 20240610
#: target pool items the adapted encoder re-encodes per cell for ``--ratio-features adapted``
ADAPTED_TARGET_ITEMS = 1000


def add_tune_parser(sub: Any) -> None:
    t = sub.add_parser("tune", help="choose a strategy's defaults on a validation carve-out of the pool (never test)")
    t.add_argument("strategy")
    t.add_argument("--task", required=True, help="task(s), comma-separated: the choice is the best mean over them")
    t.add_argument("--encoder", required=True)
    t.add_argument("--option", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="candidates (repeatable; default: the strategy's declared tunable grid)")
    t.add_argument("--set", action="append", default=[], dest="set_options", metavar="KEY=VALUE",
                   help="a fixed option for every candidate")
    t.add_argument("--budgets", default="10,20", help="tuning budgets, drawn from the carve-out (default 10,20)")
    t.add_argument("--seeds", type=int, default=2)
    t.add_argument("--published-budgets", default=DEFAULT_BUDGETS,
                   help="budgets whose manifests are kept out of the carve-out (default: bench run's)")
    t.add_argument("--published-seeds", type=int, default=DEFAULT_SEEDS)
    t.add_argument("--validation", type=int, default=1000, help="validation items carved from the pool")
    t.add_argument("--device", default="auto")
    t.add_argument("--resolution", default="auto")
    t.add_argument("--data-dir")
    t.add_argument("--criterion", default="auto", metavar="|".join(selection.CRITERIA),
                   help=f"what the choice maximises (higher = better; docs/defaults.md): source = validation "
                        f"accuracy (default, unshifted), {selection.SHIFTED_DEFAULT} (default, shifted A->B tasks: the "
                        "validator study's choice) or another validator; a candidate whose target predictions use at "
                        "most half the classes is vetoed")
    t.add_argument("--ratio-features", default="frozen", choices=("frozen", "adapted"),
                   help="features of the density ratios for iwv/dev: frozen = the pre-trained encoder's (feature "
                        "cache, one domain classifier per task, default); adapted = each candidate's fine-tuned "
                        f"encoder (as DEV's paper does; re-encodes the validation set and {ADAPTED_TARGET_ITEMS} "
                        "target items per cell)")
    t.add_argument("--study", action="store_true", help=f"validator study input: {STUDY_NOTE}; put the report in "
                   "a run folder's validator-study/ for the board's study (docs/defaults.md)")
    t.add_argument("--out", help="JSON report (default tune-STRATEGY.json)")


def carve(task: Any, published: list[Any], seeds: int, validation: int, study: bool = False) -> tuple[Any, dict]:
    """``task`` with ``train`` = the tuning pool and ``test`` = the validation set, both from the
    pool items outside every published manifest; ``target_test`` dropped (kept for ``study``: the
    validator study scores candidates on it). And a description."""
    from bench.run.budgets import Manifests, ids_digest

    excluded: set[int] = set()
    with tempfile.TemporaryDirectory() as tmp:
        manifests = Manifests(Path(tmp))
        for budget in published:
            if budget.kind == "full":
                continue  # a full budget is the whole pool: nothing could be carved
            for seed in range(seeds):
                excluded.update(int(i) for i in manifests.positions(task, budget, seed))
    free = np.array(sorted(set(range(len(task.train))) - excluded), dtype=np.int64)
    if len(free) < validation + 2 * task.num_classes:
        raise UserError(f"--validation {validation}: only {len(free)} pool items lie outside the published "
                        f"budgets of {task.name!r}; use a smaller --validation")
    order = free[np.random.default_rng(CARVE_SEED).permutation(len(free))]
    val, pool = np.sort(order[:validation]), np.sort(order[validation:])
    target = None if task.target_train is None else UnlabelledPool(task.target_train)
    carved = dataclasses.replace(task, train=task.train.subset(pool.tolist()), test=task.train.subset(val.tolist()),
                                 target_train=target, target_test=task.target_test if study else None)
    about = {"pool_items": len(task.train), "excluded_published": len(excluded), "tuning_pool_items": len(pool),
             "validation_items": len(val), "validation_sha256": ids_digest([task.train.ids[int(i)] for i in val]),
             "permutation_seed": CARVE_SEED}
    return carved, about


class UnlabelledPool(Split):
    """The target pool as ``bench tune`` hands it on: ids and images; its labels raise, and its
    fingerprint (the feature cache's key) hashes ids and pixels only."""

    def __init__(self, split: Split) -> None:
        self.ids, self._split, self._fingerprint = list(split.ids), split, ""

    @property
    def labels(self) -> np.ndarray:  # type: ignore[override]
        raise ProtocolError("bench tune never reads target labels")

    def images(self, positions: Sequence[int]) -> list[np.ndarray]:
        return self._split.images(positions)

    def fingerprint(self) -> str:
        if not self._fingerprint:
            h = hashlib.sha256(b"unlabelled\n" + "\n".join(self.ids).encode())
            for start in range(0, len(self), 512):
                for img in self.images(range(start, min(start + 512, len(self)))):
                    h.update(str(img.shape).encode() + np.ascontiguousarray(img).tobytes())
            self._fingerprint = h.hexdigest()
        return self._fingerprint


def target_sample(n: int) -> np.ndarray:
    """Positions of the fixed target sample (at most :data:`ADAPTED_TARGET_ITEMS` of ``n``)."""
    return np.sort(np.random.default_rng(CARVE_SEED).permutation(n)[:ADAPTED_TARGET_ITEMS])


class _Recording:
    """A strategy whose fitted model's predictions on the validation set (0-1 losses) and, with
    ``target``, on the fixed target sample (validators, collapse guard) are kept; with ``pool``, the
    adapted encoder's features of both (``--ratio-features adapted``)."""

    def __init__(self, inner: Any, validation: Split, pool: Split | None, device: str, target: bool = False) -> None:
        self.inner, self.validation, self.pool, self.device, self.target = inner, validation, pool, device, target
        self.seen: list[np.ndarray] = []
        self.features: tuple[np.ndarray, np.ndarray] | None = None
        self.target_pred: np.ndarray | None = None

    def fit(self, ctx: Any) -> Any:
        fitted = self.inner.fit(ctx)
        pool = self.pool
        if pool is not None and fitted.encoder is not None:
            from bench.encoders import encode

            picked = target_sample(len(pool))
            self.features = (encode(fitted.encoder, self.validation.images, len(self.validation), self.device),
                             encode(fitted.encoder, lambda pos: pool.images([int(picked[i]) for i in pos]),
                                    len(picked), self.device))
        ids = list(self.validation.ids)
        unlabelled = ctx.unlabelled_target
        sample = unlabelled.subset(target_sample(len(unlabelled)).tolist()) if self.target else None

        def predict(split: Any) -> np.ndarray:
            pred = np.asarray(fitted.predict(split))
            if list(split.ids) == ids:
                self.seen.append(pred)
                if sample is not None and self.target_pred is None:
                    self.target_pred = np.asarray(fitted.predict(sample))
            return pred

        return dataclasses.replace(fitted, predict=predict)


def _scores(args: argparse.Namespace, plugins: Any, task: Any, options: list[tuple[str | None, str, Any]],
            frozen: dict[str, tuple[np.ndarray, float, np.ndarray]],
            target_accs: list[float | None] | None = None) -> list[selection.Cell]:
    """Per (budget, seed) cell with ``options``, run as ``bench run`` runs cells: a ``selection.Cell``
    (and, into ``target_accs``, each cell's target test accuracy when the task kept its target test).
    Frozen ratios and target features are computed once per task into ``frozen``; ``--ratio-features
    adapted`` uses each cell's fitted encoder (frozen when the strategy keeps the encoder as it was)."""
    from bench.run.device import resolve_device
    from bench.run.plan import Planner, RunConfig
    from bench.run.worker import CellGroup, GroupState, Session

    with tempfile.TemporaryDirectory() as out:
        cfg = RunConfig(encoders=[args.encoder], strategies=[args.strategy], tasks=[task.name], budgets=args.budgets,
                        seeds=args.seeds, out=Path(out), device=args.device, options=options, data_dir=args.data_dir,
                        forgetting="off", contamination=False, progress=False)
        cfg.resolution = resolution_option(args.resolution)
        planner = Planner(cfg, plugins)
        cells, skips = planner.expand(task)
        if skips:
            raise UserError(f"bench tune: {skips[0][0].label()} cannot run: {skips[0][1]}")
        device = resolve_device(cfg.device)
        state = GroupState(CellGroup(task.name, args.encoder, tuple(cells), cfg, device),
                           Session(plugins, planner, lambda name: task))
        target = task.target_train is not None
        out_cells: list[selection.Cell] = []
        for cell in cells:
            adapted = task.target_train if target and args.ratio_features == "adapted" else None
            recording = _Recording(state.strategies[args.strategy], task.test, adapted, device, target)
            state.strategies[args.strategy] = recording
            record = state.run(cell)
            state.strategies[args.strategy] = recording.inner
            if target_accs is not None:
                target_accs.append((record.get("metrics") or {}).get("target_accuracy"))
            if record.get("status") != "ok" or len(recording.seen) != 1:
                out_cells.append((None, None, None, None, None))
                continue
            ratios, feats = None, None
            if recording.features is not None:
                ratios, feats = fitted_ratios(*recording.features, seed=CARVE_SEED), recording.features[1]
            elif target:
                if task.name not in frozen:
                    val, pool = state.features(task.test), state.features(task.target_train)
                    frozen[task.name] = (*fitted_ratios(val, pool, seed=CARVE_SEED), pool[target_sample(len(pool))])
                ratios, feats = frozen[task.name][:2], frozen[task.name][2]
            out_cells.append((record["metrics"]["accuracy"], recording.seen[0] == np.asarray(task.test.labels), ratios,
                              recording.target_pred, feats))
    return out_cells


def cmd_tune(args: argparse.Namespace, plugins: Any = None) -> int:
    from bench.domain import select as da_select
    from bench.loading import TaskLoader
    from bench.plugins import load_plugins
    from bench.run.budgets import parse_budgets
    from bench.run.tuning import candidates, choose, option_grid

    plugins = plugins or load_plugins()
    spec = plugins.strategies.get(args.strategy)
    grid = option_grid(spec, args.option, parse_value)
    if not grid:
        supported = ", ".join(s.name for s in map(plugins.strategies.get, plugins.strategies.names()) if s.tunable)
        raise UserError(f"bench tune: strategy {args.strategy!r} declares no tunable options; give candidates with "
                        f"--option KEY=V1,V2,... or tune one of: {supported}")
    fixed = [(args.strategy, k, v) for _, k, v in (_parse_set(s) for s in args.set_options)]
    names = csv_list(args.task)
    if args.criterion not in (None, "", "auto"):  # an unknown or oracle criterion is refused before loading
        selection.resolve_criterion(args.criterion, [], [])
    load = TaskLoader(plugins, args.data_dir).load
    tasks = [load(name) for name in names]
    args.criterion = selection.resolve_criterion(args.criterion, [t.target_train is not None for t in tasks], names)
    published = parse_budgets(args.published_budgets)
    grid_list = candidates(grid)
    rows: list[dict[str, Any]] = [{"values": values, "source_scores": {}, "scores": {}} for values in grid_list]
    carve_out: dict[str, Any] = {}
    frozen: dict[str, tuple[np.ndarray, float, np.ndarray]] = {}
    used: dict[str, str] = {}
    for task in tasks:
        study = bool(getattr(args, "study", False)) and task.target_test is not None
        carved, carve_out[task.name] = carve(task, published, args.published_seeds, args.validation, study)
        cells_of = []
        for row in rows:
            opts = [*fixed, *((args.strategy, k, v) for k, v in row["values"].items())]
            accs = row.setdefault("study_target_accuracy", {}).setdefault(task.name, []) if study else None
            cells_of.append(cells := _scores(args, plugins, carved, opts, frozen, accs))
            row["source_scores"][task.name] = [cell[0] for cell in cells]
            if task.target_train is not None and args.ratio_features == "adapted":
                row.setdefault("density_ratio", {})[task.name] = [
                    None if c[2] is None else {**da_select.weight_summary(c[2][0]), "domain_C": c[2][1]} for c in cells]
        used[task.name], why = da_select.effective(args.criterion, [c[2][0] for cs in cells_of for c in cs if c[2]])
        if why:
            print(f"bench tune: {task.name}: {why}", file=sys.stderr)
        for row, cells in zip(rows, cells_of, strict=True):
            selection.record_task(row, task.name, used[task.name], cells, task.num_classes, CARVE_SEED,
                                  shifted=task.target_train is not None)
            print(f"{task.name} {row['values']}: {used[task.name]} {row['scores'][task.name]}", flush=True)
        if task.name in frozen:
            w, C, _ = frozen[task.name]
            carve_out[task.name]["density_ratio"] = {**da_select.weight_summary(w), "domain_C": C, "note": why}
    kept = selection.summarise(rows)
    for row in rows:
        if row["veto"]:
            print(f"bench tune: {json.dumps(row['values'])} vetoed: {row['veto']}", file=sys.stderr)
    if all(r["mean"] is None for r in rows):
        raise UserError(f"bench tune: every candidate of {args.strategy!r} failed")
    refused = selection.refusal(rows)
    best = None if refused else choose(grid_list, kept, spec.defaults)
    report = {"strategy": args.strategy, "encoder": args.encoder, "tasks": [t.name for t in tasks],
              "option_grid": {k: list(v) for k, v in grid.items()}, "fixed": {k: v for _, k, v in fixed},
              "budgets": args.budgets, "seeds": args.seeds, **selection.describe(args.criterion, args.ratio_features),
              "carve_out": carve_out if len(tasks) > 1 else carve_out[tasks[0].name],
              "criterion_used": used, "candidates": rows, "chosen": None if best is None else grid_list[best]}
    if getattr(args, "study", False):
        report["study"] = STUDY_NOTE
    out = Path(args.out or f"tune-{args.strategy}.json")
    out.write_text(json.dumps(report, indent=2) + "\n")
    if refused:
        raise UserError(f"{refused} (report: {out})")
    for row in rows:
        print(f"{json.dumps(row['values'])}: mean {'/'.join(sorted(set(used.values())))} score {row['mean']} "
              f"(validation accuracy {row['source_mean']})")
    print(f"chosen by {'/'.join(sorted(set(used.values())))}: {json.dumps(report['chosen'])} (written to {out})")
    return 0

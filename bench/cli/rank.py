"""``bench rank``: transferability estimates per (encoder, task) from cached features, before any training.

    bench rank --tasks mnist5k,digits --encoders efficientnet-lite0,pixels [--budget 10] [--seeds 1]
               [--against RUN_DIR] [--json]

Each estimator of :mod:`bench.transferability.estimators` scores the labelled items of the budget manifest
``bench run`` draws for the same (task, budget, seed) (a manifest depends only on the pool, the
budget and the seed), with the encoder loaded as a run loads it (weights, resolution). Features
come from the feature cache: the whole pool's entry when a run made it, else an entry for just the
budget's items. ``--against RUN_DIR`` correlates each estimator with the accuracy measured in that
run per (task, strategy, budget): Kendall's tau and the weighted tau over the encoders both have,
and writes the result to ``RUN_DIR/rank.json``, where ``bench leaderboard RUN_DIR`` shows it as the
estimator-correlation table (:mod:`bench.report.estimators`).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.cli.options import csv_list, resolution_option
from bench.errors import UserError

COLUMNS = ("logme", "leep", "nce", "hscore", "knn")


def add_rank_parser(sub: Any) -> None:
    r = sub.add_parser("rank", help="which encoder to pick: transferability estimates from frozen features")
    r.add_argument("--tasks", required=True, help="task(s), comma-separated")
    r.add_argument("--encoders", required=True, help="encoders to rank, comma-separated")
    r.add_argument("--budget", default="10", help="the labelled budget the estimators read (default 10 per class)")
    r.add_argument("--seeds", type=int, default=1, help="budget manifests 0..N-1; scores are their mean")
    r.add_argument("--against", metavar="RUN_DIR", help="correlate the estimates with the accuracies of a run "
                   "(saved to RUN_DIR/rank.json for its leaderboard)")
    r.add_argument("--device", default="auto")
    r.add_argument("--resolution", default="auto")
    r.add_argument("--weights", action="append", default=[], metavar="NAME=PATH")
    r.add_argument("--data-dir", metavar="DIR")
    r.add_argument("--json", action="store_true", help="print JSON instead of tables")


def _features(cache: Any, encoder: Any, task: Any, positions: np.ndarray, device: str) -> np.ndarray:
    """The budget items' features: sliced from the pool's cache entry if a run made one, else
    encoded on their own (and cached under their own key)."""
    if cache.path(cache.key(encoder, task.train, device)).exists():
        return np.asarray(cache.get(encoder, task.train, device=device))[positions]
    return np.asarray(cache.get(encoder, task.train.subset(positions.tolist()), device=device))


def _source_logits(encoder: Any, feats: np.ndarray) -> np.ndarray | None:
    """Source-class logits when the encoder keeps its pre-training head (``extra["source_head"]``)."""
    head = encoder.extra.get("source_head")
    if head is None:
        return None
    import torch

    with torch.no_grad():
        return np.asarray(head(torch.from_numpy(np.asarray(feats, dtype=np.float32))).cpu().numpy())


def score(args: argparse.Namespace) -> tuple[list[dict[str, Any]], str]:
    """One row per (task, encoder): each estimator's mean over the seeds; and the budget label."""
    from bench.cli.run import _parse_weights
    from bench.loading import TaskLoader
    from bench.plugins import load_plugins
    from bench.run.budgets import Manifests
    from bench.run.device import resolve_device
    from bench.run.features import FeatureCache
    from bench.run.plan import Planner, RunConfig
    from bench.run.worker import load_encoder
    from bench.transferability.estimators import score_all

    plugins = load_plugins()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = RunConfig(encoders=csv_list(args.encoders), tasks=csv_list(args.tasks), budgets=args.budget,
                        seeds=args.seeds, out=Path(tmp), device=args.device, weights=_parse_weights(args.weights),
                        data_dir=args.data_dir, forgetting="off", contamination=False, progress=False)
        cfg.resolution = resolution_option(args.resolution)
        planner = Planner(cfg, plugins)
        if len(planner.budgets) != 1 or planner.budgets[0].kind == "full":
            raise UserError(f"--budget {args.budget!r}: give one budget smaller than the pool, e.g. --budget 10")
        budget = planner.budgets[0]
        device = resolve_device(cfg.device)
        load = TaskLoader(plugins, cfg.data_dir).load
        manifests, cache, rows = Manifests(Path(tmp)), FeatureCache(), []
        for task_name in planner.task_specs:
            task = load(task_name)
            positions = [manifests.positions(task, budget, seed) for seed in range(cfg.seeds)]
            for name in planner.encoder_specs:
                start = time.perf_counter()
                encoder = load_encoder(planner, name, task, device, pretrained=True)
                per_seed = []
                for seed, pos in enumerate(positions):
                    feats = _features(cache, encoder, task, pos, device)
                    per_seed.append(score_all(feats, task.train.labels[pos], seed, _source_logits(encoder, feats)))
                row: dict[str, Any] = {"task": task_name, "encoder": name, "resolution": int(encoder.input_size),
                                       "source": "head" if "source_head" in encoder.extra else "pseudo (N-LEEP)"}
                for est in COLUMNS:
                    values = [float(v) for s in per_seed if (v := s[est]) is not None]
                    row[est] = round(float(np.mean(values)), 6) if len(values) == len(per_seed) else None
                row["seconds"] = round(time.perf_counter() - start, 2)
                rows.append(row)
    return rows, budget.label


def correlations(rows: list[dict[str, Any]], run_dir: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The correlations against ``run_dir``'s records, and the mean accuracies they used (published in
    ``rank.json``, so `bench validate` recomputes the correlations from the published files alone)."""
    from bench.run.records import ResultsFile
    from bench.transferability.estimators import correlate, measured_rows

    path = Path(run_dir) / "results.jsonl"
    if not path.exists():
        raise UserError(f"--against {run_dir!r}: no results found at '{path}'; give a folder `bench run --out` wrote")
    scores = {(r["encoder"], r["task"]): {e: r[e] for e in COLUMNS} for r in rows}
    records = ResultsFile(path).load()
    return correlate(scores, records), measured_rows(records)


def save(result: dict[str, Any], run_dir: str) -> Path:
    """``RUN_DIR/rank.json``: the scores and correlations, read by the leaderboard's estimator table
    (bench.report.estimators); a later ``bench rank --against`` of the same run replaces it."""
    path = Path(run_dir) / "rank.json"
    tmp = path.with_name(f".rank.json.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps({**result, "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
                                  indent=1), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UserError(f"--against {run_dir!r}: cannot write '{path}' ({exc.strerror}); "
                        "make the run folder writable") from None
    return path


def cmd_rank(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    if not isinstance(args.seeds, int) or args.seeds < 1:
        raise UserError(f"--seeds must be a positive integer, not {args.seeds!r}")
    rows, budget = score(args)
    corr, measured = correlations(rows, args.against) if args.against else (None, None)
    result = {"budget": budget, "seeds": args.seeds, "scores": rows,
              **({"correlations": corr, "measured": measured} if corr is not None else {})}
    if corr is not None:
        save(result, args.against)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"transferability estimates on the {budget} budget, mean over {args.seeds} seed(s); higher is better")
    print(tabulate([[r["task"], r["encoder"], *(r[c] for c in COLUMNS), r["seconds"]] for r in rows],
                   headers=["task", "encoder", "LogME", "LEEP", "NCE", "H-score", "kNN (LOO)", "s"],
                   floatfmt=".4f"))
    if corr is not None:
        print(f"\nrank correlation with the accuracy measured in {args.against} "
              "(over the encoders both have, at least two)")
        print(tabulate([[c["task"], c["strategy"], c["budget"], c["estimator"], c["n"], c["kendall_tau"],
                         c["weighted_tau"]] for c in corr],
                       headers=["task", "strategy", "budget", "estimator", "encoders", "Kendall tau", "weighted tau"])
              if corr else "no (task, strategy, budget) of that run has an encoder in common with these")
    return 0

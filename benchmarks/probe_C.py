"""Choose the linear probe's ``C`` on a carve-out of the training pool (never a test split).

Two modes:

``--by-budget`` (the default ``C = "auto"``): ``C`` per labels-per-class budget. Each task's pool is
carved as ``bench tune`` carves it (:func:`bench.cli.tune.carve`: every item of a published
budget's manifest, 1-20/class at seeds 0-2, removed; the rest split by the fixed permutation into a
validation set of ``min(1000, pool // 4)`` items and a tuning pool). Budgets of
``BY_BUDGET`` per class, seeds 0-2, are drawn from the tuning pool with
:func:`bench.run.budgets.sample` (a budget larger than a class of the tuning pool is skipped for
that task); the probe is fitted exactly as the strategy fits it (:class:`bench.probe.FeatureScale`,
:func:`bench.probe.fit_logistic_info`) for every C in ``C_GRID`` and scored on the validation set.
The rule, fixed before the run: per budget, the C with the best mean validation accuracy over
encoders x tasks x seeds; ties (within 1e-9) go to the larger C. The report goes to ``--out``
(default ``benchmarks/defaults/probe_C_by_budget.json``); its ``table`` is
``bench_plugins.strategies.linear_probe.C_BY_BUDGET``. Only pool images are encoded.

    OMP_NUM_THREADS=1 python benchmarks/probe_C.py --by-budget [--encoders a,b] [--tasks a,b]

The committed table came from ``--tasks digits,mnist5k`` (fashion-mnist's Lite1/Lite2 encodes did not
fit the session; its finished part agreed). The fits use scikit-learn's engine, which gives the
strategy's direct engine's weights (tests/test_linear_probe_solver.py).

Without ``--by-budget`` (how the earlier single ``C = 100`` was chosen): for each encoder, mnist5k's
pool is split (stratified, seed 0) into 80% to draw budgets from and 20% to validate on; 10/class
budgets at seeds 0-2, every C in C_GRID, the mean validation accuracy decides. Test accuracy (old
unit-norm probe at C=10 vs the chosen C) is printed for the record only, after the choice.

    OMP_NUM_THREADS=1 python benchmarks/probe_C.py [encoder ...]   # default: pixels efficientnet-lite0
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

#: Labels per class measured by ``--by-budget`` (the table's keys).
BY_BUDGET = (1, 2, 5, 10, 20, 50, 100, 200)
BY_BUDGET_ENCODERS = ("pixels", "efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2")
BY_BUDGET_TASKS = ("digits", "mnist5k", "fashion-mnist")
BY_BUDGET_SEEDS = (0, 1, 2)
DEFAULT_OUT = Path(__file__).resolve().parent / "defaults" / "probe_C_by_budget.json"
TIE = 1e-9


def choose(scores: dict[float, float]) -> float:
    """The rule: the C of the best mean validation accuracy; ties (within ``TIE``) to the larger C."""
    best = max(scores.values())
    return max(c for c, s in scores.items() if s >= best - TIE)


def by_budget(encoders: list[str], tasks: list[str], out: Path) -> dict[str, Any]:
    import numpy as np
    import torch

    from bench.cli.tune import carve
    from bench.errors import UserError
    from bench.plugins import load_plugins
    from bench.probe import FeatureScale, fit_logistic_info
    from bench.run.budgets import parse_budget, parse_budgets, pool_digest, sample
    from bench.run.compatibility import resolution_for
    from bench.run.features import FeatureCache
    from bench.run.plan import DEFAULT_BUDGETS, DEFAULT_SEEDS
    from bench.specs import EncoderRequest, TaskRequest
    from bench_plugins.strategies.linear_probe import C_GRID

    torch.set_num_threads(1)
    plugins = load_plugins()
    cache = FeatureCache()
    # cells[k][C] -> list of validation accuracies over (task, encoder, seed)
    cells: dict[int, dict[float, list[float]]] = {k: {c: [] for c in C_GRID} for k in BY_BUDGET}
    detail: dict[str, Any] = {}
    carve_out: dict[str, Any] = {}
    start = time.perf_counter()
    for task_name in tasks:
        task = plugins.tasks.get(task_name).load(TaskRequest(name=task_name))
        carved, about = carve(task, parse_budgets(DEFAULT_BUDGETS), DEFAULT_SEEDS, min(1000, len(task.train) // 4))
        y_tune, y_val = np.asarray(carved.train.labels), np.asarray(carved.test.labels)
        digest = pool_digest(y_tune, carved.train.ids)
        manifests: dict[tuple[int, int], np.ndarray] = {}
        for k in BY_BUDGET:
            try:
                for seed in BY_BUDGET_SEEDS:
                    manifests[k, seed] = sample(y_tune, task.classes, f"{task_name} (carve-out)",
                                                parse_budget(str(k)), seed, pool=digest)
            except UserError:  # the tuning pool has a class with fewer than k items
                continue
        needed = np.unique(np.concatenate(list(manifests.values())))
        about["budgets_per_class"] = sorted({k for k, _ in manifests})
        carve_out[task_name] = about
        for name in encoders:
            spec = plugins.encoders.get(name)
            size = resolution_for("auto", spec.variant_metadata(None), task, name)
            enc = spec.load(EncoderRequest(name=name, resolution=size, native_size=task.native_size))
            enc.module.eval()
            feats = cache.get(enc, carved.train.subset(needed.tolist()))
            x_tune = np.zeros((len(y_tune), feats.shape[1]), dtype=feats.dtype)
            x_tune[needed] = feats
            x_val = cache.get(enc, carved.test)
            row: dict[str, dict[str, float]] = {}
            for k in BY_BUDGET:
                if (k, 0) not in manifests:
                    continue
                per_c: dict[str, float] = {}
                for C in C_GRID:
                    acc = []
                    for seed in BY_BUDGET_SEEDS:
                        pos = manifests[k, seed]
                        scale = FeatureScale.fit(x_tune[pos])
                        clf, _ = fit_logistic_info(scale(x_tune[pos]), y_tune[pos], C, 2000, seed)
                        acc.append(float((clf.predict(scale(x_val)) == y_val).mean()))
                    cells[k][C].extend(acc)
                    per_c[str(C)] = round(float(np.mean(acc)), 6)
                row[str(k)] = per_c
                print(f"{task_name} {name} {k}/class: " + ", ".join(f"{c}: {a:.3f}" for c, a in per_c.items()),
                      flush=True)
            detail[f"{task_name} | {name}"] = {"resolution": size, "validation_accuracy_by_budget_and_C": row}
    table: dict[str, float] = {}
    means: dict[str, dict[str, float]] = {}
    for k in BY_BUDGET:
        if not cells[k][C_GRID[0]]:
            continue
        mean = {c: float(np.mean(v)) for c, v in cells[k].items()}
        means[str(k)] = {str(c): round(m, 6) for c, m in mean.items()}
        table[str(k)] = choose(mean)
        print(f"{k}/class ({len(cells[k][C_GRID[0]])} cells): " + ", ".join(f"{c}: {m:.4f}" for c, m in mean.items())
              + f" -> C = {table[str(k)]}")
    report = {
        "command": "OMP_NUM_THREADS=1 python benchmarks/probe_C.py " + " ".join(sys.argv[1:]),
        "rule": "per budget (labels per class), the C with the best mean validation accuracy over encoders x tasks "
                "x seeds; ties (within 1e-9) to the larger C",
        "C_grid": list(C_GRID), "encoders": encoders, "tasks": tasks, "seeds": list(BY_BUDGET_SEEDS),
        "carve_out": carve_out, "mean_validation_accuracy": means, "cells_per_budget":
            {str(k): len(cells[k][C_GRID[0]]) for k in BY_BUDGET if cells[k][C_GRID[0]]},
        "by_task_and_encoder": detail, "table": table, "seconds": round(time.perf_counter() - start, 1),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"table (labels per class -> C): {table}; written to {out}")
    return report


def single(encoders: list[str]) -> None:
    """The earlier single-C mode (mnist5k, 10/class)."""
    import numpy as np
    import torch

    from bench.encoders import encode
    from bench.plugins import load_plugins
    from bench.probe import FeatureScale, fit_logistic, l2_normalise
    from bench.run.budgets import parse_budget, pool_digest, sample
    from bench.specs import EncoderRequest, TaskRequest
    from bench.tasks import stratified_split
    from bench_plugins.strategies.linear_probe import C_GRID

    torch.set_num_threads(1)
    plugins = load_plugins()
    task = plugins.tasks.get("mnist5k").load(TaskRequest(name="mnist5k"))
    y_pool = np.asarray(task.train.labels)
    fit_pos, val_pos = stratified_split(y_pool, 0.2, seed=0)
    digest = pool_digest(y_pool[fit_pos], [task.train.ids[i] for i in fit_pos])
    budgets = {s: fit_pos[sample(y_pool[fit_pos], task.classes, "carve", parse_budget("10"), s, pool=digest)]
               for s in range(3)}
    by_encoder = []
    for name in encoders:
        size = 28 if name == "pixels" else 64
        enc = plugins.encoders.get(name).load(EncoderRequest(name=name, resolution=size, native_size=28))
        x_pool = encode(enc, task.train.images, len(task.train))
        scores = []
        for C in C_GRID:
            acc = []
            for pos in budgets.values():
                scale = FeatureScale.fit(x_pool[pos])
                clf = fit_logistic(scale(x_pool[pos]), y_pool[pos], C, 2000, 0)
                acc.append((clf.predict(scale(x_pool[val_pos])) == y_pool[val_pos]).mean())
            scores.append(float(np.mean(acc)))
        best = C_GRID[int(np.argmax(scores))]
        by_encoder.append(scores)
        print(f"{name}: validation accuracy by C " + ", ".join(f"{c}: {a:.3f}" for c, a in zip(C_GRID, scores))
              + f" -> C = {best}")
        x_test = encode(enc, task.test.images, len(task.test))
        y_test = np.asarray(task.test.labels)
        full = pool_digest(y_pool, task.train.ids)
        old, new = [], []
        for s in range(3):  # reported after the choice, never used for it
            pos = sample(y_pool, task.classes, "mnist5k", parse_budget("10"), s, pool=full)
            clf = fit_logistic(l2_normalise(x_pool[pos]), y_pool[pos], 10.0, 2000, 0)
            old.append((clf.predict(l2_normalise(x_test)) == y_test).mean())
            scale = FeatureScale.fit(x_pool[pos])
            clf = fit_logistic(scale(x_pool[pos]), y_pool[pos], best, 2000, 0)
            new.append((clf.predict(scale(x_test)) == y_test).mean())
        print(f"{name}: mnist5k test, 10/class, seeds 0-2: unit-norm C=10 {np.mean(old):.3f} {np.round(old, 3)}; "
              f"global scale C={best} {np.mean(new):.3f} {np.round(new, 3)}")
    mean = np.mean(by_encoder, axis=0)
    print("default C (mean validation accuracy over the encoders): "
          + ", ".join(f"{c}: {a:.4f}" for c, a in zip(C_GRID, mean)) + f" -> C = {C_GRID[int(np.argmax(mean))]}")


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--by-budget", action="store_true", help="choose C per labels-per-class budget")
    p.add_argument("--encoders", default=",".join(BY_BUDGET_ENCODERS))
    p.add_argument("--tasks", default=",".join(BY_BUDGET_TASKS))
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("encoder", nargs="*", help="single-C mode: encoders (default: pixels efficientnet-lite0)")
    args = p.parse_args(argv)
    if args.by_budget:
        by_budget(args.encoders.split(","), args.tasks.split(","), args.out)
    else:
        single(args.encoder or ["pixels", "efficientnet-lite0"])


if __name__ == "__main__":
    main(sys.argv[1:])

"""Ranks, statistical ties and label efficiency, computed from an aggregated board (:mod:`bench.report.aggregate`).

- Per task and budget, rows are ranked by the mean of the task's primary metric (target accuracy
  on shifted tasks, test accuracy otherwise); equal means share the average rank.
- A row is *tied with the best* when a paired t-test of its per-seed scores against the best
  row's, paired on (seed, label manifest), does not reject equality at 5% after Holm's correction
  over the comparisons of that task and budget. With 3 seeds the test has 2 degrees of freedom and
  little power: "tied" means "not shown to differ", not "equal". Fewer than 2 shared seeds: untested.
- Rank intervals and the top group (rows whose interval includes rank 1): a paired bootstrap over
  seeds, and over tasks overall (:mod:`bench.report.intervals`).
- Overall: only rows covering the same (task, budget) cells are compared (the others are listed as
  left out); a row's task rank is the mean of its ranks over the task's budgets among them; rows are
  ordered by the mean of their task ranks (as MTEB and VTAB summarise).
- Area under the learning curve (AULC): mean accuracy over the log labels-per-class axis
  (trapezoids on log x, divided by the log range), for rows measured at every budget of the task.
- "Worth N labels": the labels per class a reference row (``scratch``, or ``linear-probe``, of the
  same encoder) needs to reach a row's accuracy, interpolated linearly in log labels per class
  along the reference curve's first crossing; ``more than X`` when it never gets there, ``at most
  X`` when it is already there at the smallest budget.
"""

from __future__ import annotations

import math
from typing import Any

from bench.errors import UserError
from bench.report.aggregate import budget_order
from bench.report.intervals import budget_intervals, comparable, in_top, overall_intervals
from bench.run.budgets import parse_budget

ALPHA = 0.05
TEST_NAME = "paired t-test on (seed, manifest) pairs against the best row, Holm-corrected per task and budget"
REFERENCES = ("scratch", "linear-probe")


def primary_metric(task: dict[str, Any]) -> str:
    return "target_accuracy" if task.get("shifted") else "accuracy"


def row_id(row: dict[str, Any]) -> str:
    return f"{row['encoder']} / {row['strategy']}"


def paired_p(a: dict[str, dict[str, float]], b: dict[str, dict[str, float]], metric: str) -> float | None:
    """Two-sided paired t-test p-value on the pairs ``a`` and ``b`` share; None below 2 pairs."""
    keys = sorted(k for k in a if k in b and metric in a[k] and metric in b[k])
    if len(keys) < 2:
        return None
    d = [a[k][metric] - b[k][metric] for k in keys]
    n = len(d)
    mean = sum(d) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1))
    if sd == 0:
        return 1.0 if mean == 0 else 0.0
    from scipy.stats import t

    return float(2 * t.sf(abs(mean / (sd / math.sqrt(n))), n - 1))


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (same order as given)."""
    order = sorted(range(len(pvalues)), key=lambda i: pvalues[i])
    out = [0.0] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(pvalues) - rank) * pvalues[i]))
        out[i] = running
    return out


def _ranks(means: list[float]) -> list[float]:
    """Rank 1 = highest mean; equal means share the average of their ranks."""
    order = sorted(range(len(means)), key=lambda i: -means[i])
    ranks = [0.0] * len(means)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and means[order[j + 1]] == means[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def rank_budget(task: dict[str, Any], budget: str) -> list[dict[str, Any]]:
    """Rows with a score at ``budget``, best first: row id, mean, rank, tie with the best."""
    metric = primary_metric(task)
    rows = [r for r in task["rows"] if metric in r["budgets"].get(budget, {})]
    if not rows:
        return []
    means = [r["budgets"][budget][metric]["mean"] for r in rows]
    ranks = _ranks(means)
    order = sorted(range(len(rows)), key=lambda i: (ranks[i], row_id(rows[i])))
    best = rows[order[0]]["budgets"][budget].get("by_seed", {})
    raw = {i: paired_p(rows[i]["budgets"][budget].get("by_seed", {}), best, metric) for i in order[1:]}
    tested = [i for i in order[1:] if raw[i] is not None]
    adjusted = dict(zip(tested, holm([raw[i] for i in tested])))  # type: ignore[misc]
    ids = [row_id(r) for r in rows]
    iv = budget_intervals(task, budget, ids, metric, dict(zip(ids, rows)))
    out = []
    for i in order:
        tie: bool | None = True if i == order[0] else (adjusted[i] >= ALPHA if i in adjusted else None)
        interval = iv[ids[i]]
        out.append({"row": ids[i], "mean": means[i], "rank": ranks[i], "tied_best": tie,
                    "p_holm": adjusted.get(i), "rank_interval": interval,
                    "top": in_top(interval) if interval else ranks[i] < 2})
    return out


def labels_per_class(task: dict[str, Any], budget: str, cell: dict[str, Any]) -> float | None:
    """The x of a budget on the learning curve: labels per class (``K/class``: K; others: the
    labelled items over the classes implied by the task's per-class cells)."""
    b = parse_budget(budget.replace("/class", ""))
    if b.kind == "per_class":
        return float(b.n or 0)
    classes = [c["n_labelled"] / parse_budget(bb.replace("/class", "")).n
               for row in task["rows"] for bb, c in row["budgets"].items()
               if c.get("n_labelled") and parse_budget(bb.replace("/class", "")).kind == "per_class"]
    if not classes or not cell.get("n_labelled"):
        return None
    return float(cell["n_labelled"]) / (sum(classes) / len(classes))


def curve(task: dict[str, Any], row: dict[str, Any], metric: str) -> list[tuple[float, float]]:
    """(labels per class, mean score) points of a row, by increasing labels."""
    pts = []
    for b in sorted(row["budgets"], key=budget_order):
        c = row["budgets"][b]
        x = labels_per_class(task, b, c) if metric in c else None
        if x:
            pts.append((x, c[metric]["mean"]))
    return sorted(pts)


def aulc(points: list[tuple[float, float]]) -> float | None:
    """Mean score over the log-x range (trapezoids in log x); None below 2 points."""
    if len(points) < 2 or points[-1][0] <= points[0][0]:
        return None
    lx = [math.log(x) for x, _ in points]
    area = sum((lx[i + 1] - lx[i]) * (points[i][1] + points[i + 1][1]) / 2 for i in range(len(points) - 1))
    return area / (lx[-1] - lx[0])


def labels_to_reach(points: list[tuple[float, float]], score: float) -> dict[str, Any]:
    """Labels per class the reference ``points`` need to reach ``score`` (log-x interpolation)."""
    if not points:
        return {"kind": "none", "labels": None}
    if points[0][1] >= score:
        return {"kind": "at_most", "labels": points[0][0]}
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        if y0 < score <= y1:
            lx = math.log(x0) + (score - y0) / (y1 - y0) * (math.log(x1) - math.log(x0))
            return {"kind": "equal", "labels": math.exp(lx)}
    return {"kind": "more_than", "labels": points[-1][0]}


def worth_text(w: dict[str, Any]) -> str:
    if w["labels"] is None:
        return "no reference"
    n = f"{w['labels']:.0f}" if w["labels"] >= 10 else f"{w['labels']:.1f}"
    return {"at_most": f"≤ {n}", "more_than": f"more than measured (> {n})"}.get(w["kind"], n)


def _seed_curves(task: dict[str, Any], row: dict[str, Any], metric: str) -> dict[str, list[tuple[float, float]]]:
    """Per seed: the row's (labels per class, score) points at every budget of the task."""
    out: dict[str, list[tuple[float, float]]] = {}
    for b in task["budgets"]:
        c = row["budgets"].get(b, {})
        x = labels_per_class(task, b, c) if metric in c else None
        for key, scores in (c.get("by_seed") or {}).items():
            if x and metric in scores:
                out.setdefault(key.split(":", 1)[0], []).append((x, scores[metric]))
    return {s: sorted(p) for s, p in out.items() if len(p) == len(task["budgets"])}


def paired_aulc(task: dict[str, Any], a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any] | None:
    """Row ``a``'s AULC minus row ``b``'s, paired by seed (each seed's curve over every budget):
    mean, 95% t half-width, the paired t-test's p and the seeds; None below 2 shared seeds. The
    difference is *shown to exist* only when the interval excludes zero (:func:`differs`)."""
    from bench.report.aggregate import mean_ci

    metric = primary_metric(task)
    ca, cb = _seed_curves(task, a, metric), _seed_curves(task, b, metric)
    seeds = sorted(set(ca) & set(cb))
    if len(seeds) < 2:
        return None
    diffs = {s: {"aulc": (aulc(ca[s]) or 0.0) - (aulc(cb[s]) or 0.0)} for s in seeds}
    mean, ci = mean_ci([d["aulc"] for d in diffs.values()])
    p = paired_p(diffs, {s: {"aulc": 0.0} for s in seeds}, "aulc")
    return {"mean": mean, "ci95": ci, "p": p, "seeds": len(seeds)}


def differs(d: dict[str, Any] | None) -> bool:
    """True when a paired difference's 95% interval excludes zero (the only case a board says "beats")."""
    return d is not None and d["ci95"] is not None and abs(d["mean"]) > d["ci95"]


def efficiency(task: dict[str, Any]) -> list[dict[str, Any]]:
    """Per row: AULC and, per budget, the labels per class each reference needs to match it."""
    metric = primary_metric(task)
    refs = {}
    for row in task["rows"]:
        if row["strategy"] in REFERENCES:  # the default configuration only (others carry "[...]")
            refs[(row["encoder"], row["strategy"])] = curve(task, row, metric)
    out = []
    for row in task["rows"]:
        pts = curve(task, row, metric)
        full = len(pts) == len(task["budgets"])
        worth: dict[str, dict[str, Any]] = {}
        for b in task["budgets"]:
            c = row["budgets"].get(b, {})
            if metric not in c:
                continue
            x = labels_per_class(task, b, c)
            worth[b] = {"labels": x}
            for ref in REFERENCES:
                if row["strategy"] == ref:
                    continue
                worth[b][ref] = labels_to_reach(refs.get((row["encoder"], ref), []), c[metric]["mean"])
        out.append({"row": row_id(row), "aulc": aulc(pts) if full else None, "worth": worth})
    return out


def _cell_order(cell: str) -> tuple[str, Any]:
    task, budget = cell.rsplit(" ", 1)
    return task, budget_order(budget)


def _by_id(task: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row_id(r): r for r in task["rows"]}


def overall(board: dict[str, Any]) -> dict[str, Any]:
    """The rows that cover the same (task, budget) cells (:func:`bench.report.intervals.comparable`),
    by mean task rank over those cells (a task rank: the row's mean rank over the task's budgets,
    among the compared rows), with bootstrap rank intervals; ``left_out``: the other rows."""
    coverage: dict[str, set[tuple[str, str]]] = {}
    for name, task in board["tasks"].items():
        metric = primary_metric(task)
        for r in task["rows"]:
            for b, c in r["budgets"].items():
                if metric in c:
                    coverage.setdefault(row_id(r), set()).add((name, b))
    frozen = {k: frozenset(v) for k, v in coverage.items()}
    cells = comparable(frozen)
    ids = sorted(r for r, c in frozen.items() if cells <= c)
    task_ranks: dict[str, dict[str, float]] = {r: {} for r in ids}
    for name in sorted({t for t, _ in cells}):
        task = board["tasks"][name]
        sub = {**task, "rows": [r for r in task["rows"] if row_id(r) in task_ranks]}
        budgets = [b for b in task["budgets"] if (name, b) in cells]
        per_row: dict[str, list[float]] = {}
        for b in budgets:
            for entry in rank_budget(sub, b):
                per_row.setdefault(entry["row"], []).append(entry["rank"])
        for rid, rs in per_row.items():
            task_ranks[rid][name] = sum(rs) / len(rs)
    iv = overall_intervals(board, ids, cells, primary_metric, _by_id)
    rows: list[dict[str, Any]] = [{"row": rid, "mean_rank": sum(t.values()) / len(t), "tasks": len(t), "task_ranks": t,
             "rank_interval": iv.get(rid)} for rid, t in task_ranks.items() if t]
    rows.sort(key=lambda r: (r["mean_rank"], r["row"]))
    for r in rows:
        r["top"] = in_top(r["rank_interval"]) if r["rank_interval"] else r is rows[0]
    left = [{"row": rid, "cells": len(c), "missing": sorted((f"{t} {b}" for t, b in cells - c), key=_cell_order)}
            for rid, c in sorted(frozen.items()) if not cells <= c]
    every = [(t, b) for t in sorted(board["tasks"]) for b in board["tasks"][t]["budgets"]]
    return {"rows": rows, "cells": [f"{t} {b}" for t, b in every if (t, b) in cells], "left_out": left,
            "tasks": sorted({t for t, _ in cells}),
            "not_compared": [f"{t} {b}" for t, b in every if (t, b) not in cells]}


def summarise(board: dict[str, Any]) -> dict[str, Any]:
    """Everything above for a board: per task ranks per budget and efficiency, and the overall order."""
    tasks = {}
    for name, task in board["tasks"].items():
        try:
            tasks[name] = {"metric": primary_metric(task), "ranks": {b: rank_budget(task, b) for b in task["budgets"]},
                           "efficiency": efficiency(task)}
        except UserError:  # a budget label this version cannot read: rank it, skip the curve
            tasks[name] = {"metric": primary_metric(task), "ranks": {b: rank_budget(task, b) for b in task["budgets"]},
                           "efficiency": []}
    return {"test": TEST_NAME, "alpha": ALPHA, "tasks": tasks, "overall": overall(board)}

"""The few-shot episodes section of the leaderboard: query accuracy per N-way K-shot setting.

From ``episodes.jsonl`` (``bench run --episodes``, :mod:`bench.episodes.driver`): one row per
(task, encoder, strategy, N-way K-shot Q-query): mean query accuracy and its 95% interval
``1.96 * std / sqrt(E)`` over all episodes; the seeds of a row are pooled (their episodes
together: the pooled mean, the pooled ``ddof=0`` std, ``E`` the total).
"""

from __future__ import annotations

import math
from typing import Any

from bench.episodes.spec import Z95
from bench.report.aggregate import strategy_label
from bench.report.flags import text as flag_text
from bench.report.runs import Runs


def pooled(parts: list[dict[str, Any]]) -> dict[str, float]:
    """Mean, ``ddof=0`` std, 95% half-width and count of the episodes of several records together."""
    n = sum(int(p["n"]) for p in parts)
    mean = sum(p["mean"] * p["n"] for p in parts) / n
    second = sum((p["std"] ** 2 + p["mean"] ** 2) * p["n"] for p in parts) / n
    std = math.sqrt(max(second - mean**2, 0.0))
    return {"mean": mean, "std": std, "ci95": Z95 * std / math.sqrt(n), "n": n}


def episode_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (task, encoder, strategy, spec) over its ``ok`` records, seeds pooled."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in records:
        e = r.get("episodes") or {}
        if r.get("status") != "ok" or "mean" not in e:
            continue
        key = (r["task"], r["encoder"], strategy_label(r), e["n_way"], e["k_shot"], e["q_query"])
        groups.setdefault(key, []).append(r)
    rows = []
    for (task, enc, strat, n, k, q), rs in sorted(groups.items()):
        stats = pooled([r["episodes"] for r in rs])
        rows.append({"task": task, "encoder": enc, "strategy": strat, "n_way": n, "k_shot": k, "q_query": q,
                     **stats, "seeds": sorted({r["seed"] for r in rs}),
                     "flags": sorted({f for r in rs for f in r.get("flags") or []}),
                     "wall_s": sum(float(r.get("wall_s") or 0) for r in rs), **meta_cost(rs)})
    return rows


def meta_cost(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Meta-training's cost over a row's records (steps and seconds summed over seeds; none without
    meta-training) and whether every record evaluated on novel classes only (``novel_only``)."""
    costs = [r["episodes"]["meta_train"] for r in records if r["episodes"].get("meta_train")]
    out: dict[str, Any] = {"novel_only": all("novel_classes" in r["episodes"] for r in records)}
    if costs:
        out.update(meta_steps=sum(int(c.get("steps") or 0) for c in costs),
                   meta_wall_s=sum(float(c.get("wall_s") or 0) for c in costs))
    return out


def collect(runs: Runs) -> dict[str, Any]:
    """``{"episodes": rows}`` for the board, or nothing when the runs have no episodes."""
    rows = episode_rows(list(runs.episodes))
    return {"episodes": rows} if rows else {}


def tables(board: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, headers, rows) of the few-shot table of ``board`` (none without episodes)."""
    rows = board.get("episodes") or []
    if not rows:
        return []
    return [("Few-shot episodes: query accuracy % (mean ± 95% CI over E episodes, 1.96·std/√E; "
             "N classes, novel ones where the record names a base/novel split, K support and Q query items per class "
             "drawn from the test split)",
             ["encoder", "task", "strategy", "N-way K-shot", "accuracy %", "E"],
             [[f"{r['encoder']} {flag_text(r.get('flags') or [])}".strip(), r["task"], r["strategy"],
               f"{r['n_way']}-way {r['k_shot']}-shot",
               f"{100 * r['mean']:.2f} ± {100 * r['ci95']:.2f}", str(r["n"])] for r in rows])]

"""The meta-learning section of the leaderboard: novel-class episode accuracy per K-shot and meta-training's cost.

From the rows of :mod:`bench.report.episodes` (the same records, seeds pooled) whose episodes were
drawn from novel classes only (:mod:`bench.episodes.classes`): one row per (task, encoder,
strategy, N-way, Q-query), one column per K-shot (mean ± 95% CI over the same seeded episodes for
every strategy), and meta-training's steps and seconds (``-`` for a strategy without meta-training,
such as the frozen ``prototype`` reference).
"""

from __future__ import annotations

from typing import Any

from bench.report.episodes import episode_rows
from bench.report.runs import Runs


def meta_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Episode rows on novel classes, pivoted: ``shots[k]`` the row of each K-shot setting."""
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in rows:
        if not r.get("novel_only"):
            continue
        key = (r["task"], r["encoder"], r["strategy"], r["n_way"], r["q_query"])
        row = out.setdefault(key, {"task": r["task"], "encoder": r["encoder"], "strategy": r["strategy"],
                                   "n_way": r["n_way"], "q_query": r["q_query"], "shots": {}})
        row["shots"][r["k_shot"]] = {k: r[k] for k in ("mean", "ci95", "n", "meta_steps", "meta_wall_s") if k in r}
    return [out[k] for k in sorted(out)]


def collect(runs: Runs) -> dict[str, Any]:
    """``{"meta": rows}`` for the board, or nothing without episodes on novel classes."""
    rows = meta_rows(episode_rows(list(runs.episodes)))
    return {"meta": rows} if rows else {}


def _cost(shots: dict[int, dict[str, Any]]) -> str:
    parts = [f"{c['meta_steps']} / {c['meta_wall_s']:.0f} s" for _, c in sorted(shots.items()) if "meta_steps" in c]
    return ", ".join(parts) if parts else "-"


def tables(board: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, headers, rows) of the meta-learning table (none without rows)."""
    rows = board.get("meta") or []
    if not rows:
        return []
    shots = sorted({k for r in rows for k in r["shots"]})
    body = [[r["encoder"], r["task"], r["strategy"], f"{r['n_way']}-way",
             *(f"{100 * r['shots'][k]['mean']:.2f} ± {100 * r['shots'][k]['ci95']:.2f}" if k in r["shots"] else "-"
               for k in shots), str(max(c["n"] for c in r["shots"].values())), _cost(r["shots"])] for r in rows]
    return [("Meta-learning: novel-class query accuracy % (mean ± 95% CI over the same seeded episodes; "
             "meta-training on base classes of the train split only)",
             ["encoder", "task", "strategy", "N-way", *(f"{k}-shot" for k in shots), "E",
              "meta-training steps / time (per K-shot)"], body)]

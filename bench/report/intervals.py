"""Rank intervals: a paired bootstrap over seeds (and over tasks for the overall ranking) of every row's rank.

- Per task and budget: the seeds the rows share (their ``(seed, manifest)`` pairs) are resampled
  with replacement :data:`RESAMPLES` times (generator seeded with :data:`SEED`, so a board always
  gets the same intervals); each resample ranks the rows by their mean over the drawn seeds (the
  same draw for every row: paired), and a row's interval is the 2.5th to 97.5th percentile of its
  ranks. The *top group* is every row whose interval includes first place (a rank below 2: first
  alone, or tied for first).
- Overall: only rows that cover the same (task, budget) cells are compared: of the cell sets the
  rows cover, the one that maximises rows x cells (ties: more cells); rows covering more are
  ranked on that set only, rows covering less are left out and listed. Each resample draws tasks
  with replacement and, within each, seeds (the same draw at every budget of the task); a row's
  score is the mean over drawn tasks of its mean rank over the task's budgets, and rows are
  ranked by it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

RESAMPLES = 1000
SEED = 0
LEVEL = 0.95


def _seeds(cells: list[dict[str, Any]]) -> list[str]:
    """The seeds (the part of a by_seed key before ':') every cell has."""
    sets = [{k.split(":", 1)[0] for k in c.get("by_seed", {})} for c in cells]
    return sorted(set.intersection(*sets), key=str) if sets else []


def _values(cells: list[dict[str, Any]], seeds: list[str], metric: str) -> np.ndarray:
    """rows x seeds: each cell's score at each seed."""
    out = np.empty((len(cells), len(seeds)))
    for i, c in enumerate(cells):
        by = {k.split(":", 1)[0]: v for k, v in c["by_seed"].items()}
        out[i] = [by[s].get(metric, np.nan) for s in seeds]
    return out


def _ranks(scores: np.ndarray, higher_better: bool = True) -> np.ndarray:
    """Ranks along the last axis (1 = best), ties sharing the average rank."""
    from scipy.stats import rankdata

    return rankdata(-scores if higher_better else scores, axis=-1)


def _bounds(ranks: np.ndarray) -> list[tuple[float, float]]:
    lo, hi = np.percentile(ranks, [100 * (1 - LEVEL) / 2, 100 * (1 + LEVEL) / 2], axis=0)
    return [(float(a), float(b)) for a, b in zip(lo, hi)]


def budget_intervals(task: dict[str, Any], budget: str, row_ids: list[str], metric: str,
                     rows: dict[str, dict[str, Any]]) -> dict[str, tuple[float, float] | None]:
    """``{row id: (low, high)}`` rank interval at one budget; None for all when fewer than 2 shared seeds."""
    cells = [rows[r]["budgets"][budget] for r in row_ids]
    seeds = _seeds(cells)
    if len(seeds) < 2 or len(row_ids) < 2:
        return {r: None for r in row_ids}
    values = _values(cells, seeds, metric)
    draw = np.random.default_rng(SEED).integers(0, len(seeds), (RESAMPLES, len(seeds)))
    means = values[:, draw].mean(axis=-1).T  # resamples x rows
    return dict(zip(row_ids, _bounds(_ranks(means))))


def comparable(coverage: dict[str, frozenset[tuple[str, str]]]) -> frozenset[tuple[str, str]]:
    """The cell set to compare rows on: of those the rows cover, the one maximising rows x cells."""
    def score(cells: frozenset[tuple[str, str]]) -> tuple[int, int]:
        return sum(cells <= c for c in coverage.values()) * len(cells), len(cells)

    candidates = sorted(set(coverage.values()), key=lambda c: sorted(c))
    return max(candidates, key=score) if candidates else frozenset()


def overall_intervals(board: dict[str, Any], row_ids: list[str], cells: frozenset[tuple[str, str]],
                      metric_of: Any, rows_of: Any) -> dict[str, tuple[float, float] | None]:
    """``{row id: (low, high)}`` of the overall rank over ``cells`` (bootstrap over tasks and seeds)."""
    tasks = sorted({t for t, _ in cells})
    per_task = []
    for t in tasks:
        task = board["tasks"][t]
        rows = rows_of(task)
        budgets = sorted(b for tt, b in cells if tt == t)
        seeds = _seeds([rows[r]["budgets"][b] for r in row_ids for b in budgets])
        if len(seeds) < 2:
            return {r: None for r in row_ids}
        per_task.append(np.stack([_values([rows[r]["budgets"][b] for r in row_ids], seeds, metric_of(task))
                                  for b in budgets]))  # budgets x rows x seeds
    if len(row_ids) < 2 or not per_task:
        return {r: None for r in row_ids}
    rng = np.random.default_rng(SEED)
    total = np.zeros((RESAMPLES, len(row_ids)))
    drawn_tasks = rng.integers(0, len(tasks), (RESAMPLES, len(tasks)))
    for ti, v in enumerate(per_task):
        draw = rng.integers(0, v.shape[-1], (RESAMPLES, v.shape[-1]))
        means = v[:, :, draw].mean(axis=-1)  # budgets x rows x resamples
        task_rank = _ranks(np.moveaxis(means, 1, -1)).mean(axis=0)  # resamples x rows
        total += (drawn_tasks == ti).sum(axis=1)[:, None] * task_rank
    return dict(zip(row_ids, _bounds(_ranks(total / len(tasks), higher_better=False))))


def in_top(iv: tuple[float, float]) -> bool:
    """In the top group: the interval reaches first place (a rank below 2: first alone, or tied for first)."""
    return iv[0] < 2


def interval_text(iv: tuple[float, float] | None) -> str:
    """``1-3`` (a rank interval), ``2`` when it is one rank, "" without one."""
    if iv is None:
        return ""
    lo, hi = (f"{v:.1f}".rstrip("0").rstrip(".") for v in iv)
    return lo if lo == hi else f"{lo}–{hi}"

"""The validator study: how well each label-free validator ranks and selects DA candidates, against target labels.

Input: ``bench tune ... --study`` reports (``validator-study/*.json`` in a run folder), which keep,
beside every validator's score per candidate and cell, the candidate's TARGET TEST accuracy per
cell (``study_target_accuracy``; the tune choice never reads it). For each shifted task and
strategy (one candidate grid), each validator of :data:`bench.domain.validators.NAMES` gets:

- its **weighted Spearman** correlation with target accuracy over the candidates (Musgrave et al.
  2022, as in their powerful-benchmarker code): each candidate weighs ``max(r_v, r_a) ** POWER``,
  ``r_v`` and ``r_a`` its dense ranks by validator score and by target accuracy divided by their
  largest, so candidates at the top of either ranking count most; the correlation is the weighted
  Pearson correlation of the weighted ranks (``WeightedCorr``'s Spearman: a tie group's rank is the
  weight before it plus ``(count + 1) / 2`` times its mean weight);
- its **regret**: the ORACLE target accuracy (the best candidate's, read from target labels: an
  upper bound no default uses) minus the target accuracy of the candidate the validator selects,
  with ``bench tune``'s rules (mean over cells, collapsed candidates vetoed, ties to the first).

A candidate's score and accuracy on a task are their means over the task's cells (budgets x seeds).
:func:`chosen_criterion` applies the rule fixed in docs/defaults.md before the study ran: the
lowest mean regret over every (task, strategy) of the study, ties (within 1e-9) to ``iwv``, then
to the order of :data:`NAMES`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from bench.domain.validators import NAMES
from bench.report.runs import Runs

#: the weight exponent (fixed in advance; powerful-benchmarker takes it as an argument)
POWER = 2.0
#: where a run folder keeps its study reports
STUDY_DIR = "validator-study"
STUDY_NOTE = ("also scores each candidate on the TARGET TEST split of shifted tasks (study_target_accuracy, "
              "read by bench.report.validator_study only; the choice never reads it)")
ORACLE = "oracle (target test labels: an upper bound, never a default)"


def _dense_rank(x: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    r = rankdata(x, method="dense").astype(np.float64)
    return r / r.max()


def _weighted_ranks(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Average ranks under weights: a tie group ranks at the weight before it plus ``(count + 1) / 2``
    times its mean weight (unit weights: the ordinary average ranks)."""
    _, group, counts = np.unique(x, return_inverse=True, return_counts=True)
    mass = np.bincount(group, weights=w)
    return ((np.cumsum(mass) - mass) + (counts + 1) / 2 * (mass / counts))[group]


def _weighted_pearson(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> float | None:
    mx, my = np.sum(w * x) / np.sum(w), np.sum(w * y) / np.sum(w)
    sxy, sxx, syy = (np.sum(w * (a - ma) * (b - mb)) for a, ma, b, mb in ((x, mx, y, my), (x, mx, x, mx),
                                                                            (y, my, y, my)))
    return None if sxx <= 1e-15 or syy <= 1e-15 else float(sxy / np.sqrt(sxx * syy))


def weighted_spearman(scores: Any, accuracies: Any, power: float = POWER) -> float | None:
    """Weighted Spearman correlation of validator scores with target accuracies (module doc);
    None for fewer than two candidates or when either side is constant."""
    v, a = np.asarray(scores, dtype=np.float64), np.asarray(accuracies, dtype=np.float64)
    if v.shape != a.shape or v.ndim != 1:
        raise ValueError(f"scores {v.shape} and accuracies {a.shape} must be the same 1-d shape")
    if len(v) < 2:
        return None
    w = np.maximum(_dense_rank(v), _dense_rank(a)) ** power
    return _weighted_pearson(_weighted_ranks(v, w), _weighted_ranks(a, w), w)


def selected(scores: list[float | None], vetoed: list[bool]) -> int | None:
    """The candidate a validator selects: the best score among those not vetoed (ties: the first)."""
    kept = [(s, i) for i, (s, bad) in enumerate(zip(scores, vetoed, strict=True)) if s is not None and not bad]
    return None if not kept else max(kept, key=lambda t: (t[0], -t[1]))[1]


def regret(scores: list[float | None], accuracies: list[float], vetoed: list[bool] | None = None) -> float | None:
    """Oracle target accuracy minus the selected candidate's (None when nothing can be selected)."""
    pick = selected(scores, vetoed or [False] * len(scores))
    return None if pick is None else float(max(accuracies) - accuracies[pick])


def _mean(values: list[Any]) -> float | None:
    return None if not values or any(v is None for v in values) else float(np.mean(values))


def grid_entry(report: dict[str, Any], task: str) -> dict[str, Any] | None:
    """One (task, strategy) of a study report: every validator's weighted Spearman, regret and pick."""
    rows = [r for r in report["candidates"] if task in (r.get("study_target_accuracy") or {})]
    accs = [_mean(r["study_target_accuracy"][task]) for r in rows]
    if len(rows) < 2 or any(a is None for a in accs):
        return None
    acc = [float(a) for a in accs if a is not None]
    vetoed = [any(g and g["collapsed"] for g in (r.get("collapse_guard") or {}).get(task, [])) for r in rows]
    out: dict[str, Any] = {"task": task, "strategy": report["strategy"], "encoder": report["encoder"],
                           "candidates": [r["values"] for r in rows], "target_accuracy": acc,
                           "oracle": {"values": rows[int(np.argmax(acc))]["values"], "target_accuracy": max(acc)},
                           "vetoed": vetoed, "validators": {}}
    for name in NAMES:
        scores = [_mean([(c or {}).get(name) for c in r.get("validators", {}).get(task, [])]) for r in rows]
        pick = selected(scores, vetoed)
        rho = None if any(s is None for s in scores) else weighted_spearman(scores, acc)
        out["validators"][name] = {"weighted_spearman": rho, "regret": None if pick is None else max(acc) - acc[pick],
                                   "selected": None if pick is None else rows[pick]["values"]}
    return out


def summary(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per validator: mean weighted Spearman, and mean regret over the grids where some candidate
    survives the collapse veto (a grid whose candidates all collapsed lets no validator select)."""
    open_grids = [e for e in entries if not all(e["vetoed"])]
    out = {}
    for name in NAMES:
        regrets = [e["validators"][name]["regret"] for e in open_grids]
        rhos = [e["validators"][name]["weighted_spearman"] for e in entries]
        known = [r for r in rhos if r is not None]
        out[name] = {"mean_regret": float(np.mean(regrets)) if open_grids and None not in regrets else None,
                     "mean_weighted_spearman": float(np.mean(known)) if known else None,
                     "grids": len(open_grids), "all_vetoed": len(entries) - len(open_grids)}
    return out


def chosen_criterion(means: dict[str, dict[str, Any]]) -> str | None:
    """The rule of docs/defaults.md: lowest mean regret, ties to ``iwv``, then the order of NAMES."""
    known = {n: m["mean_regret"] for n, m in means.items() if m["mean_regret"] is not None}
    if not known:
        return None
    best = min(known.values())
    tied = [n for n in NAMES if n in known and known[n] <= best + 1e-9]
    return "iwv" if "iwv" in tied else tied[0]


def study(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Every (task, strategy) grid of the reports, the per-validator summary and the rule's choice."""
    entries = [e for rep in reports for task in rep.get("tasks", []) if (e := grid_entry(rep, task)) is not None]
    means = summary(entries)
    return {"grids": entries, "summary": means, "chosen": chosen_criterion(means) if entries else None,
            "rule": "lowest mean regret over the study's grids with a candidate left after the veto, ties to iwv",
            "oracle": ORACLE}


def load_reports(runs: Runs) -> list[dict[str, Any]]:
    """The study reports (``validator-study/*.json`` with ``study: true``) of every run folder."""
    out = []
    for d in runs.dirs:
        folder = Path(d).parent if Path(d).suffix == ".jsonl" else Path(d)
        for path in sorted((folder / STUDY_DIR).glob("*.json")):
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict) and data.get("study") and isinstance(data.get("candidates"), list):
                out.append(data)
    return out


def collect(runs: Runs) -> dict[str, Any]:
    """The board's ``validator_study`` part (empty when no folder holds a study)."""
    reports = load_reports(runs)
    return {"validator_study": study(reports)} if reports else {}


def _num(x: float | None, signed: bool = False, scale: float = 1.0) -> str:
    return "" if x is None else (f"{scale * x:+.2f}" if signed else f"{scale * x:.1f}")


def _config(values: dict[str, Any] | None) -> str:
    """A candidate's options as ``key=value, ...`` (``nothing (all vetoed)`` when none was selected)."""
    return "nothing (all vetoed)" if values is None else ", ".join(f"{k}={v}" for k, v in values.items())


def _grid_label(e: dict[str, Any]) -> list[str]:
    vetoed = sum(bool(v) for v in e["vetoed"])
    return [e["task"], f"{e['strategy']} ({e['encoder']})",
            f"{len(e['candidates'])}" + (f" ({vetoed} vetoed)" if vetoed else "")]


def tables(board: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """Three tables whatever the number of grids: the summary with the rule's choice; per grid, each
    validator's weighted Spearman and regret; per grid, the configuration the chosen criterion and
    ``iwv`` select (with their regrets) beside the oracle's."""
    found = board.get("validator_study")
    if not found or not found["grids"]:
        return []
    grids = sorted(found["grids"], key=lambda e: (e["task"], e["strategy"], e["encoder"]))
    chosen = found["chosen"]
    rows = [[name, _num(m["mean_weighted_spearman"], signed=True) or "-", _num(m["mean_regret"], scale=100) or "-",
             f"{m['grids']} (+{m['all_vetoed']} all vetoed)", "chosen" if name == chosen else ""]
            for name, m in found["summary"].items()]
    out = [(f"Validator study: summary over {len(grids)} grid(s); the default criterion is chosen by the rule fixed "
            f"in docs/defaults.md ({found['rule']}); the oracle is an upper bound no default uses",
            ["validator", "mean weighted Spearman", "mean regret (points)", "grids with a regret", "rule"], rows)]
    names = list(grids[0]["validators"])
    def both(v: dict[str, Any]) -> str:
        return f"{_num(v['weighted_spearman'], signed=True) or '-'} / {_num(v['regret'], scale=100) or '-'}"

    rows = [[*_grid_label(e), f"{100 * e['oracle']['target_accuracy']:.1f}",
             *(both(e["validators"][n]) for n in names)] for e in grids]
    out.append(("Validator study per grid: each validator's weighted Spearman with target test accuracy / its regret "
                "(oracle target test accuracy minus the selected candidate's, points; '-': a constant score has no "
                "correlation, and nothing is selected where every candidate collapsed; collapsed candidates are "
                "never selected)",
                ["task", "strategy", "candidates", "oracle acc %", *names], rows))
    pair = [chosen] if chosen in (None, "iwv") else [chosen, "iwv"]
    pair = [n for n in pair if n is not None]
    rows = []
    for e in grids:
        picks = [c for n in pair for c in (_config(e["validators"][n]["selected"]),
                                            _num(e["validators"][n]["regret"], scale=100) or "-")]
        rows.append([*_grid_label(e)[:2], *picks, _config(e["oracle"]["values"]),
                     f"{100 * e['oracle']['target_accuracy']:.1f}"])
    heads = [h for n in pair
             for h in (f"selected by {n}" + (" (chosen)" if n == chosen else ""), f"{n} regret (points)")]
    out.append((f"Validator study: per grid, the configuration the chosen criterion ({chosen}) and iwv select, and "
                "the oracle's (read from target test labels: an upper bound no default uses)",
                ["task", "strategy", *heads, "oracle (target labels: upper bound)", "oracle acc %"], rows))
    return out

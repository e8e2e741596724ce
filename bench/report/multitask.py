"""The leaderboard's "Multi-task" section: per-task gain over single-task fine-tuning by weighting, and its plot.

:func:`collect` aggregates the ``record_type: "multitask"`` records (bench.multitask.driver) into
``board["multitask"]``: one row per (task set, encoder, weighting, config, budget) with, per task,
the accuracy and the paired gain over single-task ``finetune`` (same encoder, manifest and seed;
negative = negative transfer), and ``Delta_m`` (Maninis et al. 2019, relative), each as mean ±
95% CI over seeds; the learned task weights are averaged over seeds. :func:`tables` renders them;
:func:`gain_plot` draws the per-task gains by weighting (bars with CI whiskers).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from bench.multitask.spec import is_multitask_record as is_multitask
from bench.multitask.spec import short_name as _name
from bench.report.aggregate import mean_ci
from bench.report.budget import fmt
from bench.report.runs import Runs


def _stat(values: list[float]) -> dict[str, Any]:
    mean, ci = mean_ci(values) if values else (None, None)
    return {"mean": mean, "ci95": ci, "n": len(values)}


def aggregate_multitask(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (task set, encoder, weighting, config, budget), best ``Delta_m`` first within each."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    failed: dict[tuple[Any, ...], int] = defaultdict(int)
    for r in records:
        if not is_multitask(r):
            continue
        key = (r["task"], r["encoder"], _name(r["strategy"]), r.get("config_id"), r["budget"])
        if r.get("status") == "ok":
            groups[key].append(r)
        elif r.get("status") == "failed":
            failed[key] += 1
    rows = []
    for key in set(groups) | set(failed):
        recs = sorted(groups.get(key, []), key=lambda r: r["seed"])
        names = (recs[0].get("multitask") or {}).get("tasks", []) if recs else []
        row: dict[str, Any] = dict(zip(("tasks_set", "encoder", "strategy", "config_id", "budget"), key))
        row.update(n=len(recs), failed=failed.get(key, 0), tasks=names)
        row["per_task"] = {
            t: {m: _stat([float(v) for r in recs if (v := r["metrics"]["tasks"][t].get(m)) is not None])
                for m in ("accuracy", "gain")} for t in names}
        for m in ("delta_m", "mean_gain"):
            row[m] = _stat([float(r["metrics"][m]) for r in recs if r["metrics"].get(m) is not None])
        weights = [r["multitask"]["task_weights"]["final"] for r in recs if r.get("multitask", {}).get("task_weights")]
        row["weights"] = np.mean(weights, axis=0).round(4).tolist() if weights else []
        rows.append(row)
    rows.sort(key=lambda r: (r["tasks_set"], r["encoder"], r["budget"],
                             -(r["delta_m"]["mean"] if r["delta_m"]["mean"] is not None else -9), r["strategy"]))
    return rows


def collect(runs: Runs) -> dict[str, Any]:
    """``{"multitask": rows}`` for the board, or nothing when the runs have no multi-task records."""
    rows = aggregate_multitask(list(runs.records))
    return {"multitask": rows} if rows else {}


def _cell(stat: dict[str, Any], signed: bool = False) -> str:
    return "-" if stat["mean"] is None else fmt(stat["mean"], stat["ci95"], signed=signed)


def tables(board: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """The "Multi-task" tables, one per (task set, encoder, budget)."""
    out: list[tuple[str, list[str], list[list[str]]]] = []
    keyed: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in board.get("multitask", []):
        keyed[(row["tasks_set"], row["encoder"], row["budget"])].append(row)
    for (tasks_set, encoder, budget), rows in keyed.items():
        names: list[str] = next((r["tasks"] for r in rows if r["tasks"]), [])
        title = (f"Multi-task: {tasks_set}, {encoder}, {budget}: accuracy % and gain over single-task finetune "
                 "(points, paired: same manifest and seed; negative = negative transfer), Delta_m % "
                 "(Maninis et al. 2019); mean ± 95% CI over seeds")
        headers = ["weighting", *[h for t in names for h in (f"{t} acc", f"{t} gain")], "Delta_m", "weights", "seeds"]
        body = []
        for r in rows:
            cells = [c for t in names for c in (_cell(r["per_task"].get(t, {}).get("accuracy", _stat([]))),
                                                _cell(r["per_task"].get(t, {}).get("gain", _stat([])), True))]
            body.append([r["strategy"] + ("" if r["config_id"] in (None, "default") else f" [{r['config_id']}]"),
                         *cells, _cell(r["delta_m"], True), " ".join(f"{w:.2f}" for w in r["weights"]),
                         f"{r['n']}" + (f" (+{r['failed']} failed)" if r["failed"] else "")])
        out.append((title, headers, body))
    return out


def gain_plot(board: dict[str, Any], path: Path) -> Path | None:
    """Per-task gain over single-task finetune by weighting (one panel per task set, encoder and
    budget; bars = mean, whiskers = 95% CI), or None without matplotlib or multi-task rows."""
    keyed: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in board.get("multitask", []):
        if row["n"]:
            keyed[(row["tasks_set"], row["encoder"], row["budget"])].append(row)
    if not keyed:
        return None
    from bench.report.mpl import pyplot

    plt = pyplot()
    if plt is None:
        return None
    fig, axes = plt.subplots(1, len(keyed), figsize=(4.5 * len(keyed), 3.2), squeeze=False)
    for ax, ((_set, encoder, budget), rows) in zip(axes[0], keyed.items()):
        names = rows[0]["tasks"]
        width = 0.8 / max(1, len(rows))
        for k, r in enumerate(sorted(rows, key=lambda r: r["strategy"])):
            stats = [r["per_task"][t]["gain"] for t in names]
            ax.bar(np.arange(len(names)) + k * width - 0.4 + width / 2, [100 * (s["mean"] or 0.0) for s in stats],
                   width, yerr=[100 * (s["ci95"] or 0.0) for s in stats], capsize=2, label=r["strategy"])
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, fontsize=7)
        ax.set_ylabel("gain over single-task finetune (points)", fontsize=7)
        ax.set_title(f"{encoder}, {budget}", fontsize=8)
        ax.legend(fontsize=6)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path

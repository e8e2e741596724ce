"""What each page of the leaderboard site shows: plain values for the Jinja2 templates (which escape them).

Nothing here writes HTML: every string from a plugin or a results file reaches the page through
an autoescaping template, so a description like ``<img src=x onerror=...>`` is shown as text.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from bench.report.aggregate import budget_order, config_key
from bench.report.flags import text as flag_text
from bench.report.intervals import RESAMPLES, interval_text
from bench.report.ranking import primary_metric, row_id, worth_text

NOT_RECORDED = "not recorded"


def task_page(name: str) -> str:
    """A file name for a task's page: readable, safe on every file system, unique by a digest."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "task"
    return f"task-{slug}-{hashlib.sha256(name.encode()).hexdigest()[:6]}.html"


def anchor(row: dict[str, Any]) -> str:
    return "row-" + hashlib.sha256(row_id(row).encode()).hexdigest()[:10]


def _pct(v: float | None, signed: bool = False) -> str:
    if v is None:
        return ""
    return f"{100 * v:+.1f}" if signed else f"{100 * v:.1f}"


def _tied(t: bool | None) -> str:
    return {True: "≈ best", False: "", None: "untested"}[t]


def scores(board: dict[str, Any], summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One line per (task, row, budget, metric): the index's sortable table, in ranked order."""
    out = []
    for name, task in board["tasks"].items():
        ranks = summary["tasks"][name]["ranks"]
        metrics = [primary_metric(task)] + (["accuracy"] if task["shifted"] else [])
        for metric in metrics:
            for b in task["budgets"]:
                ranked = {e["row"]: e for e in ranks[b]} if metric == primary_metric(task) else {}
                rows = [r for r in task["rows"] if metric in r["budgets"].get(b, {})]
                rows.sort(key=lambda r: -r["budgets"][b][metric]["mean"])
                for row in rows:
                    c = row["budgets"][b]
                    e = ranked.get(row_id(row), {})
                    hs = c.get("head_start", {}).get("mean")
                    n, expected = c[metric]["n"], c.get("n_expected", 0)
                    out.append({
                        "task": name, "encoder": row["encoder"], "strategy": row["strategy"], "budget": b,
                        "x": budget_order(b)[0] * 1e6 + budget_order(b)[1], "metric": metric,
                        "rank": e.get("rank", ""), "rank_text": f"{e['rank']:g}" if e else "",
                        "mean": c[metric]["mean"], "mean_text": _pct(c[metric]["mean"]),
                        "ci": c[metric]["ci95"] or "", "ci_text": _pct(c[metric]["ci95"]),
                        "seeds": f"{n}/{expected}" + (" †" if c.get("failed") else ""),
                        "tied": e.get("tied_best") is True, "tied_text": _tied(e.get("tied_best")) if e else "",
                        "head_start": "" if hs is None else hs, "head_text": _pct(hs, signed=True),
                        "flags": flag_text(row.get("flags") or []),
                        "interval": interval_text(e.get("rank_interval")), "top": bool(e.get("top")),
                        **config_cell(row),
                        "link": f"{task_page(name)}#{anchor(row)}"})
    return out


DEFAULT_MARKS = {True: "default", False: "changed from the default", None: "default unknown"}


def config_cell(row: dict[str, Any]) -> dict[str, Any]:
    """The row's configuration as a page shows it: whether it is the strategy's registered default
    (``default_mark``) and every option (``options``, behind a details/summary click)."""
    default = row.get("default")
    return {"default": default, "default_mark": DEFAULT_MARKS[default],
            "options": sorted((str(k), str(v)) for k, v in (row.get("options") or {}).items())}


def overall(summary: dict[str, Any]) -> dict[str, Any]:
    """The overall ranking as the index shows it: rows with rank intervals, the top group, what was left out."""
    o = summary["overall"]
    rows = [{**r, "interval": interval_text(r["rank_interval"])} for r in o["rows"]]
    return {**o, "rows": rows, "top": [r["row"] for r in rows if r["top"]], "resamples": RESAMPLES}


def filters(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for col in ("task", "encoder", "strategy", "budget", "metric"):
        values = sorted({s[col] for s in lines}, key=budget_order if col == "budget" else str)
        out.append({"name": col, "values": values})
    return out


def efficiency_tables(board: dict[str, Any], summary: dict[str, Any], only: str | None = None) -> list[dict[str, Any]]:
    out = []
    for name, task in board["tasks"].items():
        if only is not None and name != only:
            continue
        rows = []
        for e in summary["tasks"][name]["efficiency"]:
            worth = [(worth_text(e["worth"][b]["scratch"]) if "scratch" in e["worth"].get(b, {}) else "",
                      worth_text(e["worth"][b]["linear-probe"]) if "linear-probe" in e["worth"].get(b, {}) else "")
                     for b in task["budgets"]]
            rows.append({"row": e["row"], "aulc": _pct(e["aulc"]), "aulc_v": "" if e["aulc"] is None else e["aulc"],
                         "worth": worth})
        out.append({"task": name, "budgets": task["budgets"], "rows": rows})
    return out


def ranks(task: dict[str, Any], summary_task: dict[str, Any]) -> list[dict[str, Any]]:
    by_id = {row_id(r): r for r in task["rows"]}
    out = []
    for b in task["budgets"]:
        rows = [{**e, "anchor": anchor(by_id[e["row"]]), "tied_text": _tied(e["tied_best"]),
                 "flags": flag_text(by_id[e["row"]].get("flags") or []),
                 "interval": interval_text(e.get("rank_interval")), **config_cell(by_id[e["row"]]),
                 "p_text": "" if e["p_holm"] is None else f"{e['p_holm']:.3f}"} for e in summary_task["ranks"][b]]
        out.append({"budget": b, "rows": rows})
    return out


def _provenance(recs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    def values(get: Any) -> str:
        vs = sorted({str(v) for r in recs if (v := get(r)) not in (None, "", {})})
        return ", ".join(vs) or NOT_RECORDED

    versions = sorted({f"{k} {v}" for r in recs for k, v in (r.get("versions") or {}).items()
                       if k not in ("git_commit", "commit")})
    stamps = sorted(str(r["timestamp"]) for r in recs if r.get("timestamp"))
    return [
        ("encoder description", values(lambda r: (r.get("encoder_info") or {}).get("description"))),
        ("weights", values(lambda r: (r.get("encoder_info") or {}).get("weights"))),
        ("declared pre-training data", values(lambda r: ", ".join((r.get("encoder_info") or {}).get(
            "pretraining_data") or []))),
        ("trainable parameters", values(lambda r: f"{r.get('trainable_params', 0):,}")),
        ("total parameters", values(lambda r: f"{r.get('total_params', 0):,}")),
        ("wall s per cell (mean)", f"{sum(r.get('wall_s', 0.0) for r in recs) / max(1, len(recs)):.1f}"),
        ("peak memory MB (max)", f"{max((r.get('peak_mem_mb', 0.0) for r in recs), default=0.0):.0f}"),
        ("flags", values(lambda r: ", ".join(r.get("flags") or []))),
        ("device", values(lambda r: f"{r.get('device')} {r.get('device_info') or ''}".strip())),
        ("versions", ", ".join(versions) or NOT_RECORDED),
        ("commit", values(lambda r: (r.get("versions") or {}).get("git_commit") or r.get("commit")
                          or (r.get("info") or {}).get("commit"))),
        ("command", values(lambda r: r.get("command") or (r.get("info") or {}).get("command"))),
        ("date", f"{stamps[0]} to {stamps[-1]}" if stamps else NOT_RECORDED),
        ("run folder", values(lambda r: (r.get("provenance") or {}).get("source"))),
    ]


def details(task_name: str, task: dict[str, Any], records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per row: provenance facts, per budget seeds / All vs Clean / failures, and its configuration."""
    out = []
    for row in task["rows"]:
        recs = [r for r in records if r.get("task") == task_name and r.get("encoder") == row["encoder"]
                and config_key(r) == row["config_key"] and r.get("status") in ("ok", "failed")]
        cells = []
        for b in sorted(row["budgets"], key=budget_order):
            c = row["budgets"][b]
            seeds = sorted(str(r["seed"]) for r in recs if r["budget"] == b)
            acc = "target_accuracy" if task["shifted"] else "accuracy"
            cells.append({"budget": b, "seeds": ", ".join(seeds) or "-",
                          "all": _pct(c[acc]["mean"]) if acc in c else "",
                          "clean": _pct(c[acc + "_clean"]["mean"]) if acc + "_clean" in c else "",
                          "failed": "; ".join(f"seed {f['seed']}: {f['reason']} ({f['error']})" for f in c["failed"])})
        summary = next((r.get("config_summary") for r in recs if isinstance(r.get("config_summary"), dict)), None)
        config = sorted((str(k), str(v)) for k, v in (summary or recs[0].get("config") or {}).items()) if recs else []
        out.append({"anchor": anchor(row), "row": row_id(row), "facts": _provenance(recs), "cells": cells,
                    "config": config})
    return out

"""Leaderboard tables and rendering (aggregation: :mod:`bench.report.aggregate`).

Each cell shows the mean test accuracy over seeds with its 95% confidence interval (Student t,
``mean ± t(0.975, n-1) * sd / sqrt(n)``; one seed gives no interval), followed by ``(n/N)`` when
it averages fewer seeds than were asked, and ``†`` when seeds failed (the failures table lists
each with its reason). The head-start table gives the *paired* difference against ``scratch``
(same encoder, budget, seed, manifest and recipe). Shifted tasks get target-domain tables, and
the transfer gap (source test minus target test). The cost table reports forgetting as points
lost on the reference task (positive = worse), and a training-length table shows steps and
epochs, marking cells where ``max_steps`` cut the recipe short.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bench.errors import UserError
from bench.report import aggregate as _board
from bench.report import domain as board_da
from bench.report import episodes as board_episodes
from bench.report.aggregate import budget_order, config_key, mean_ci, strategy_label
from bench.report.stream import stream_tables, with_streams
from bench.run.records import ResultsFile, latest

__all__ = ["FORMATS", "aggregate", "fmt", "load_records", "mean_ci", "plot_curves", "render",
           "strategy_label", "tables"]

FORMATS = ("github", "html", "csv", "latex", "json")
_budget_order = budget_order  # the old private name

def load_records(dirs: Iterable[str | Path]) -> list[dict[str, Any]]:
    """Every run folder's records; per configuration, the last record of each cell wins (a retried
    failure), and records of different configurations are all kept (the board keeps them apart)."""
    records: list[dict[str, Any]] = []
    dirs = list(dirs)
    for d in dirs:
        p = Path(d)
        path = p if p.suffix == ".jsonl" else p / "results.jsonl"
        if not path.exists() and board_episodes.has_sections(p):
            continue  # a folder of few-shot episodes or a rank result only
        if not path.exists():
            raise UserError(f"no results found at {str(path)!r}; pass a folder written by `bench run --out DIR`")
        source = (p.parent if p.suffix == ".jsonl" else p).resolve().name
        records.extend({**r, "provenance": r.get("provenance") or {"source": source}}
                       for r in ResultsFile(path).load())
    by_config: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_config.setdefault(config_key(r), []).append(r)
    return board_episodes.RunRecords([r for group in by_config.values() for r in latest(group)], dirs)


_with_streams = with_streams(_board.aggregate)  # stream records (bench --stream) go to board["streams"]


def aggregate(records: list[dict[str, Any]]) -> dict[str, Any]:
    """:func:`bench.report.aggregate.aggregate` with stream records apart (``board["streams"]``), plus the
    few-shot and estimator sections of the records' run folders."""
    return board_episodes.attach(_with_streams(records), records)


def fmt(mean: float, ci: float | None, scale: float = 100.0, signed: bool = False) -> str:
    s = f"{mean * scale:+.1f}" if signed else f"{mean * scale:.1f}"
    return s if ci is None else f"{s} ± {ci * scale:.1f}"


def cell_text(cell: dict[str, Any], metric: str, signed: bool = False) -> str:
    """``71.2 ± 9.0 (2/3) †``: the mean, its interval, the seeds it averages when fewer than asked,
    and a mark when seeds failed; ``failed (0/3) †`` when none finished."""
    c = cell.get(metric)
    mark = " †" if cell.get("failed") else ""
    expected = cell.get("n_expected", 0)
    if c is None:
        return f"failed (0/{expected}){mark}" if mark and not cell.get("n") and metric != "head_start" else ""
    count = f" ({c['n']}/{expected})" if c["n"] < expected else ""
    return fmt(c["mean"], c["ci95"], signed=signed) + count + mark


def _metric_table(task: dict[str, Any], metric: str, signed: bool = False) -> tuple[list[str], list[list[str]]]:
    headers = ["encoder", "strategy", *task["budgets"]]
    rows = []
    for row in task["rows"]:
        vals = [cell_text(row["budgets"][b], metric, signed) if b in row["budgets"] else "" for b in task["budgets"]]
        if any(vals):
            flag = " (!)" if row.get("flags") else ""  # suspect: see the flags table
            rows.append([row["encoder"] + flag, row["strategy"], *vals])
    return headers, rows


def _flags_table(task: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    rows = []
    for row in task["rows"]:
        if row.get("flags"):
            rates = [c["overlap_rate"]["mean"] for c in row["budgets"].values() if "overlap_rate" in c]
            rate = f"{100 * max(rates):.1f}" if rates else ""
            rows.append([row["encoder"], row["strategy"], ", ".join(row["flags"]), rate])
    return ["encoder", "strategy", "flags", "test overlap %"], rows


def _cost_table(task: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    refs = sorted({t for row in task["rows"] for c in row["budgets"].values() for t in c.get("reference_tasks", [])})
    headers = ["encoder", "strategy", "trainable", "share %", "wall s/cell", "peak MB"]
    if refs:
        headers.append(f"points lost on {'/'.join(refs)}")
    rows = []
    for row in task["rows"]:
        cells = [c for c in row["budgets"].values() if c.get("n")]
        if not cells:
            continue
        line = [
            row["encoder"], row["strategy"], f"{max(c['trainable_params'] for c in cells):,}",
            f"{100 * sum(c['trainable_share'] for c in cells) / len(cells):.2f}",
            f"{sum(c['wall_s'] for c in cells) / len(cells):.1f}",
            f"{max(c['peak_mem_mb'] for c in cells):.0f}",
        ]
        if refs:
            f = [c["reference_drop"]["mean"] for c in cells if "reference_drop" in c]
            line.append(f"{100 * sum(f) / len(f):+.1f}" if f else "")
        rows.append(line)
    return headers, rows


def _length_table(task: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    rows = []
    for row in task["rows"]:
        vals = []
        for b in task["budgets"]:
            c = row["budgets"].get(b, {})
            vals.append(f"{c['steps']:.0f} / {c['epochs']:.1f}{'*' if c['capped'] else ''}" if "steps" in c else "")
        if any(vals):
            rows.append([row["encoder"], row["strategy"], *vals])
    return ["encoder", "strategy", *task["budgets"]], rows


def _failures_table(board: dict[str, Any], task: str) -> tuple[list[str], list[list[str]]]:
    rows = [[f["encoder"], f["strategy"], f["budget"], str(f["seed"]), f["reason"], f["error"]]
            for f in board["failed"] if f["task"] == task]
    return ["encoder", "strategy", "budget", "seed", "reason", "error"], rows


def _has_overlap(task: dict[str, Any], prefix: str) -> bool:
    return any(c.get(f"{prefix}overlap_rate", {}).get("mean", 0) > 0 for row in task["rows"]
               for c in row["budgets"].values())


def tables(board: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, headers, rows) for every table of the leaderboard, in display order."""
    out = []
    for name, task in board["tasks"].items():
        out.append((f"{name}: test accuracy % (mean ± 95% CI over seeds; (n/N) = seeds averaged of those asked; "
                    "† = seeds failed, see failures)", *_metric_table(task, "accuracy")))
        if _has_overlap(task, ""):
            out.append((f"{name}: accuracy % on Clean test items (duplicates of train removed)",
                        *_metric_table(task, "accuracy_clean")))
        if task["shifted"]:
            out.append((f"{name}: target-domain test accuracy %", *_metric_table(task, "target_accuracy")))
            if _has_overlap(task, "target_"):
                out.append((f"{name}: target-domain accuracy % on Clean target test items (duplicates removed)",
                            *_metric_table(task, "target_accuracy_clean")))
            out.append((f"{name}: transfer gap, source minus target (points)",
                        *_metric_table(task, "transfer_gap", signed=True)))
            out += board_da.task_tables(name, task)
        headers, rows = _metric_table(task, "head_start", signed=True)
        if rows:
            out.append((f"{name}: head-start over scratch (paired: same encoder/budget/seed/manifest/recipe; points)",
                        headers, rows))
        out.append((f"{name}: cost (mean over budgets and seeds; share = trainable/total params)", *_cost_table(task)))
        headers, rows = _length_table(task)
        if rows:
            out.append((f"{name}: training steps / epochs (epochs = steps x batch / labelled items; * = max_steps "
                        "cut the recipe short)", headers, rows))
        headers, rows = _failures_table(board, name)
        if rows:
            out.append((f"{name}: † failed seeds", headers, rows))
        headers, rows = _flags_table(task)
        if rows:
            out.append((f"{name}: (!) suspect scores: test items duplicated in train/pre-training data, or the "
                        "encoder declares pre-training on this task's source", headers, rows))
    return out + stream_tables(board) + board_episodes.tables(board)


def render(board: dict[str, Any], fmt_name: str = "github") -> str:
    if fmt_name not in FORMATS:
        raise UserError(f"unknown format {fmt_name!r}; use one of {', '.join(FORMATS)}")
    if fmt_name == "json":
        return json.dumps(board, indent=2, sort_keys=True)
    from tabulate import tabulate

    parts = []
    for title, headers, rows in tables(board):
        if fmt_name == "csv":
            buf = io.StringIO()
            w = csv.writer(buf)
            w.writerow(["table", *headers])
            for r in rows:
                w.writerow([title, *r])
            parts.append(buf.getvalue().rstrip("\n"))
        elif fmt_name == "html":
            table = tabulate(rows, headers, tablefmt="html", disable_numparse=True)
            parts.append(f"<h3>{_html_escape(title)}</h3>\n" + table)
        elif fmt_name == "latex":
            parts.append(f"% {title}\n" + tabulate(rows, headers, tablefmt="latex", disable_numparse=True))
        else:
            parts.append(f"### {title}\n\n" + tabulate(rows, headers, tablefmt="github", disable_numparse=True))
    lines = [f"- warning: {w}" for w in board.get("warnings", [])]
    lines += [f"- skipped {s['encoder']} x {s['strategy']} on {s['task']}: {s['reason']}" for s in board["skipped"]]
    if fmt_name in ("github", "html") and lines:
        body = "\n".join(lines)
        parts.append(f"<pre>{_html_escape(body)}</pre>" if fmt_name == "html" else body)
    if not parts:
        return "no finished cells yet"
    return "\n\n".join(parts) + "\n"


def _html_escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def plot_curves(board: dict[str, Any], path: Path) -> Path | None:
    """Accuracy vs labels per class (log axis, CI bands), one panel per task (None without matplotlib)."""
    from bench.report.plots import learning_curves

    return learning_curves(board, path)

"""The leaderboard: the board of a set of runs and its tables in every format (github, html, csv, latex, json).

The board and the tables come from the sections of :data:`bench.report.sections.SECTIONS`, in
that order: each adds its part to the board (:func:`aggregate`) and renders its tables
(:func:`tables`); :func:`render` writes them in one format.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bench.errors import UserError
from bench.report import sections
from bench.report.runs import Runs

__all__ = ["FORMATS", "aggregate", "plot_curves", "render", "tables"]

FORMATS = ("github", "html", "csv", "latex", "json")


def aggregate(runs: Runs | Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The board of ``runs`` (or of records alone): every section's part of it, stream records in
    ``board["streams"]``, few-shot and estimator sections only where the runs have them."""
    if not isinstance(runs, Runs):
        runs = Runs.of(runs)
    board: dict[str, Any] = {}
    for section in sections.SECTIONS:
        board.update(section.collect(runs))
    return board


def tables(board: dict[str, Any], per_task: bool | None = None) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, headers, rows) for every table of the leaderboard, section by section in display order
    (only the per-task sections' or only the others' with ``per_task`` True or False)."""
    return [t for s in sections.SECTIONS if per_task in (None, s.per_task) for t in s.tables(board)]


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

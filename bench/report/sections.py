"""The leaderboard's sections, in display order: the one list the text board, every format and the site read.

A section is a module with two functions: ``collect(runs)`` gives its part of the board (the
JSON that ``--format json`` prints and ``results.json`` holds), ``tables(board)`` its tables
(``(title, headers, rows)``). Adding a section is one module and one entry in :data:`SECTIONS`.
A ``per_task`` section's tables belong to the tasks: the site shows them on each task's page
(on a board of that task alone), the others on the index page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.report import budget, episodes, estimators, meta, multitask, stream, validator_study
from bench.report.runs import Runs

Board = dict[str, Any]
Table = tuple[str, list[str], list[list[str]]]


@dataclass(frozen=True)
class Section:
    """One part of the leaderboard: what it adds to the board, and its tables."""

    name: str
    collect: Callable[[Runs], Board]
    tables: Callable[[Board], list[Table]]
    per_task: bool = False


SECTIONS: list[Section] = [
    # the domain-adaptation tables sit inside each shifted task's budget tables (bench.report.domain)
    Section("budget tables", budget.collect, budget.tables, per_task=True),
    Section("continual learning", stream.collect, stream.stream_tables),
    Section("few-shot episodes", episodes.collect, episodes.tables),
    Section("meta-learning", meta.collect, meta.tables),
    Section("multi-task", multitask.collect, multitask.tables),
    Section("estimator correlations", estimators.collect, estimators.tables),
    Section("validator study", validator_study.collect, validator_study.tables),
]

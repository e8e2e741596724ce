"""The leaderboard's warning flags: each flag's one-line meaning, the provenance flags, and every flag a board carries.

A record's ``flags`` (list of strings) is the one place warnings live; rows of every section carry
the union of their records' flags. :data:`MEANINGS` is the legend every table and page uses; a
flag not listed there (a plugin's, a newer version's) is shown by name with :data:`UNKNOWN`.
Contamination flags carry a suffix (``declared-overlap:mnist``) and are looked up by their prefix.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: flag -> its one-line meaning (the legend). Thresholds are fixed in advance, never chosen on test data.
MEANINGS = {
    "collapsed": "effective number of predicted classes on the unlabelled target pool, exp(H(mean prediction)), "
                 "is at most K/2",
    "chance-level": "balanced accuracy (target accuracy on shifted tasks) at most 1/K + 0.05",
    "baseline-at-chance": "the method's own paired source-only baseline is at most 1/K + 0.05",
    "weak-source-model": "the DA method's own source model is more than 10 points below the standard source-only "
                         "finetune cell on the source test (same encoder, manifest, seed)",
    "capped": "the loop's own step rule asked for more steps than max_steps allowed",
    "dirty": "the record comes from a source tree with uncommitted changes (its commit ends in -dirty)",
    "no-commit": "the record carries no source commit: the code that produced it cannot be named",
    "declared-overlap": "the encoder declares pre-training on this task's source data",
    "overlap>1%": "more than 1% of the test items are duplicated in the training or pre-training data",
}
UNKNOWN = "a flag this version has no description for (shown by name)"
#: The provenance flags :func:`provenance_flags` raises, in the order a refusal names them.
PROVENANCE = ("dirty", "no-commit")


def meaning(flag: str) -> str:
    """The flag's one-line meaning (by its prefix before ``:`` for suffixed flags)."""
    return MEANINGS.get(flag) or MEANINGS.get(flag.split(":", 1)[0]) or UNKNOWN


def commit_of(rec: dict[str, Any]) -> str | None:
    """The source commit a record names (``versions.git_commit``; older records: ``commit`` fields)."""
    value = (rec.get("versions") or {}).get("git_commit") or rec.get("commit") or (rec.get("info") or {}).get("commit")
    return str(value) if value else None


def provenance_flags(rec: dict[str, Any]) -> list[str]:
    """``["dirty"]`` for a commit ending in ``-dirty``, ``["no-commit"]`` for none, else ``[]``."""
    commit = commit_of(rec)
    if commit is None:
        return ["no-commit"]
    return ["dirty"] if commit.endswith("-dirty") else []


def with_flags(rec: dict[str, Any], extra: Iterable[str]) -> dict[str, Any]:
    """A copy of ``rec`` whose ``flags`` also hold ``extra`` (sorted, each once)."""
    return {**rec, "flags": sorted(set(rec.get("flags") or []) | set(extra))}


def text(flags: Iterable[str]) -> str:
    """Flags as a table cell shows them: ``[collapsed, dirty]``, or "" for none."""
    fs = sorted(set(flags))
    return f"[{', '.join(fs)}]" if fs else ""


def board_flags(board: dict[str, Any]) -> list[dict[str, Any]]:
    """Every flagged row of every section of ``board``: ``{"section", "where", "row", "flags"}``.

    Walks the budget rows (``tasks``), the stream rows, the episode rows and any other list of
    rows a section adds with a ``flags`` field, so a flag raised anywhere reaches the index.
    """
    out = []
    for name, task in (board.get("tasks") or {}).items():
        for row in task.get("rows", []):
            if row.get("flags"):
                out.append({"section": "budget tables", "where": name, "row": f"{row['encoder']} / {row['strategy']}",
                            "flags": list(row["flags"])})
    for key, rows in board.items():
        if key == "tasks" or not isinstance(rows, list):
            continue
        for row in rows:
            if isinstance(row, dict) and row.get("flags"):
                where = row.get("task") or row.get("stream") or ""
                label = f"{row.get('encoder', '')} / {row.get('strategy', '')}"
                out.append({"section": key, "where": str(where), "row": label, "flags": list(row["flags"])})
    return out


def legend(flags: Iterable[str]) -> list[tuple[str, str]]:
    """``(flag, meaning)`` for each distinct flag given, sorted: the legend under a table or page."""
    return [(f, meaning(f)) for f in sorted(set(flags))]

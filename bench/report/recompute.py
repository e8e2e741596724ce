"""``bench validate SITE``: do a published site's numbers recompute from the files it publishes?

A site (``bench publish``) holds ``results.json`` (the board and the ranking it shows) beside the
inputs: ``results.jsonl``, ``episodes.jsonl`` and ``estimators.jsonl``. This module rebuilds the
board and the ranking from those inputs alone, and the estimator correlations from the published
estimator scores and records, and lists every number that differs (beyond :data:`TOLERANCE`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

TOLERANCE = 1e-9
#: how many disagreements are listed before "and N more"
SHOWN = 20


def is_site(path: Path) -> bool:
    """True when ``path`` is a folder ``bench publish`` wrote (its ``results.json`` holds a board)."""
    file = path / "results.json"
    if not file.is_file():
        return False
    try:
        return "board" in json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False


def _diff(a: Any, b: Any, where: str, out: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            if k not in a or k not in b:
                out.append(f"{where}.{k}: {'only published' if k in a else 'only recomputed'}")
            else:
                _diff(a[k], b[k], f"{where}.{k}", out)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{where}: {len(a)} published entries, {len(b)} recomputed")
        for i, (x, y) in enumerate(zip(a, b)):
            _diff(x, y, f"{where}[{i}]", out)
    elif isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        if not math.isclose(float(a), float(b), rel_tol=TOLERANCE, abs_tol=TOLERANCE):
            out.append(f"{where}: published {a}, recomputed {b}")
    elif a != b:
        out.append(f"{where}: published {a!r}, recomputed {b!r}")


def _correlations(estimators: list[dict[str, Any]], records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each published estimator result's correlations, recomputed from its scores and the accuracies
    published with them (``measured``), or else the records of the run it was measured against
    (``provenance.source`` is that run's folder name)."""
    from bench.transferability.estimators import correlate, correlate_measured

    out = []
    for rank in estimators:
        cols = [k for k in ("logme", "leep", "nce", "hscore", "knn") if any(k in s for s in rank.get("scores", []))]
        scores = {(s["encoder"], s["task"]): {c: s.get(c) for c in cols} for s in rank.get("scores", [])}
        if not scores:
            out.append(rank)
        elif isinstance(rank.get("measured"), list):  # the accuracies bench rank used, published beside them
            measured: dict[tuple[str, str, str], dict[str, float]] = {}
            for m in rank["measured"]:
                measured.setdefault((m["task"], m["strategy"], m["budget"]), {})[m["encoder"]] = float(m["accuracy"])
            out.append({**rank, "correlations": correlate_measured(scores, measured)})
        else:
            own = [r for r in records if (r.get("provenance") or {}).get("source") == rank.get("run")]
            out.append({**rank, "correlations": correlate(scores, own)})
    return out


def disagreements(site: Path) -> list[str]:
    """Every number of ``site``'s ``results.json`` that the published inputs do not reproduce."""
    from bench.report import ranking
    from bench.report import tables as leaderboard
    from bench.report.runs import load

    published = json.loads((site / "results.json").read_text(encoding="utf-8"))
    runs = load([site])
    board = leaderboard.aggregate(runs)
    if runs.estimators:
        board["estimator_correlations"] = _correlations(list(runs.estimators), list(runs.records))
    # the same JSON round trip publish made, so tuples and keys compare as written
    fresh = json.loads(json.dumps({"board": board, "ranking": ranking.summarise(board)}, sort_keys=True, default=str))
    out: list[str] = []
    for part in ("board", "ranking"):
        _diff(published.get(part), fresh[part], part, out)
    return out


def report(site: Path) -> tuple[list[str], str]:
    """The lines ``bench validate SITE`` prints and its summary line."""
    found = disagreements(site)
    if not found:
        return [], f"ok: every number in {site / 'results.json'} recomputes from the published files"
    shown = found[:SHOWN] + ([f"... and {len(found) - SHOWN} more"] if len(found) > SHOWN else [])
    return shown, f"{len(found)} number(s) in {site / 'results.json'} do not recompute from the published files"

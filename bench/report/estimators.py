"""The estimator-correlation section of the leaderboard: do transferability estimates order encoders as accuracy does?

From ``rank.json`` (``bench rank ... --against DIR`` writes it there): each transferability
estimator's rank correlation with the accuracy measured in the run, per (task, strategy,
budget): Kendall's tau and the weighted tau. Over fewer than :data:`MIN_ENCODERS` encoders a
rank correlation is +-1 or 0 by construction, so the table says so instead of a number; over
exactly 3 it can only be +-1 or +-1/3, which the encoder count says.
"""

from __future__ import annotations

from typing import Any

from bench.report.runs import Runs

MIN_ENCODERS = 3
ESTIMATOR_NAMES = {"logme": "LogME", "leep": "LEEP", "nce": "NCE", "hscore": "H-score", "knn": "kNN"}
TOO_FEW = f"fewer than {MIN_ENCODERS} encoders: no meaningful rank correlation"
#: Over 3 encoders (3 pairs, no ties) Kendall's tau takes only these values: say so beside the count.
THREE = "3 (tau can only be ±1 or ±1/3)"


def _tau(value: Any) -> str:
    return "" if value is None else f"{float(value):+.2f}"


def correlation_table(rank: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Rows (task, strategy, budget, encoders) x estimator columns ``tau / weighted tau``."""
    estimators = [e for e in ESTIMATOR_NAMES if any(c.get("estimator") == e for c in rank["correlations"])]
    by_key: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = {}
    for c in rank["correlations"]:
        by_key.setdefault((c["task"], c["strategy"], c["budget"]), {})[c["estimator"]] = c
    rows = []
    for (task, strategy, budget), cs in sorted(by_key.items()):
        n = max(int(c.get("n") or 0) for c in cs.values())
        if n < MIN_ENCODERS:
            rows.append([task, strategy, budget, str(n), TOO_FEW, *[""] * (len(estimators) - 1)])
            continue
        rows.append([task, strategy, budget, THREE if n == 3 else str(n),
                     *[(f"{_tau(cs[e]['kendall_tau'])} / {_tau(cs[e]['weighted_tau'])}" if e in cs else "")
                       for e in estimators]])
    return ["task", "strategy", "budget", "encoders", *[ESTIMATOR_NAMES[e] for e in estimators]], rows


def collect(runs: Runs) -> dict[str, Any]:
    """``{"estimator_correlations": [rank results]}`` for the board, or nothing without any."""
    return {"estimator_correlations": list(runs.estimators)} if runs.estimators else {}


def tables(board: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, headers, rows): one correlation table per rank result of ``board`` that has rows."""
    out = []
    for rank in board.get("estimator_correlations") or []:
        headers, body = correlation_table(rank)
        if body:
            out.append((f"Transferability estimators vs measured accuracy ({rank.get('run', '')}): Kendall tau / "
                        f"weighted tau over encoders (estimates on the {rank.get('budget', '?')} budget; +1 = the "
                        "estimator orders encoders as the measured accuracy does)", headers, body))
    return out

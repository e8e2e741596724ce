"""Leaderboard sections beside the budget tables: few-shot episodes and the estimator-correlation table.

Both come from files in a run folder, next to ``results.jsonl``:

- ``episodes.jsonl`` (``bench run --episodes``, :mod:`bench.episodes.driver`): one row per
  (task, encoder, strategy, N-way K-shot Q-query): mean query accuracy and its 95% interval
  ``1.96 * std / sqrt(E)`` over all episodes; the seeds of a row are pooled (their episodes
  together: the pooled mean, the pooled ``ddof=0`` std, ``E`` the total).
- ``rank.json`` (``bench rank ... --against DIR`` writes it there): each transferability
  estimator's rank correlation with the accuracy measured in the run, per (task, strategy,
  budget): Kendall's tau and the weighted tau. Over fewer than :data:`MIN_ENCODERS` encoders
  a rank correlation is +-1 or 0 by construction, so the table says so instead of a number.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bench.episodes.spec import Z95

EPISODES_FILE = "episodes.jsonl"
RANK_FILE = "rank.json"
MIN_ENCODERS = 3
ESTIMATOR_NAMES = {"logme": "LogME", "leep": "LEEP", "nce": "NCE", "hscore": "H-score", "knn": "kNN"}
TOO_FEW = f"fewer than {MIN_ENCODERS} encoders: no meaningful rank correlation"


def _episode_records(path: Path) -> list[dict[str, Any]]:
    from bench.run.records import ResultsFile, latest

    return latest(ResultsFile(path).load()) if path.exists() else []


def _rank_result(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("correlations"), list) else None


def sections(dirs: Iterable[str | Path]) -> dict[str, Any]:
    """``{"episodes": rows, "estimator_correlations": [rank results]}`` read from run folders."""
    records: list[dict[str, Any]] = []
    ranks: list[dict[str, Any]] = []
    for d in dirs:
        p = Path(d)
        folder = p.parent if p.suffix == ".jsonl" else p
        records += _episode_records(folder / EPISODES_FILE)
        rank = _rank_result(folder / RANK_FILE)
        if rank is not None:
            ranks.append({**rank, "run": folder.name})
    return {"episodes": episode_rows(records), "estimator_correlations": ranks}


def _strategy(rec: dict[str, Any]) -> str:
    cid = rec.get("config_id", "default")
    return rec["strategy"] if cid in ("default", None) else f"{rec['strategy']}[{cid}]"


def pooled(parts: list[dict[str, Any]]) -> dict[str, float]:
    """Mean, ``ddof=0`` std, 95% half-width and count of the episodes of several records together."""
    n = sum(int(p["n"]) for p in parts)
    mean = sum(p["mean"] * p["n"] for p in parts) / n
    second = sum((p["std"] ** 2 + p["mean"] ** 2) * p["n"] for p in parts) / n
    std = math.sqrt(max(second - mean**2, 0.0))
    return {"mean": mean, "std": std, "ci95": Z95 * std / math.sqrt(n), "n": n}


def episode_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (task, encoder, strategy, spec) over its ``ok`` records, seeds pooled."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in records:
        e = r.get("episodes") or {}
        if r.get("status") != "ok" or "mean" not in e:
            continue
        key = (r["task"], r["encoder"], _strategy(r), e["n_way"], e["k_shot"], e["q_query"])
        groups.setdefault(key, []).append(r)
    rows = []
    for (task, enc, strat, n, k, q), rs in sorted(groups.items()):
        stats = pooled([r["episodes"] for r in rs])
        rows.append({"task": task, "encoder": enc, "strategy": strat, "n_way": n, "k_shot": k, "q_query": q,
                     **stats, "seeds": sorted({r["seed"] for r in rs}),
                     "wall_s": sum(float(r.get("wall_s") or 0) for r in rs)})
    return rows


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
        rows.append([task, strategy, budget, str(n),
                     *[(f"{_tau(cs[e]['kendall_tau'])} / {_tau(cs[e]['weighted_tau'])}" if e in cs else "")
                       for e in estimators]])
    return ["task", "strategy", "budget", "encoders", *[ESTIMATOR_NAMES[e] for e in estimators]], rows


def tables(board: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, headers, rows) of the few-shot and estimator-correlation sections of ``board``."""
    out = []
    rows = board.get("episodes") or []
    if rows:
        out.append(("Few-shot episodes: query accuracy % (mean ± 95% CI over E episodes, 1.96·std/√E; "
                    "N classes, K support and Q query items per class drawn from the test split)",
                    ["encoder", "task", "strategy", "N-way K-shot", "accuracy %", "E"],
                    [[r["encoder"], r["task"], r["strategy"], f"{r['n_way']}-way {r['k_shot']}-shot",
                      f"{100 * r['mean']:.2f} ± {100 * r['ci95']:.2f}", str(r["n"])] for r in rows]))
    for rank in board.get("estimator_correlations") or []:
        headers, body = correlation_table(rank)
        if body:
            out.append((f"Transferability estimators vs measured accuracy ({rank.get('run', '')}): Kendall tau / "
                        f"weighted tau over encoders (estimates on the {rank.get('budget', '?')} budget; +1 = the "
                        "estimator orders encoders as the measured accuracy does)", headers, body))
    return out


class RunRecords(list[dict[str, Any]]):
    """Records (a plain list) that remember the run folders they were read from."""

    def __init__(self, records: Iterable[dict[str, Any]], dirs: Iterable[str | Path]) -> None:
        super().__init__(records)
        self.dirs = [Path(d) for d in dirs]
        _LAST_LOAD[:] = [list(self), self.dirs]  # the last load, for a filtered copy of it (see dirs_of)


#: [records, dirs] of the last :class:`RunRecords` made (the records held, so their ids stay theirs)
_LAST_LOAD: list[Any] = []


def dirs_of(records: Any) -> list[Path]:
    """The run folders ``records`` came from: its own ``dirs``, or, for a filtered copy of the last
    load (another board wrapper may filter before this one), that load's folders; else none."""
    if hasattr(records, "dirs"):
        return list(records.dirs)
    if not _LAST_LOAD:
        return []
    loaded, dirs = _LAST_LOAD
    ids = {id(r) for r in loaded}
    if (records and all(id(r) in ids for r in records)) or (not records and not loaded):
        return list(dirs)
    return []


def attach(board: dict[str, Any], records: Any) -> dict[str, Any]:
    """``board`` with the sections of the folders ``records`` came from (only those that have rows)."""
    extra = sections(dirs_of(records))
    board.update({k: v for k, v in extra.items() if v})
    return board


def has_sections(folder: Path) -> bool:
    """True when ``folder`` holds an ``episodes.jsonl`` or a ``rank.json``."""
    return folder.is_dir() and ((folder / EPISODES_FILE).exists() or (folder / RANK_FILE).exists())

"""The leaderboard's continual-learning part: stream records (``record_type: "stream"``) aggregated
into a table (ACC, BWT, FWT: mean ± 95% CI over seeds) and a heat map of the mean accuracy matrix R.

:func:`collect` puts the stream rows in ``board["streams"]`` (the budget tables leave stream
records out); :func:`stream_tables` gives the tables.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from bench.report.aggregate import mean_ci
from bench.report.flags import text as flag_text
from bench.report.runs import Runs

RECORD_TYPE = "stream"
METRICS = ("acc", "bwt", "fwt")


def is_stream(rec: dict[str, Any]) -> bool:
    return rec.get("record_type") == RECORD_TYPE


def _name(strategy: str) -> str:
    return strategy.split(":", 1)[1] if strategy.startswith("continual:") else strategy


def aggregate_streams(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (stream, scenario, encoder, strategy, config, budget): seeds, mean/CI of ACC,
    BWT and FWT, the mean R matrix; rows in stream, encoder, budget order, best ACC first."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    failed: dict[tuple[Any, ...], int] = defaultdict(int)
    for r in records:
        if not is_stream(r):
            continue
        stream = r.get("stream") or {}
        key = (r["task"], stream.get("scenario", "task"), r["encoder"], _name(r["strategy"]), r.get("config_id"),
               r["budget"])
        if r.get("status") == "ok":
            groups[key].append(r)
        elif r.get("status") == "failed":
            failed[key] += 1
    rows = []
    for key in set(groups) | set(failed):
        recs = sorted(groups.get(key, []), key=lambda r: r["seed"])
        row: dict[str, Any] = dict(zip(("stream", "scenario", "encoder", "strategy", "config_id", "budget"), key))
        row.update(n=len(recs), failed=failed.get(key, 0),
                   flags=sorted({f for r in recs for f in r.get("flags") or []}),
                   tasks=(recs[0].get("stream") or {}).get("tasks", []) if recs else [])
        for m in METRICS:
            values = [float(r["metrics"][m]) for r in recs if r["metrics"].get(m) is not None]
            mean, ci = mean_ci(values) if values else (None, None)
            row[m] = {"mean": mean, "ci95": ci, "n": len(values)}
        row["R"] = np.mean([r["metrics"]["R"] for r in recs], axis=0).round(6).tolist() if recs else []
        rows.append(row)
    rows.sort(key=lambda r: (r["stream"], r["scenario"], r["encoder"], r["budget"],
                             -(r["acc"]["mean"] if r["acc"]["mean"] is not None else -1), r["strategy"]))
    return rows


def collect(runs: Runs) -> dict[str, Any]:
    """``{"streams": rows}`` for the board: the stream records of ``runs`` aggregated (maybe none)."""
    return {"streams": aggregate_streams(list(runs.records))}


def _cell(stat: dict[str, Any], signed: bool) -> str:
    if stat["mean"] is None:
        return "-"
    text = f"{100 * stat['mean']:+.1f}" if signed else f"{100 * stat['mean']:.1f}"
    return text + (f" ± {100 * stat['ci95']:.1f}" if stat["ci95"] is not None else "")


def stream_tables(board: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """The "Continual learning" tables, one per (stream, scenario, encoder, budget)."""
    out: list[tuple[str, list[str], list[list[str]]]] = []
    keyed: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in board.get("streams", []):
        keyed[(row["stream"], row["scenario"], row["encoder"], row["budget"])].append(row)
    for (stream, scenario, encoder, budget), rows in keyed.items():
        title = (f"Continual learning: {stream} ({scenario}-incremental), {encoder}, {budget}: ACC, BWT, FWT % "
                 "(GEM; mean ± 95% CI over seeds; BWT < 0 = forgetting)")
        body = [[r["strategy"] + ("" if r["config_id"] in (None, "default") else f" [{r['config_id']}]")
                 + (f" {flag_text(r['flags'])}" if r.get("flags") else ""),
                 _cell(r["acc"], False), _cell(r["bwt"], True), _cell(r["fwt"], True),
                 f"{r['n']}" + (f" (+{r['failed']} failed)" if r["failed"] else "")] for r in rows]
        out.append((title, ["strategy", "ACC", "BWT", "FWT", "seeds"], body))
    return out


def render_streams(records: list[dict[str, Any]], fmt: str = "github") -> str:
    """The continual-learning tables of ``records`` alone (what ``bench run --stream`` prints)."""
    from tabulate import tabulate

    parts = []
    for title, headers, rows in stream_tables({"streams": aggregate_streams(records)}):
        table_fmt = fmt if fmt in ("github", "html", "latex") else "github"
        parts.append(f"### {title}\n\n" + tabulate(rows, headers, tablefmt=table_fmt, disable_numparse=True))
    return "\n\n".join(parts) + "\n" if parts else "no finished stream cells yet"


def heatmap(board: dict[str, Any], path: Path) -> Path | None:
    """The mean accuracy matrix R of every row (one panel per strategy), or None without
    matplotlib or stream rows."""
    rows = [r for r in board.get("streams", []) if r["R"]]
    if not rows:
        return None
    from bench.report.mpl import pyplot

    plt = pyplot()
    if plt is None:
        return None
    fig, axes = plt.subplots(1, len(rows), figsize=(2.6 * len(rows), 2.8), squeeze=False)
    for ax, row in zip(axes[0], rows):
        R = np.asarray(row["R"]) * 100
        ax.imshow(R, vmin=0, vmax=100, cmap="viridis")
        for i in range(R.shape[0]):
            for j in range(R.shape[1]):
                ax.text(j, i, f"{R[i, j]:.0f}", ha="center", va="center", fontsize=7,
                        color="white" if R[i, j] < 60 else "black")
        ax.set_title(f"{row['strategy']}\n{row['stream']}", fontsize=8)
        ax.set_xlabel("tested on task j", fontsize=7)
        ax.set_ylabel("after learning task i", fontsize=7)
        ax.set_xticks(range(R.shape[1]))
        ax.set_yticks(range(R.shape[0]))
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path

"""Aggregation and tables: per task, rows encoder x strategy, columns budgets.

Each cell shows the mean test accuracy over seeds with its 95% confidence interval (Student t,
``mean ± t(0.975, n-1) * sd / sqrt(n)``; one seed gives no interval). The head-start table gives
the *paired* difference against ``scratch`` of the same encoder at the same budget and seed
(same manifest, same schedule), averaged over seeds with its own interval. Shifted tasks get a
table of target-domain accuracy and the transfer gap (source test minus target test).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bench.budgets import parse_budget
from bench.errors import UserError
from bench.results import ResultsFile, latest

FORMATS = ("github", "html", "csv", "latex", "json")
_TABLEFMT = {"github": "github", "html": "html", "latex": "latex"}


def load_records(dirs: Iterable[str | Path]) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for d in dirs:
        p = Path(d)
        path = p if p.suffix == ".jsonl" else p / "results.jsonl"
        if not path.exists():
            raise UserError(f"no results found at {str(path)!r}; pass a folder written by `bench run --out DIR`")
        records.extend(ResultsFile(path).load())
    return latest(records)


def mean_ci(values: list[float]) -> tuple[float, float | None]:
    """Mean and 95% t-interval half-width (None for a single value)."""
    n = len(values)
    m = sum(values) / n
    if n < 2:
        return m, None
    from scipy.stats import t

    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1))
    return m, float(t.ppf(0.975, n - 1) * sd / math.sqrt(n))


def fmt(mean: float, ci: float | None, scale: float = 100.0, signed: bool = False) -> str:
    s = f"{mean * scale:+.1f}" if signed else f"{mean * scale:.1f}"
    return s if ci is None else f"{s} ± {ci * scale:.1f}"


def strategy_label(rec: dict[str, Any]) -> str:
    cid = rec.get("config_id", "default")
    return rec["strategy"] if cid in ("default", None) else f"{rec['strategy']}[{cid}]"


def _budget_order(label: str) -> Any:
    try:
        return parse_budget(label.replace("/class", "")).order
    except UserError:
        return (9, 0)


def aggregate(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Structured leaderboard: per task, per row, per budget: mean/CI of every metric, head-start."""
    ok = [r for r in records if r.get("status") == "ok"]
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in ok:
        by_task[r["task"]].append(r)
    scratch: dict[tuple[Any, ...], float] = {}
    for r in ok:
        if r["strategy"] == "scratch":
            scratch[(r["task"], r["encoder"], r["budget"], r["seed"])] = r["metrics"]["accuracy"]
    out: dict[str, Any] = {"tasks": {}}
    for task, recs in sorted(by_task.items()):
        budgets = sorted({r["budget"] for r in recs}, key=_budget_order)
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
        for r in recs:
            groups[(r["encoder"], strategy_label(r), r["budget"])].append(r)
        for (enc, strat, budget), rs in sorted(groups.items()):
            row = rows.setdefault((enc, strat), {"encoder": enc, "strategy": strat, "budgets": {}})
            cell: dict[str, Any] = {"seeds": len(rs)}
            metric_names = sorted({k for r in rs for k, v in r["metrics"].items() if isinstance(v, (int, float))})
            for m in metric_names:
                vals = [float(r["metrics"][m]) for r in rs if isinstance(r["metrics"].get(m), (int, float))]
                if vals:
                    mean, ci = mean_ci(vals)
                    cell[m] = {"mean": mean, "ci95": ci, "n": len(vals)}
            diffs = [r["metrics"]["accuracy"] - scratch[(task, enc, budget, r["seed"])]
                     for r in rs if (task, enc, budget, r["seed"]) in scratch and r["strategy"] != "scratch"]
            if diffs:
                mean, ci = mean_ci(diffs)
                cell["head_start"] = {"mean": mean, "ci95": ci, "n": len(diffs)}
            cell["trainable_share"] = sum(r.get("trainable_share", 0.0) for r in rs) / len(rs)
            cell["trainable_params"] = max(r.get("trainable_params", 0) for r in rs)
            cell["wall_s"] = sum(r.get("wall_s", 0.0) for r in rs) / len(rs)
            cell["peak_mem_mb"] = max(r.get("peak_mem_mb", 0.0) for r in rs)
            row["budgets"][budget] = cell
            row.setdefault("flags", set()).update(f for r in rs for f in r.get("flags", []))
        for row in rows.values():
            row["flags"] = sorted(row.get("flags", []))
        shifted = any(r.get("task_info", {}).get("shifted") for r in recs)
        flags = sorted({f for r in recs for f in r.get("flags", [])})
        out["tasks"][task] = {"budgets": budgets, "rows": list(rows.values()), "shifted": shifted, "flags": flags}
    skipped: dict[tuple[str, str, str], str] = {}
    failed: dict[tuple[str, str, str], str] = {}
    for r in records:
        if r.get("status") == "skipped":
            skipped[(r["task"], r["encoder"], strategy_label(r))] = r.get("error") or ""
        elif r.get("status") == "failed":
            failed[(r["task"], r["encoder"], strategy_label(r))] = r.get("error") or ""
    out["skipped"] = [{"task": t, "encoder": e, "strategy": s, "reason": why}
                      for (t, e, s), why in sorted(skipped.items())]
    out["failed"] = [{"task": t, "encoder": e, "strategy": s, "error": why}
                     for (t, e, s), why in sorted(failed.items())]
    return out


def _metric_table(task: dict[str, Any], metric: str, signed: bool = False) -> tuple[list[str], list[list[str]]]:
    headers = ["encoder", "strategy", *task["budgets"]]
    rows = []
    for row in task["rows"]:
        vals = []
        for b in task["budgets"]:
            c = row["budgets"].get(b, {}).get(metric)
            vals.append("" if c is None else fmt(c["mean"], c["ci95"], signed=signed))
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
    has_forgetting = any("forgetting" in c for row in task["rows"] for c in row["budgets"].values())
    headers = ["encoder", "strategy", "trainable", "share %", "wall s/cell", "peak MB"]
    if has_forgetting:
        headers.append("forgetting")
    rows = []
    for row in task["rows"]:
        cells = list(row["budgets"].values())
        line = [
            row["encoder"], row["strategy"], f"{max(c['trainable_params'] for c in cells):,}",
            f"{100 * sum(c['trainable_share'] for c in cells) / len(cells):.2f}",
            f"{sum(c['wall_s'] for c in cells) / len(cells):.1f}",
            f"{max(c['peak_mem_mb'] for c in cells):.0f}",
        ]
        if has_forgetting:
            f = [c["forgetting"]["mean"] for c in cells if "forgetting" in c]
            line.append(f"{100 * sum(f) / len(f):+.1f}" if f else "")
        rows.append(line)
    return headers, rows


def tables(board: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, headers, rows) for every table of the leaderboard, in display order."""
    out = []
    for name, task in board["tasks"].items():
        out.append((f"{name}: test accuracy % (mean ± 95% CI over seeds)", *_metric_table(task, "accuracy")))
        if any(c.get("overlap_rate", {}).get("mean", 0) > 0 for row in task["rows"] for c in row["budgets"].values()):
            out.append((f"{name}: accuracy % on Clean test items (duplicates of train removed)",
                        *_metric_table(task, "accuracy_clean")))
        if task["shifted"]:
            out.append((f"{name}: target-domain test accuracy %", *_metric_table(task, "target_accuracy")))
            out.append((f"{name}: transfer gap, source minus target (points)",
                        *_metric_table(task, "transfer_gap", signed=True)))
        headers, rows = _metric_table(task, "head_start", signed=True)
        if rows:
            out.append((f"{name}: head-start over scratch (paired, same encoder/budget/seed; points)", headers, rows))
        out.append((f"{name}: cost (mean over budgets and seeds; share = trainable/total params)", *_cost_table(task)))
        headers, rows = _flags_table(task)
        if rows:
            out.append((f"{name}: (!) suspect scores: test items duplicated in train/pre-training data, or the "
                        "encoder declares pre-training on this task's source", headers, rows))
    return out


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
    if fmt_name in ("github", "html") and (board["skipped"] or board["failed"]):
        lines = [f"- skipped {s['encoder']} x {s['strategy']} on {s['task']}: {s['reason']}" for s in board["skipped"]]
        lines += [f"- FAILED {s['encoder']} x {s['strategy']} on {s['task']}: {s['error']}" for s in board["failed"]]
        body = "\n".join(lines)
        parts.append(f"<pre>{_html_escape(body)}</pre>" if fmt_name == "html" else body)
    if not parts:
        return "no finished cells yet"
    return "\n\n".join(parts) + "\n"


def _html_escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def plot_curves(board: dict[str, Any], path: Path) -> Path | None:
    """Accuracy vs label budget, one panel per task (needs matplotlib; None without it)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    tasks = list(board["tasks"].items())
    if not tasks:
        return None
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 4), squeeze=False)
    for ax, (name, task) in zip(axes[0], tasks):
        xs = list(range(len(task["budgets"])))
        for row in task["rows"]:
            pts = [(x, row["budgets"][b]["accuracy"]) for x, b in zip(xs, task["budgets"]) if b in row["budgets"]]
            if not pts:
                continue
            px = [p[0] for p in pts]
            m = [100 * p[1]["mean"] for p in pts]
            ci = [100 * (p[1]["ci95"] or 0.0) for p in pts]
            ax.errorbar(px, m, yerr=ci, marker="o", capsize=3, label=f"{row['encoder']} / {row['strategy']}")
        ax.set_xticks(xs, task["budgets"])
        ax.set_xlabel("label budget")
        ax.set_ylabel("test accuracy %")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def publish(dirs: Iterable[str | Path], site: Path) -> Path:
    """A static site: ``index.html`` (every table), ``results.jsonl`` (all records), a plot."""
    records = load_records(dirs)
    site = Path(site)
    try:
        site.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create site folder {str(site)!r} ({exc.strerror}); pass a writable --site") from None
    board = aggregate(records)
    with (site / "results.jsonl").open("w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, sort_keys=True) + "\n")
    plot = plot_curves(board, site / "curves.png")
    img = '<p><img src="curves.png" alt="accuracy vs label budget"></p>' if plot else ""
    html = (
        "<!doctype html><html><head><meta charset='utf-8'><title>transfer-bench leaderboard</title>"
        "<style>body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin-bottom:1.5em}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child,td:nth-child(2){text-align:left}"
        "</style></head><body><h1>transfer-bench leaderboard</h1>"
        f"<p>{sum(1 for r in records if r.get('status') == 'ok')} finished cells. "
        "Accuracy in %, mean ± 95% CI over seeds; head-start is the paired difference against scratch. "
        "Raw records: <a href='results.jsonl'>results.jsonl</a>.</p>"
        f"{img}{render(board, 'html')}</body></html>\n"
    )
    (site / "index.html").write_text(html, encoding="utf-8")
    return site

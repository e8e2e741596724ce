"""The budget tables of the leaderboard: per task, accuracy by budget, head-start, cost, length, failures, flags.

Each cell shows the mean test accuracy over seeds with its 95% confidence interval (Student t,
``mean ± t(0.975, n-1) * sd / sqrt(n)``; one seed gives no interval), followed by ``(n/N)`` when
it averages fewer seeds than were asked, and ``†`` when seeds failed (the failures table lists
each with its reason). The head-start table gives the *paired* difference against ``scratch``
(same encoder, budget, seed, manifest and recipe). Shifted tasks get target-domain tables, and
the transfer gap (source test minus target test). The cost table reports forgetting as points
lost on the reference task (positive = worse), and a training-length table shows steps and
epochs, marking cells where ``max_steps`` cut the recipe short. Every table names a row's
flags after its encoder (``enc [capped]``); the flags table gives each flag's meaning.
"""

from __future__ import annotations

from typing import Any

from bench.multitask.spec import is_multitask_record as is_multitask
from bench.report import aggregate as _board
from bench.report import domain as board_da
from bench.report.flags import meaning
from bench.report.flags import text as flag_text
from bench.report.runs import Runs
from bench.report.stream import is_stream


def collect(runs: Runs) -> dict[str, Any]:
    """The board's tasks, failed and skipped cells and warnings (:func:`bench.report.aggregate.aggregate`)
    of every record but the stream and multi-task records (their own sections')."""
    from bench.report.names import registered_defaults

    return _board.aggregate(list(runs.where(lambda r: not is_stream(r) and not is_multitask(r)).records),
                            registered_defaults())


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


def who(row: dict[str, Any]) -> list[str]:
    """The encoder and strategy cells of a row, its flags after the encoder (``enc [collapsed]``)."""
    return [f"{row['encoder']} {flag_text(row['flags'])}".strip() if row.get("flags") else row["encoder"],
            row["strategy"]]


def _metric_table(task: dict[str, Any], metric: str, signed: bool = False) -> tuple[list[str], list[list[str]]]:
    headers = ["encoder", "strategy", *task["budgets"]]
    rows = []
    for row in task["rows"]:
        vals = [cell_text(row["budgets"][b], metric, signed) if b in row["budgets"] else "" for b in task["budgets"]]
        if any(vals):
            rows.append([*who(row), *vals])
    return headers, rows


def _flags_table(task: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    rows = []
    for row in task["rows"]:
        if row.get("flags"):
            rates = [c["overlap_rate"]["mean"] for c in row["budgets"].values() if "overlap_rate" in c]
            rate = f"{100 * max(rates):.1f}" if rates else ""
            rows.append([row["encoder"], row["strategy"], "; ".join(f"{f}: {meaning(f)}" for f in row["flags"]), rate])
    return ["encoder", "strategy", "flags (meaning)", "test overlap %"], rows


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
            *who(row), f"{max(c['trainable_params'] for c in cells):,}",
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
            rows.append([*who(row), *vals])
    return ["encoder", "strategy", *task["budgets"]], rows


def _failures_table(board: dict[str, Any], task: str) -> tuple[list[str], list[list[str]]]:
    rows = [[f["encoder"], f["strategy"], f["budget"], str(f["seed"]), f["reason"], f["error"]]
            for f in board["failed"] if f["task"] == task]
    return ["encoder", "strategy", "budget", "seed", "reason", "error"], rows


def _has_overlap(task: dict[str, Any], prefix: str) -> bool:
    return any(c.get(f"{prefix}overlap_rate", {}).get("mean", 0) > 0 for row in task["rows"]
               for c in row["budgets"].values())


def tables(board: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, headers, rows) of every task's budget tables, task by task, in display order."""
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
            out.append((f"{name}: flagged rows ([flags] after the encoder in every table)", headers, rows))
    return out

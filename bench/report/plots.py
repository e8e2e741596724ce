"""Leaderboard plots (matplotlib, one PNG each): learning curves, target/gap, cost, forgetting vs gain.

Each function takes an aggregated board (:mod:`bench.report.aggregate`) and a path, and returns the path, or
None when matplotlib is missing or there is nothing to draw. Learning curves put labels per class
on a log axis with the 95% CI as a band; shifted tasks are drawn on target accuracy (the number
that matters there) with the transfer gap beside them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.report.mpl import pyplot as _pyplot
from bench.report.multitask import gain_plot
from bench.report.ranking import labels_per_class, primary_metric
from bench.report.stream import heatmap

#: The classic comparison, drawn first and in fixed colours on every curve plot.
CLASSIC = {"scratch": "tab:red", "linear-probe": "tab:blue", "finetune": "tab:green"}
#: Colours of the other strategies: never one of the classic three (tent was drawn in finetune's green)
OTHERS = ("tab:orange", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "tab:gray", "gold")


def _series(task: dict[str, Any], row: dict[str, Any], metric: str) -> tuple[list[float], list[float], list[float]]:
    pts = []
    for b, c in row["budgets"].items():
        x = labels_per_class(task, b, c) if metric in c else None
        if x:
            pts.append((x, 100 * c[metric]["mean"], 100 * (c[metric]["ci95"] or 0.0)))
    pts.sort()
    return [p[0] for p in pts], [p[1] for p in pts], [p[2] for p in pts]


def _draw(ax: Any, task: dict[str, Any], metric: str, ylabel: str) -> int:
    rows = sorted(task["rows"], key=lambda r: (r["strategy"] not in CLASSIC, r["encoder"], r["strategy"]))
    encoders = sorted({r["encoder"] for r in rows})
    drawn = 0
    for row in rows:
        xs, ys, ci = _series(task, row, metric)
        if not xs:
            continue
        colour = CLASSIC.get(row["strategy"])
        others = sorted({r["strategy"] for r in rows} - set(CLASSIC))
        line_colour = colour or OTHERS[others.index(row["strategy"]) % len(OTHERS)]
        style = ("-", "--", ":", "-.")[encoders.index(row["encoder"]) % 4]  # one line style per encoder
        (line,) = ax.plot(xs, ys, marker="o", color=line_colour, linestyle=style,
                          label=f"{row['encoder']} / {row['strategy']}", linewidth=2.2 if colour else 1.2)
        ax.fill_between(xs, [y - c for y, c in zip(ys, ci)], [y + c for y, c in zip(ys, ci)],
                        color=line.get_color(), alpha=0.15)
        drawn += 1
    ax.set_xscale("log")
    ax.set_xlabel("labels per class (log)")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, which="both")
    if drawn:
        ax.legend(fontsize=7)
    return drawn


def _save(plt: Any, fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def learning_curves(board: dict[str, Any], path: Path) -> Path | None:
    """Accuracy (target accuracy on shifted tasks) vs labels per class, one panel per task, CI bands."""
    plt = _pyplot()
    tasks = list(board["tasks"].items())
    if plt is None or not tasks:
        return None
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 4), squeeze=False)
    for ax, (name, task) in zip(axes[0], tasks):
        metric = primary_metric(task)
        _draw(ax, task, metric, "target test accuracy %" if task["shifted"] else "test accuracy %")
        if task["shifted"]:
            _source_only(ax, task)
        ax.set_title(name)
    return _save(plt, fig, path)


def shift_curves(board: dict[str, Any], path: Path) -> Path | None:
    """Per shifted task: target accuracy and the transfer gap (source minus target) vs labels."""
    plt = _pyplot()
    tasks = [(n, t) for n, t in board["tasks"].items() if t["shifted"]]
    if plt is None or not tasks:
        return None
    fig, axes = plt.subplots(len(tasks), 2, figsize=(11, 4 * len(tasks)), squeeze=False)
    for (ax_t, ax_g), (name, task) in zip(axes, tasks):
        _draw(ax_t, task, "target_accuracy", "target test accuracy %")
        _source_only(ax_t, task)
        ax_t.set_title(f"{name}: target")
        _draw(ax_g, task, "transfer_gap", "gap, source minus target (points)")
        ax_g.set_title(f"{name}: transfer gap")
    return _save(plt, fig, path)


def _x(task: dict[str, Any], budget: str) -> float | None:
    cell: dict[str, Any] = next((r["budgets"][budget] for r in task["rows"] if budget in r["budgets"]), {})
    return labels_per_class(task, budget, cell)


def _source_only(ax: Any, task: dict[str, Any]) -> None:
    """The paired source-only baselines' target accuracy, black (one line per distinct baseline)."""
    from bench.report.domain import source_only_series

    for i, (encoder, methods, points) in enumerate(source_only_series(task)):
        pts = sorted((x, 100 * y) for b, y in points.items() if (x := _x(task, b)))
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], color="black", linestyle=("--", ":", "-.")[i % 3],
                    marker="x", linewidth=1.6, label=f"{encoder} / source-only (paired: {', '.join(methods)})")
            ax.legend(fontsize=7)


def _scatter(board: dict[str, Any], path: Path, point: Any, xlabel: str, ylabel: str, logx: bool) -> Path | None:
    plt = _pyplot()
    pts = [(name, row, p) for name, task in board["tasks"].items() for row in task["rows"]
           if (p := point(task, row)) is not None]
    if plt is None or not pts:
        return None
    fig, ax = plt.subplots(figsize=(7, 5))
    for name, row, (x, y) in pts:
        ax.scatter([x], [y], color=CLASSIC.get(row["strategy"]))
        ax.annotate(f"{row['encoder']}/{row['strategy']} ({name})", (x, y), fontsize=6)
    if logx:
        ax.set_xscale("symlog")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return _save(plt, fig, path)


def _largest(task: dict[str, Any], row: dict[str, Any], metric: str) -> dict[str, Any] | None:
    """The row's cell at the largest budget of the task where ``metric`` was measured."""
    for b in reversed(task["budgets"]):
        c = row["budgets"].get(b, {})
        if metric in c:
            return c
    return None


def cost(board: dict[str, Any], path: Path) -> Path | None:
    """Accuracy at each row's largest measured budget vs trainable parameters."""
    def point(task: dict[str, Any], row: dict[str, Any]) -> tuple[float, float] | None:
        c = _largest(task, row, primary_metric(task))
        return None if c is None else (float(c.get("trainable_params", 0)), 100 * c[primary_metric(task)]["mean"])

    return _scatter(board, path, point, "trainable parameters (symlog)", "accuracy % at the largest budget", True)


def forgetting_vs_gain(board: dict[str, Any], path: Path) -> Path | None:
    """Points lost on the reference task (reference_drop) vs head-start over scratch."""
    def point(task: dict[str, Any], row: dict[str, Any]) -> tuple[float, float] | None:
        cells = [c for c in row["budgets"].values() if "reference_drop" in c and "head_start" in c]
        if not cells:
            return None
        gain = sum(c["head_start"]["mean"] for c in cells) / len(cells)
        return 100 * gain, 100 * sum(c["reference_drop"]["mean"] for c in cells) / len(cells)

    return _scatter(board, path, point, "head-start over scratch (points)", "points lost on the reference task", False)


PLOTS = (("curves.png", learning_curves, "accuracy vs labels per class (log), 95% CI bands"),
         ("shift.png", shift_curves, "shifted tasks: target accuracy and transfer gap vs labels"),
         ("cost.png", cost, "accuracy vs trainable parameters"),
         ("forgetting.png", forgetting_vs_gain, "forgetting (points lost on the reference task) vs gain"),
         ("continual.png", heatmap, "continual learning: mean accuracy R[i][j] (%) on task j after training on "
                                    "task i, per strategy"),
         ("multitask.png", gain_plot, "multi-task: per-task gain over single-task finetune by weighting (points), "
                                      "95% CI"))


def write_all(board: dict[str, Any], folder: Path) -> list[tuple[str, str]]:
    """Every plot that has something to draw: (file name, caption)."""
    return [(name, caption) for name, fn, caption in PLOTS if fn(board, folder / name) is not None]

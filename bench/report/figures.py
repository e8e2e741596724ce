"""The site's per-task figures: one readable learning-curve chart per task (and a transfer-gap chart per shifted task).

Each figure is :data:`WIDTH_IN` x :data:`HEIGHT_IN` inches at :data:`DPI` (1000 x 540 px): the
classic three curves (scratch, linear probe, fine-tune) drawn first in fixed colours, then the
other rows, and the key in its own area right of the axes, so it never covers a plotted point.
Beside each PNG the figure's metadata (:func:`metadata`: image size, the key's box and every
plotted point in image pixels, origin top left) lets a test check that claim on the rendered page.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.report.plots import _draw, _pyplot, _source_only
from bench.report.ranking import primary_metric

WIDTH_IN, HEIGHT_IN, DPI = 10.0, 5.4, 100
#: the axes take the left part of the figure; the key sits in the rest
AXES_RIGHT = 0.58


def metadata(fig: Any, ax: Any) -> dict[str, Any]:
    """Image size, the key's bounding box and every plotted point, in image pixels (origin top left)."""
    fig.canvas.draw()
    width, height = fig.canvas.get_width_height()
    legend = ax.get_legend()
    box = None
    if legend is not None:
        b = legend.get_window_extent()
        box = [round(float(v), 1) for v in (b.x0, height - b.y1, b.x1, height - b.y0)]
    points = []
    for line in ax.get_lines():
        for x, y in ax.transData.transform(line.get_xydata()):
            points.append([round(float(x), 1), round(float(height - y), 1)])
    return {"width": width, "height": height, "legend": box, "points": points}


def _figure(plt: Any) -> tuple[Any, Any]:
    fig, ax = plt.subplots(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    fig.subplots_adjust(left=0.08, right=AXES_RIGHT, top=0.92, bottom=0.11)
    return fig, ax


def _key(ax: Any) -> None:
    """The key right of the axes, outside them (no data can lie under it); one encoder's name goes
    into the title instead of every entry."""
    handles, labels = ax.get_legend_handles_labels()
    encoders = {label.split(" / ", 1)[0] for label in labels}
    if len(encoders) == 1 and all(" / " in label for label in labels):
        labels = [label.split(" / ", 1)[1] for label in labels]
        ax.set_title(f"{ax.get_title()} ({encoders.pop()})", fontsize=10)
    if handles:
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize=8,
                  frameon=True)


def _save(plt: Any, fig: Any, ax: Any, path: Path) -> dict[str, Any]:
    meta = metadata(fig, ax)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    path.with_suffix(".json").write_text(json.dumps(meta), encoding="utf-8")
    return meta


def task_figures(board: dict[str, Any], name: str, folder: Path, stem: str) -> list[dict[str, Any]]:
    """The task's figures, written into ``folder`` as ``<stem>-curves.png`` (and ``<stem>-gap.png``
    on a shifted task): ``{"file", "caption", "meta"}`` each; [] without matplotlib or points."""
    plt = _pyplot()
    task = board["tasks"][name]
    if plt is None:
        return []
    out = []
    metric = primary_metric(task)
    fig, ax = _figure(plt)
    drawn = _draw(ax, task, metric, "target test accuracy %" if task["shifted"] else "test accuracy %")
    if task["shifted"]:
        _source_only(ax, task)
    ax.set_title(f"{name}: {'target ' if task['shifted'] else ''}accuracy vs labels per class")
    _key(ax)
    if drawn:
        file = f"{stem}-curves.png"
        caption = (f"{name}: {'target-domain ' if task['shifted'] else ''}test accuracy % vs labels per class "
                   "(log), mean and 95% CI band over seeds; scratch red, linear probe blue, fine-tune green"
                   + ("; black: the DA methods' paired source-only baselines" if task["shifted"] else ""))
        out.append({"file": file, "caption": caption, "meta": _save(plt, fig, ax, folder / file)})
    else:
        plt.close(fig)
    if task["shifted"]:
        fig, ax = _figure(plt)
        if _draw(ax, task, "transfer_gap", "gap, source minus target (points)"):
            ax.set_title(f"{name}: transfer gap")
            _key(ax)
            file = f"{stem}-gap.png"
            out.append({"file": file, "caption": f"{name}: transfer gap (source minus target test accuracy, "
                        "points) vs labels per class", "meta": _save(plt, fig, ax, folder / file)})
        else:
            plt.close(fig)
    return out

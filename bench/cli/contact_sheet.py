"""The contact sheet of ``bench check --contact-sheet PNG``: example flagged pairs side by side."""

from __future__ import annotations

from pathlib import Path

from bench.contamination import DETECTORS, ContaminationReport, describe_pair, load_image_file, load_index
from bench.extras import require
from bench.tasks import TaskData


def contact_sheet(report: ContaminationReport, task: TaskData, out: str | Path, per_detector: int = 4) -> int:
    """Save example pairs side by side as a PNG; returns the number of pairs drawn."""
    matplotlib = require("matplotlib", "plots", "--contact-sheet")
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt
    splits = task.splits()
    roots = {f"pretraining:{Path(p).stem}": p for p in report.pretraining_indexes}
    chosen = [p for d in DETECTORS for p in [q for q in report.pairs if q.detector == d][:per_detector]]

    def image(split: str, item: str):
        if split in splits:
            s = splits[split]
            return s.images([s.ids.index(item)])[0]
        if split in roots:
            root = load_index(roots[split]).root
            try:
                return load_image_file(Path(root) / item)
            except Exception:
                return None
        return None

    rows = max(len(chosen), 1)
    fig, axes = plt.subplots(rows, 2, figsize=(4.4, 2.2 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for row, p in enumerate(chosen):
        for col, (split, item) in enumerate(((p.split, p.item_id), (p.reference, p.match_id))):
            img = image(split, item)
            ax = axes[row, col]
            if img is not None:
                ax.imshow(img.squeeze(), cmap="gray" if img.shape[-1] == 1 else None, vmin=0, vmax=255)
            else:
                ax.text(0.5, 0.5, "not available", ha="center", va="center")
            ax.set_title(f"{split}\n{item}", fontsize=6)
        axes[row, 0].text(1.05, -0.12, describe_pair(p).split("[")[-1].rstrip("]"), fontsize=6,
                          transform=axes[row, 0].transAxes, ha="center")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return len(chosen)

"""A small, hand-computable run folder for the ranking, site and browser tests.

mnist5k (3 seeds, budgets 1/5/25 per class, 10 classes): scratch 20/40/70, linear-probe 50/70/80,
finetune 55/75/90, knn within noise of finetune, and a plugin encoder whose name and description
are an HTML injection attempt (10/20/30). shift-task (shifted): probe and finetune on target accuracy.
"""

from __future__ import annotations

import json
from pathlib import Path

XSS = "<img src=x onerror=alert(1)>"
BUDGETS = {"1/class": 1, "5/class": 5, "25/class": 25}
MNIST = {
    ("enc", "scratch"): ((0.20, 0.40, 0.70), (0.0, 0.01, -0.01)),
    ("enc", "linear-probe"): ((0.50, 0.70, 0.80), (0.0, 0.01, -0.01)),
    ("enc", "finetune"): ((0.55, 0.75, 0.90), (0.01, 0.0, -0.01)),
    ("enc", "knn"): ((0.545, 0.70, 0.85), (-0.02, 0.02, 0.0)),
    (XSS, "linear-probe"): ((0.10, 0.20, 0.30), (0.0, 0.01, -0.01)),
}
SHIFT = {
    ("enc", "linear-probe"): ((0.30, 0.50, 0.60), (0.0, 0.01, -0.01)),
    ("enc", "finetune"): ((0.40, 0.45, 0.70), (0.01, 0.0, -0.01)),
}


def record(task: str, enc: str, strat: str, budget: str, seed: int, acc: float, shifted: bool = False,
           status: str = "ok") -> dict:
    k = BUDGETS[budget]
    metrics = {"accuracy": round(acc, 4)}
    if shifted:
        metrics = {"accuracy": round(acc + 0.2, 4), "target_accuracy": round(acc, 4), "transfer_gap": 0.2}
    digest = f"{task}-{enc}-{strat}"
    return {
        "schema": 2, "protocol": 2, "encoder": enc, "strategy": strat, "task": task, "budget": budget, "seed": seed,
        "config_id": "default", "cell_id": f"{digest}-{budget}-{seed}", "config_digest": digest,
        "config_summary": {"encoder": enc, "strategy": strat, "task": task, "option.lr": 0.001},
        "config": {"lr": 0.001}, "status": status, "error": None if status == "ok" else "FloatingPointError: diverged",
        "reason": None if status == "ok" else "diverged",
        "metrics": metrics if status == "ok" else {},
        "trainable_params": 0 if strat in ("linear-probe", "knn") else 1000,
        "total_params": 1000, "trainable_share": 0.0, "wall_s": 1.0, "peak_mem_mb": 10.0, "device": "cpu",
        "device_info": {"torch_threads": 1}, "manifest_sha256": f"m-{task}-{budget}-{seed}", "n_labelled": 10 * k,
        "encoder_info": {"plugin": enc, "description": XSS if enc == XSS else "a test encoder", "weights": "w",
                         "pretraining_data": []},
        "task_info": {"shifted": shifted, "dataset": [task]}, "flags": [],
        "versions": {"python": "3.11", "transfer-bench": "0.1.0", "git_commit": "abc1234"},
        "timestamp": f"2026-11-29T00:00:0{seed}Z",
    }


def records() -> list[dict]:
    out = []
    for task, table, shifted in (("mnist5k", MNIST, False), ("shift-task", SHIFT, True)):
        for (enc, strat), (means, noise) in table.items():
            for i, budget in enumerate(BUDGETS):
                for seed in range(3):
                    out.append(record(task, enc, strat, budget, seed, means[i] + noise[seed], shifted))
    return out


def write_run(folder: Path, recs: list[dict] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "results.jsonl").open("w") as f:
        for r in records() if recs is None else recs:
            f.write(json.dumps(r) + "\n")
    return folder

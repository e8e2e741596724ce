"""Label budgets and their manifests.

A budget is ``K`` labels per class (``"5"`` -> ``5/class``), ``N`` labels in total, stratified
(``"n100"``), or the whole pool (``"full"``). Its manifest, the list of item ids it labels,
depends only on (task, budget, seed): never on the encoder or the strategy, so every comparison
in a run is paired. Manifests are written to ``DIR/manifests/`` and reused on resume.

Sampling: for each (task, seed), each class's pool items are put in one seeded random order, and
a budget takes a prefix of it: ``K/class`` the first K of every class; ``nN`` the first
``n_c`` of class c, with ``n_c`` proportional to the class's share of the pool (largest
remainders). Budgets of one seed are therefore nested (the 1/class items are among the 5/class
items), which makes learning curves smoother without changing any single cell's distribution.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.errors import UserError
from bench.tasks import TaskData


@dataclass(frozen=True, order=True)
class Budget:
    #: sort key: per-class budgets first (by K), then totals (by N), then full
    order: tuple[int, int]
    kind: str  # "per_class" | "total" | "full"
    n: int | None

    @property
    def label(self) -> str:
        if self.kind == "per_class":
            return f"{self.n}/class"
        if self.kind == "total":
            return f"n{self.n}"
        return "full"

    def __str__(self) -> str:
        return self.label


def parse_budget(text: str) -> Budget:
    t = str(text).strip().lower()
    if t == "full":
        return Budget((2, 0), "full", None)
    m = re.fullmatch(r"(\d+)(?:/class)?", t)
    if m and int(m.group(1)) > 0:
        return Budget((0, int(m.group(1))), "per_class", int(m.group(1)))
    m = re.fullmatch(r"n(\d+)", t)
    if m and int(m.group(1)) > 0:
        return Budget((1, int(m.group(1))), "total", int(m.group(1)))
    raise UserError(
        f"malformed budget {text!r}; use labels per class (e.g. 5), a stratified total (e.g. n100), or full"
    )


def parse_budgets(spec: str | list[str] | tuple[str, ...]) -> list[Budget]:
    parts = spec.split(",") if isinstance(spec, str) else [str(p) for p in spec]
    parts = [p for p in (p.strip() for p in parts) if p]
    if not parts:
        raise UserError("no budgets given; use e.g. --budgets 1,5,10,n100,full")
    return sorted({parse_budget(p) for p in parts})


def _seed_for(task: str, seed: int) -> int:
    digest = hashlib.sha256(f"budget|{task}|{seed}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def sample(labels: np.ndarray, classes: list[str], task: str, budget: Budget, seed: int) -> np.ndarray:
    """Positions into the pool (sorted) that ``budget`` labels for ``(task, seed)``."""
    labels = np.asarray(labels)
    if budget.kind == "full":
        return np.arange(len(labels))
    rng = np.random.default_rng(_seed_for(task, seed))
    per_class = [np.flatnonzero(labels == c) for c in range(len(classes))]
    orders = [idx[rng.permutation(len(idx))] for idx in per_class]
    if budget.kind == "per_class":
        k = int(budget.n or 0)
        for c, idx in enumerate(per_class):
            if len(idx) < k:
                raise UserError(
                    f"budget {budget.label} is larger than class {classes[c]!r} of task {task!r}, "
                    f"which has {len(idx)} items in the train pool; "
                    f"use a budget of at most {min(map(len, per_class))}/class"
                )
        take = [k] * len(classes)
    else:
        total = int(budget.n or 0)
        if total > len(labels):
            raise UserError(f"budget {budget.label} is larger than the train pool of task {task!r} "
                            f"({len(labels)} items); use full")
        sizes = np.array([len(idx) for idx in per_class], dtype=float)
        exact = total * sizes / sizes.sum()
        take_arr = np.floor(exact).astype(int)
        remainder = total - take_arr.sum()
        for c in np.argsort(-(exact - take_arr), kind="stable")[:remainder]:
            take_arr[c] += 1
        take = take_arr.tolist()
    return np.sort(np.concatenate([order[:k] for order, k in zip(orders, take)]).astype(np.int64))


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "task"


class Manifests:
    """Budget manifests of one run folder: ``DIR/manifests/<task>/<budget>/seed<k>.json``."""

    def __init__(self, out_dir: Path) -> None:
        self.root = Path(out_dir) / "manifests"

    def path(self, task: str, budget: Budget, seed: int) -> Path:
        return self.root / _slug(task) / budget.label.replace("/", "-per-") / f"seed{seed}.json"

    def positions(self, task: TaskData, budget: Budget, seed: int) -> np.ndarray:
        """Positions into ``task.train`` for (task, budget, seed); written on first use, read after.

        A manifest on disk whose ids are not in the pool (the task changed) is an error rather
        than silently resampled: results in the folder would no longer be paired.
        """
        path = self.path(task.name, budget, seed)
        index = {item: i for i, item in enumerate(task.train.ids)}
        if path.exists():
            data = json.loads(path.read_text())
            missing = [i for i in data["ids"] if i not in index]
            if missing:
                raise UserError(
                    f"manifest {path} names items not in task {task.name!r} (e.g. {missing[0]!r}); "
                    "the task data changed: use a new --out folder"
                )
            return np.sort(np.array([index[i] for i in data["ids"]], dtype=np.int64))
        pos = sample(task.train.labels, task.classes, task.name, budget, seed)
        ids = [task.train.ids[i] for i in pos]
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"task": task.name, "budget": budget.label, "seed": seed,
                                   "n": len(ids), "sha256": ids_digest(ids), "ids": ids}, indent=0))
        os.replace(tmp, path)
        return pos


def ids_digest(ids: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:16]

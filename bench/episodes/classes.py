"""The split of a task's classes into base classes (meta-training) and novel classes (evaluation episodes).

A task may declare its novel classes (:attr:`bench.tasks.TaskData.novel_classes`, class names; the
other classes are its base classes). Otherwise the protocol derives the split: ``ceil(C / 2)`` of
the ``C`` classes are novel, chosen by a generator seeded by the train and test splits' item ids
and labels, the class names and the seed (never the task's name, the encoder or the strategy), so
every strategy and encoder of a run sees the same split. Either way the split is recorded in every
episode record (``episodes.base_classes``, ``episodes.novel_classes``, ``episodes.class_split``).
Evaluation episodes are drawn from novel classes of the test split only; meta-training sees only
the base-class items of the train split.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.errors import UserError
from bench.run.budgets import pool_digest


@dataclass(frozen=True)
class ClassSplit:
    """Class indices of the task: ``base`` (meta-training) and ``novel`` (episodes), each ascending;
    ``declared``: the task declared it (else the protocol derived it)."""

    base: tuple[int, ...]
    novel: tuple[int, ...]
    declared: bool

    def record(self, classes: list[str]) -> dict[str, Any]:
        """What an episode record carries about the split (class names)."""
        return {"base_classes": [classes[c] for c in self.base], "novel_classes": [classes[c] for c in self.novel],
                "class_split": "declared" if self.declared else "derived"}


def class_split(task: Any, seed: int) -> ClassSplit:
    """The task's declared split, or the derived one of ``seed`` (see the module docstring)."""
    classes = list(task.classes)
    declared = tuple(getattr(task, "novel_classes", ()) or ())
    if declared:
        unknown = [c for c in declared if c not in classes]
        if unknown:
            raise UserError(f"task {task.name!r} declares novel classes {unknown} that are not among its classes "
                            f"{classes}; fix the task's novel_classes")
        novel = sorted({classes.index(c) for c in declared})
        if len(novel) == len(classes):
            raise UserError(f"task {task.name!r} declares every class novel; meta-training needs base classes, "
                            "so leave at least one class out of novel_classes")
        return ClassSplit(tuple(c for c in range(len(classes)) if c not in novel), tuple(novel), True)
    if len(classes) < 2:
        raise UserError(f"task {task.name!r} has {len(classes)} class; a base/novel split needs at least 2")
    key = "|".join(["classes", pool_digest(np.asarray(task.train.labels), list(task.train.ids)),
                    pool_digest(np.asarray(task.test.labels), list(task.test.ids)), "\n".join(classes), str(seed)])
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little"))
    n_novel = len(classes) - len(classes) // 2
    novel = sorted(int(c) for c in rng.permutation(len(classes))[:n_novel])
    return ClassSplit(tuple(c for c in range(len(classes)) if c not in novel), tuple(novel), False)

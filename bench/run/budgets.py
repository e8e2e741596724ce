"""Label budgets and their manifests.

A budget is ``K`` labels per class (``"5"`` -> ``5/class``), ``N`` labels in total, stratified
(``"n100"``), or the whole pool (``"full"``). Its manifest, the list of item ids it labels,
depends only on (pool, budget, seed): never on the task's name, the encoder or the strategy, so
every comparison in a run is paired, and ``mnist5k``, ``mnist5k@blur:3`` and the source side of
``mnist5k->digits`` (one pool) label the same items. Manifests are written to ``DIR/manifests/``
(format :data:`MANIFEST_VERSION`) and reused on resume.

Sampling, for each (pool, seed) with the generator seeded by :func:`pool_digest` (the pool's item
ids and labels) and the seed:

- every class's pool items are put in one seeded random order; a budget labels a *prefix* of
  each class's order: ``K/class`` the first K of every class;
- one seeded stratified order of class slots decides ``nN``: slot ``t`` goes to the class whose
  count lags its share of the pool most (``t * share_c - n_c`` largest); classes that lag (about)
  equally are drawn with the seeded generator, never by class index, so ``n5`` on ten classes
  labels different classes at different seeds. ``nN`` takes the first N slots.

Invariants (tests/test_budgets.py): every class's count in ``nN`` is ``floor`` or ``ceil`` of
``N * share_c``; at one seed every ``nN`` is contained in every ``nM`` with ``M > N`` (going from
``n9`` to ``n10`` only adds an item) and ``K/class`` in every larger ``K'/class``; and ``nN`` is
contained in ``K/class`` whenever no class has more than K items in ``nN``.
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


#: Version of the manifest format and sampling; manifests of another version are refused.
MANIFEST_VERSION = 2
#: Classes whose lag behind their share is within this of the largest lag count as tied (drawn
#: with the seeded generator). Counts stay within floor/ceil of their share (tests/test_budgets.py).
TIE_TOLERANCE = 0.1


def pool_digest(labels: np.ndarray, ids: list[str] | None = None) -> str:
    """What seeds a pool's manifests: a digest of its item ids (in pool order) and labels, not
    of its pixels, so a task and its corrupted or cross-domain variants over one pool agree."""
    h = hashlib.sha256()
    if ids is not None:
        h.update("\n".join(ids).encode())
    h.update(b"\0")
    h.update(np.asarray(labels, dtype=np.int64).tobytes())
    return h.hexdigest()[:16]


def _rng(pool: str, seed: int) -> np.random.Generator:
    digest = hashlib.sha256(f"budget|v{MANIFEST_VERSION}|{pool}|{seed}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def class_slots(sizes: list[int], n: int, rng: np.random.Generator) -> np.ndarray:
    """The first ``n`` slots of the seeded stratified order: one class index per slot."""
    size = np.asarray(sizes, dtype=float)
    share = size / size.sum()
    counts = np.zeros(len(size))
    out = np.empty(n, dtype=np.int64)
    for t in range(n):
        lag = (t + 1) * share - counts
        lag[counts >= size] = -np.inf
        near = np.flatnonzero(lag >= lag.max() - TIE_TOLERANCE)
        c = int(near[rng.integers(len(near))]) if len(near) > 1 else int(near[0])
        counts[c] += 1
        out[t] = c
    return out


def sample(labels: np.ndarray, classes: list[str], task: str, budget: Budget, seed: int,
           pool: str | None = None) -> np.ndarray:
    """Positions into the pool (sorted) that ``budget`` labels at ``seed``.

    ``pool`` (see :func:`pool_digest`) seeds the draw; by default the digest of ``labels`` alone.
    ``task`` only names the task in errors.
    """
    labels = np.asarray(labels)
    if budget.kind == "full":
        return np.arange(len(labels))
    rng = _rng(pool if pool is not None else pool_digest(labels), seed)
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
        slots = class_slots([len(idx) for idx in per_class], total, rng)
        take = np.bincount(slots, minlength=len(classes)).tolist()
    return np.sort(np.concatenate([order[:k] for order, k in zip(orders, take)]).astype(np.int64))


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "task"


class Manifests:
    """Budget manifests of one run folder: ``DIR/manifests/<task>/<budget>/seed<k>.json``."""

    def __init__(self, out_dir: Path) -> None:
        self.root = Path(out_dir) / "manifests"
        # a pool's id index and digest, by the train split object (kept, so its id is not reused)
        self._pools: dict[int, tuple[object, dict[str, int], str]] = {}
        # positions already read or written by this object, by the file's path, pool, mtime and size
        self._known: dict[tuple[str, str, int, int], np.ndarray] = {}

    def _pool(self, task: TaskData) -> tuple[dict[str, int], str]:
        entry = self._pools.get(id(task.train))
        if entry is None or entry[0] is not task.train:
            entry = (task.train, {item: i for i, item in enumerate(task.train.ids)},
                     pool_digest(task.train.labels, task.train.ids))
            self._pools[id(task.train)] = entry
        return entry[1], entry[2]

    def __getstate__(self) -> dict[str, object]:  # workers get the folder, not this process's memo
        return {"root": self.root}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__init__(Path(str(state["root"])).parent)  # type: ignore[misc]

    def path(self, task: str, budget: Budget, seed: int) -> Path:
        return self.root / _slug(task) / budget.label.replace("/", "-per-") / f"seed{seed}.json"

    def positions(self, task: TaskData, budget: Budget, seed: int) -> np.ndarray:
        """Positions into ``task.train`` for (pool, budget, seed); written on first use, read after.

        A manifest of another format version (older seeding) is refused, naming ``--out``. A
        manifest on disk whose ids are not in the pool (the task changed) is an error rather
        than silently resampled: results in the folder would no longer be paired.
        """
        index, pool = self._pool(task)
        path = self.path(task.name, budget, seed)
        known = self._known.get(self._file_key(path, pool))
        if known is not None:
            return known.copy()
        pos = self._read_or_write(task, budget, seed, index, pool)
        self._known[self._file_key(path, pool)] = pos
        return pos.copy()

    @staticmethod
    def _file_key(path: Path, pool: str) -> tuple[str, str, int, int]:
        """The memo's key: the file as it is on disk now (a file edited or removed is read again)."""
        try:
            st = path.stat()
        except OSError:
            return (str(path), pool, -1, -1)
        return (str(path), pool, st.st_mtime_ns, st.st_size)

    def _read_or_write(self, task: TaskData, budget: Budget, seed: int, index: dict[str, int],
                       pool: str) -> np.ndarray:
        path = self.path(task.name, budget, seed)
        if path.exists():
            data = json.loads(path.read_text())
            if data.get("version") != MANIFEST_VERSION:
                raise UserError(
                    f"manifest {path} was written by an older bench (budgets seeded by task name, format "
                    f"{data.get('version', 1)}, now {MANIFEST_VERSION}); use a new --out folder"
                )
            missing = [i for i in data["ids"] if i not in index]
            if missing:
                raise UserError(
                    f"manifest {path} names items not in task {task.name!r} (e.g. {missing[0]!r}); "
                    "the task data changed: use a new --out folder"
                )
            return np.sort(np.array([index[i] for i in data["ids"]], dtype=np.int64))
        pos = sample(task.train.labels, task.classes, task.name, budget, seed, pool=pool)
        ids = [task.train.ids[i] for i in pos]
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"version": MANIFEST_VERSION, "task": task.name, "pool": pool,
                                   "budget": budget.label, "seed": seed, "n": len(ids),
                                   "sha256": ids_digest(ids), "ids": ids}, indent=0))
        os.replace(tmp, path)
        return pos


def ids_digest(ids: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:16]

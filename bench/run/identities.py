"""Each cell's identity from what it is run with: the loaded encoder, the task's content, the manifests.

:func:`cell_identities` gathers a (task, encoder) pair's ingredients for
:func:`bench.run.records.identity` (the ``cell_id`` that resume matches); the grid runner, its
workers and the episode driver all call it, so a cell's id does not depend on where it runs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from bench.run.budgets import Manifests, ids_digest
from bench.run.compatibility import weights_for
from bench.run.plan import Cell, Planner, RunConfig
from bench.run.records import CellIdentity, configuration, digest
from bench.tasks import TaskData


def cell_identities(planner: Planner, task: TaskData, encoder_name: str, cells: Sequence[Cell],
                    manifests: Manifests | None, encoder: Any = None,
                    reference: TaskData | None = None) -> dict[tuple[Any, ...], CellIdentity]:
    """Each cell's identity (:func:`bench.run.records.identity`), by :meth:`Cell.key`.

    With the loaded ``encoder`` its weight fingerprint and preprocessing are ingredients; without
    it (cells skipped as incompatible, which never load one) the declared weights and planned
    input size are. ``manifests`` None: no manifest digest (skipped cells have none).
    """
    cfg = planner.cfg
    meta = planner.encoder_meta(encoder_name)
    common: dict[str, Any] = {
        "encoder": encoder_name,
        "encoder.weights": encoder.weights if encoder is not None else weights_for(cfg.weights, encoder_name)
        or meta.weights,
        "encoder.fingerprint": encoder.fingerprint() if encoder is not None else None,
        **{f"encoder.{k}": v for k, v in (encoder.preprocessing() if encoder is not None else
                                          {"input_size": planner.resolution_for(meta, task, encoder_name)
                                           or meta.input_size}
                                          ).items()},
        "task": task.name,
        "task.fingerprint": task_fingerprint(task),
        "contamination": bool(cfg.contamination),
        "pretraining_indexes.fingerprint": digest([file_digest(p) for p in pretraining_indexes(cfg, meta)])
        if cfg.contamination else None,
        "forgetting": reference.name if reference is not None else None,
        "forgetting.fingerprint": task_fingerprint(reference) if reference is not None else None,
        # bf16 and torch.compile change the numbers: a cell of their own (fp32 eager keeps its old id)
        **({"precision": cfg.precision} if cfg.precision != "fp32" else {}),
        **({"compile": True} if cfg.compile else {}),
    }
    out = {}
    budgets = {b.label: b for b in planner.budgets}
    # a group's cells share few configurations and (budget, seed) manifests: each is digested once
    configs: dict[tuple[str, str], CellIdentity] = {}
    digests: dict[tuple[str, int], str | None] = {}
    for cell in cells:
        if (cell.strategy, cell.config_id) not in configs:
            options = {f"option.{k}": v for k, v in cell.config}
            if options.get("option.tune"):  # --tune: the candidates it chooses among change the numbers
                options["tune.candidates"] = dict(getattr(planner.strategy(cell.strategy), "tunable", {}))
            configs[cell.strategy, cell.config_id] = configuration({"strategy": cell.strategy, **options, **common})
        if (cell.budget, cell.seed) not in digests:
            positions = manifests.positions(task, budgets[cell.budget], cell.seed) if manifests is not None else None
            digests[cell.budget, cell.seed] = (ids_digest([task.train.ids[int(i)] for i in positions])
                                               if positions is not None else None)
        out[cell.key()] = configs[cell.strategy, cell.config_id].at(cell.budget, digests[cell.budget, cell.seed],
                                                                   cell.seed)
    return out


def task_fingerprint(task: TaskData) -> str:
    """One digest of the content fingerprints of every split of ``task``."""
    return digest({name: split.fingerprint() for name, split in task.splits().items()})


def pretraining_indexes(cfg: RunConfig, meta: Any) -> list[str]:
    """The hash indexes a group's contamination checks read: ``--pretraining-index`` and the encoder's own."""
    return [*cfg.pretraining_indexes, *([str(meta.pretraining_index)] if meta.pretraining_index else [])]


def file_digest(path: str) -> str:
    """sha256 of a file's bytes (a path that cannot be read digests as its name: loading it fails later)."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError:
        h.update(f"unreadable:{path}".encode())
    return h.hexdigest()

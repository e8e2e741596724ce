"""The record schema, the record builder and the append-only ``results.jsonl``.

One JSON object per cell (see DESIGN.md for the contract). Fields always present:
``schema``, ``encoder``, ``strategy``, ``task``, ``budget``, ``seed``, ``config_id``, ``status``
(``ok`` / ``failed`` / ``skipped``), ``error``, ``metrics``, ``trainable_params``,
``total_params``, ``trainable_share``, ``wall_s``, ``peak_mem_mb``, ``device``, ``versions``.
A cell is identified by (encoder, strategy, task, budget, seed, config_id): resume skips cells
whose key already has an ``ok`` or ``skipped`` record; ``failed`` cells are tried again.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench import __version__
from bench.errors import UserError
from bench.tasks import TaskData

SCHEMA_VERSION = 1
KEY_FIELDS = ("encoder", "strategy", "task", "budget", "seed", "config_id")
REQUIRED_FIELDS = (
    "schema", *KEY_FIELDS, "status", "error", "metrics", "trainable_params", "total_params",
    "wall_s", "peak_mem_mb", "device", "versions",
)


def cell_key(record: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(record.get(f) for f in KEY_FIELDS)


class ResultsFile:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def load(self) -> list[dict[str, Any]]:
        """Every record; a line that is not a JSON object is an error naming the file and line."""
        if not self.path.exists():
            return []
        records = []
        with self.path.open(encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise UserError(
                        f"{self.path}:{lineno} is not valid JSONL ({exc.msg}); "
                        "fix or delete that line, or use another --out"
                    ) from None
                if not isinstance(rec, dict) or "status" not in rec or "encoder" not in rec:
                    raise UserError(f"{self.path}:{lineno} is not a transfer-bench record; use another --out")
                if rec.get("schema", 0) > SCHEMA_VERSION:
                    raise UserError(f"{self.path}:{lineno} has record schema {rec['schema']}, newer than this "
                                    f"transfer-bench ({SCHEMA_VERSION}); upgrade transfer-bench")
                records.append(rec)
        return records

    def done_keys(self) -> set[tuple[Any, ...]]:
        return {cell_key(r) for r in self.load() if r.get("status") in ("ok", "skipped")}

    def append(self, record: dict[str, Any]) -> None:
        """Append one record as one line, in one write, flushed to disk before returning."""
        line = json.dumps(record, sort_keys=True, default=json_default) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())


def latest(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per cell key: the last one written wins (a retried failed cell, for example)."""
    by_key: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in records:
        by_key[cell_key(r)] = r
    return list(by_key.values())


def json_default(obj: Any) -> Any:
    """The one JSON encoder for records: NumPy and torch scalars as numbers, arrays as lists,
    sets as lists, anything else as its string (a record write never fails on a stray value)."""
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if hasattr(obj, "item"):  # NumPy and torch scalars
        try:
            return obj.item()
        except (ValueError, RuntimeError):  # a tensor of several numbers
            return obj.tolist()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    return str(obj)


def jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON values (what reading the record back gives)."""
    return json.loads(json.dumps(obj, default=json_default))


def versions() -> dict[str, str]:
    """The package versions recorded with every cell (those already imported)."""
    out = {"transfer-bench": __version__, "python": platform.python_version()}
    for mod in ("torch", "timm", "sklearn", "numpy"):
        m = sys.modules.get(mod)
        if m is not None:
            out[mod] = getattr(m, "__version__", "?")
    return out


def base_record(cell: Any, task: TaskData, device: str, encoder_info: dict[str, Any]) -> dict[str, Any]:
    """A cell's record before it runs (status ``skipped``, no metrics): key, config, task and
    encoder descriptions, versions and a timestamp."""
    return {
        "schema": SCHEMA_VERSION,
        "encoder": cell.encoder,
        "strategy": cell.strategy,
        "task": cell.task,
        "budget": cell.budget,
        "seed": cell.seed,
        "config_id": cell.config_id,
        "config": jsonable(dict(cell.config)),
        "status": "skipped",
        "error": None,
        "metrics": {},
        "trainable_params": 0,
        "total_params": 0,
        "trainable_share": 0.0,
        "wall_s": 0.0,
        "peak_mem_mb": 0.0,
        "device": device,
        "encoder_info": encoder_info,
        "task_info": {
            "dataset": list(task.dataset),
            "split": task.split_info,
            "pool": len(task.train),
            "test": len(task.test),
            "skipped_items": task.skipped_items,
            "source_domain": task.source_domain,
            "target_domain": task.target_domain,
            "shifted": task.shifted,
        },
        "versions": versions(),
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }

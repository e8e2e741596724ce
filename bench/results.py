"""The record schema and the append-only ``results.jsonl``.

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
from pathlib import Path
from typing import Any

from bench.errors import UserError

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
                        f"{self.path}:{lineno} is not valid JSONL ({exc.msg}); fix or delete that line, or use another --out"
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
        line = json.dumps(record, sort_keys=True, default=_json_default) + "\n"
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


def _json_default(obj: Any) -> Any:
    try:
        import numpy as np

        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, tuple)):
        return list(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} in a record")

"""The record schema, the record builder and the append-only ``results.jsonl``.

One JSON object per cell (see DESIGN.md for the contract). Fields always present:
``schema``, ``encoder``, ``strategy``, ``task``, ``budget``, ``seed``, ``config_id``, ``status``
(``ok`` / ``failed`` / ``skipped``), ``error``, ``metrics``, ``trainable_params``,
``total_params``, ``trainable_share``, ``wall_s``, ``peak_mem_mb``, ``device``, ``versions``,
and since schema 2 ``protocol``, ``cell_id``, ``config_digest`` and ``config_summary``.

A cell is identified by ``cell_id``: a digest of its whole effective configuration (see
:func:`identity`): every strategy option value, the encoder's name, weights and preprocessing, the
task's content, the contamination checks, the budget's manifest, the seed and
:data:`PROTOCOL_VERSION`. ``config_digest`` is the same digest without the budget, manifest and
seed ("the same configuration" across seeds and budgets); ``config_summary`` lists its
ingredients readably (fingerprints shortened) so two configurations can be told apart.
``config_id`` stays a human label of the options changed from the defaults. Resume skips cells
whose ``cell_id`` already has an ``ok`` or ``skipped`` record; ``failed`` cells are tried again,
and schema-1 records (no ``cell_id``) never count as done.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench import __version__
from bench.errors import UserError
from bench.tasks import TaskData

#: Version of the record layout. 2: ``protocol``, ``cell_id``, ``config_digest``, ``config_summary``.
SCHEMA_VERSION = 2
#: Version of the protocol: bump it whenever a default (a strategy's option, the training
#: recipe, a probe's scaling, a detector's threshold, how budgets are drawn) or a protocol rule
#: changes, so that every cell gets a new ``cell_id`` and resume re-runs it instead of keeping
#: numbers made under the old rules. 1: the first runs; 2: issue 10 (cell identity, new defaults);
#: 3: issues 21-25 (threads per cell, channels_last, subspace probe...: docs/protocol.md).
PROTOCOL_VERSION = 3
#: The human-readable key of a cell (two records with the same key may differ in configuration).
KEY_FIELDS = ("encoder", "strategy", "task", "budget", "seed", "config_id")
IDENTITY_FIELDS = ("protocol", "cell_id", "config_digest", "config_summary")
REQUIRED_FIELDS = (
    "schema", *KEY_FIELDS, *IDENTITY_FIELDS, "status", "error", "metrics", "trainable_params",
    "total_params", "wall_s", "peak_mem_mb", "device", "versions",
)
#: Fingerprints in ``config_summary`` are shortened to this many hex digits.
SUMMARY_DIGITS = 12


def cell_key(record: dict[str, Any]) -> tuple[Any, ...]:
    """One cell's key: its ``cell_id`` (schema 2), else the readable key fields (schema 1)."""
    if record.get("cell_id"):
        return ("cell_id", record["cell_id"])
    return tuple(record.get(f) for f in KEY_FIELDS)


def digest(value: Any) -> str:
    """A stable 16-hex-digit digest of a JSON-able value (dict keys sorted)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=json_default)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class CellIdentity:
    """What a record says about its configuration (:func:`identity`)."""

    cell_id: str
    config_digest: str
    config_summary: dict[str, Any]

    def fields(self) -> dict[str, Any]:
        return {"protocol": PROTOCOL_VERSION, "cell_id": self.cell_id, "config_digest": self.config_digest,
                "config_summary": dict(self.config_summary)}

    def at(self, budget: str, manifest: str | None, seed: int) -> CellIdentity:
        """This configuration's identity at one budget, manifest digest and seed."""
        cell_id = digest({"config": self.config_digest, "budget": budget, "manifest": manifest, "seed": seed})
        return CellIdentity(cell_id, self.config_digest, self.config_summary)


def identity(ingredients: dict[str, Any], budget: str, manifest: str | None, seed: int) -> CellIdentity:
    """A cell's identity from the flat ``ingredients`` of its configuration (``name -> value``,
    every value that can change the record) and its budget, manifest digest and seed: its
    :func:`configuration` :meth:`~CellIdentity.at` that budget, manifest and seed.

    Values whose key ends in ``fingerprint`` are content hashes: they are digested in full and
    shown shortened in the summary.
    """
    return configuration(ingredients).at(budget, manifest, seed)


def configuration(ingredients: dict[str, Any]) -> CellIdentity:
    """What every cell of one configuration shares (its ``cell_id`` is empty: see :meth:`CellIdentity.at`)."""
    config = {"protocol": PROTOCOL_VERSION, **ingredients}
    summary = {k: (v[:SUMMARY_DIGITS] if k.endswith("fingerprint") and isinstance(v, str) else v)
               for k, v in sorted(config.items())}
    return CellIdentity("", digest(config), jsonable(summary))


#: The longest line read as a record (records are a few kB); a longer one is refused, not loaded.
MAX_LINE_BYTES = 16 * 2**20


class ResultsFile:
    """``results.jsonl``: one record per line, appended by one writer (the run's lock holder).

    A kill during an append can leave a torn last line (no newline at its end): :meth:`load`
    reports it with a warning and leaves it out, and :meth:`drop_torn_tail` (called by the runner
    before it appends) cuts it off, so the next record starts on a line of its own.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _lines(self) -> Iterator[tuple[int, bytes, bool]]:
        """``(line number, bytes, complete)``; a line longer than :data:`MAX_LINE_BYTES` is an error."""
        with self.path.open("rb") as f:
            lineno = 0
            while line := f.readline(MAX_LINE_BYTES + 1):
                lineno += 1
                if len(line) > MAX_LINE_BYTES:
                    raise self.too_long(lineno)
                yield lineno, line, line.endswith(b"\n")

    def too_long(self, lineno: int) -> UserError:
        return UserError(f"{self.path}:{lineno} is longer than {MAX_LINE_BYTES // 2**20} MiB, not a "
                         "transfer-bench record; use another --out")

    def torn_tail(self) -> int:
        """Bytes of a torn last line (0 if the file ends with a newline or does not exist)."""
        if not self.path.exists():
            return 0
        with self.path.open("rb") as f:
            pos = size = f.seek(0, os.SEEK_END)
            while pos > 0:  # walk back to the last newline
                step = min(65536, pos)
                f.seek(pos - step)
                nl = f.read(step).rfind(b"\n")
                if nl >= 0:
                    return size - (pos - step + nl + 1)
                pos -= step
            return size

    def drop_torn_tail(self, log: Any = None) -> int:
        """Cut off a torn last line left by an interrupted append; returns the bytes dropped."""
        torn = self.torn_tail()
        if torn:
            size = self.path.stat().st_size
            with self.path.open("r+b") as f:
                f.truncate(size - torn)
                f.flush()
                os.fsync(f.fileno())
            msg = (f"{self.path}: dropped a torn last line ({torn} bytes) left by an interrupted write; "
                   "its cell runs again")
            (log or _warn)(msg)
        return torn

    def load(self) -> list[dict[str, Any]]:
        """Every record; a line that is not a JSON object is an error naming the file and line
        (a torn last line is left out with a warning)."""
        if not self.path.exists():
            return []
        return [rec for lineno, raw, complete in self._lines() if (rec := self.parse(lineno, raw, complete))]

    def parse(self, lineno: int, raw: bytes | bytearray, complete: bool) -> dict[str, Any] | None:
        """Line ``lineno`` as a checked record; None for a blank line or a torn last one (warned)."""
        if not raw.strip():
            return None
        try:
            rec = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            if not complete:
                _warn(f"{self.path}:{lineno}: torn last line ({len(raw)} bytes, an interrupted write) left out")
                return None
            why = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
            raise UserError(f"{self.path}:{lineno} is not valid JSONL ({why}); "
                            "fix or delete that line, or use another --out") from None
        if not isinstance(rec, dict) or "status" not in rec or "encoder" not in rec:
            raise UserError(f"{self.path}:{lineno} is not a transfer-bench record; use another --out")
        schema = rec.get("schema", 0)
        if not isinstance(schema, int) or isinstance(schema, bool):
            raise UserError(f"{self.path}:{lineno} has a record schema {_short(schema)} that is not a number; "
                            "use another --out")
        if schema > SCHEMA_VERSION:
            raise UserError(f"{self.path}:{lineno} has record schema {schema}, newer than this "
                            f"transfer-bench ({SCHEMA_VERSION}); upgrade transfer-bench")
        return rec

    def done_keys(self) -> set[tuple[Any, ...]]:
        return {cell_key(r) for r in self.load() if r.get("status") in ("ok", "skipped")}

    def done_ids(self) -> set[str]:
        """``cell_id`` of every finished (``ok`` or ``skipped``) cell; schema-1 records have none."""
        return {str(r["cell_id"]) for r in self.load() if r.get("status") in ("ok", "skipped") and r.get("cell_id")}

    def append(self, record: dict[str, Any]) -> None:
        """Append one record as one line, in one ``write`` on an ``O_APPEND`` descriptor, on disk
        (fsync) before returning: a kill leaves the line whole or torn at the end, never mixed."""
        data = (json.dumps(record, sort_keys=True, default=json_default) + "\n").encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)


def _warn(message: str) -> None:
    print(f"bench: warning: {message}", file=sys.stderr)


def _short(value: Any) -> str:
    return text if len(text := repr(value)) <= 40 else text[:37] + "..."


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


@functools.lru_cache(maxsize=1)
def source_commit() -> str | None:
    """The git commit of the source tree this process runs (``-dirty`` with uncommitted changes),
    or None outside a git checkout (an installed wheel) or without git. Asked once per process."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    cmd = ["git", "-C", str(root), "describe", "--always", "--dirty", "--abbrev=40", "--match=none-such"]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=5, check=True).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict[str, str]:
    """Versions recorded with every cell: imported packages', and ``git_commit`` in a checkout."""
    out = {"transfer-bench": __version__, "python": platform.python_version()}
    out.update({mod: getattr(m, "__version__", "?") for mod in ("torch", "timm", "sklearn", "numpy")
                if (m := sys.modules.get(mod)) is not None})
    commit = source_commit()
    if commit:
        out["git_commit"] = commit
    return out


def base_record(cell: Any, task: TaskData, device: str, encoder_info: dict[str, Any],
                cell_identity: CellIdentity | None = None) -> dict[str, Any]:
    """A cell's record before it runs (status ``skipped``, no metrics): key, identity, config,
    task and encoder descriptions, versions and a timestamp."""
    ident = cell_identity.fields() if cell_identity is not None else dict.fromkeys(IDENTITY_FIELDS)
    return {
        "schema": SCHEMA_VERSION,
        **ident,
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

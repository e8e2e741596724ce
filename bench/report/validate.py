"""``bench validate RUN``: is a results folder fit to publish? Schema, manifests, seeds, failures.

Checks, each problem one line naming the record (file:line) and what to do:

- every record has the fields its ``schema`` version requires (:data:`bench.run.records.REQUIRED_FIELDS`
  for schema 2; schema 1: the key fields, status, metrics and versions), a known ``schema``, a known
  ``status``, and ``ok`` records have a numeric accuracy;
- manifests: for one (task, budget, seed) every record, of every folder given and of the
  published records passed as reference, uses the same label manifest (``manifest_sha256``);
- seeds: every (task, encoder, strategy, configuration) row has, at each budget it ran, every seed
  that task and budget was run with (a missing seed is a hidden failure);
- failures are not hidden: a ``failed`` record says why (``error``).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.errors import UserError
from bench.report.aggregate import config_key, strategy_label
from bench.run.records import KEY_FIELDS, REQUIRED_FIELDS, SCHEMA_VERSION

STATUSES = ("ok", "failed", "skipped")
SCHEMA1_FIELDS = (*KEY_FIELDS, "status", "metrics", "versions")


def read(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """``(where, record)`` for each line of a folder's ``results.jsonl`` (or of a .jsonl file)."""
    file = path if path.suffix == ".jsonl" else path / "results.jsonl"
    from bench.report.runs import has_side_files

    if not file.exists() and has_side_files(path):
        return []  # a folder of few-shot episodes or a rank result only (bench.report.runs)
    if not file.exists():
        raise UserError(f"no results found at {str(file)!r}; pass a folder written by `bench run --out DIR`")
    out = []
    for i, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            rec = None
        out.append((f"{file}:{i}", rec if isinstance(rec, dict) else {"_unreadable": line[:60]}))
    return out


def _schema_problems(where: str, r: dict[str, Any]) -> list[str]:
    if "_unreadable" in r:
        return [f"{where}: not a JSON record ({r['_unreadable']!r})"]
    schema = r.get("schema")
    if not isinstance(schema, int) or not 1 <= schema <= SCHEMA_VERSION:
        return [f"{where}: schema {schema!r} is not one this version reads (1..{SCHEMA_VERSION}); "
                "upgrade transfer-bench"]
    need = REQUIRED_FIELDS if schema >= 2 else SCHEMA1_FIELDS
    missing = [f for f in need if f not in r]
    if missing:
        return [f"{where}: missing field(s) {', '.join(missing)} for schema {schema}; re-run with `bench run`"]
    out = []
    if r["status"] not in STATUSES:
        out.append(f"{where}: status {r['status']!r} is not one of {', '.join(STATUSES)}")
    if r["status"] == "ok" and not isinstance((r.get("metrics") or {}).get("accuracy"), (int, float)):
        out.append(f"{where}: an ok record without a numeric metrics.accuracy")
    if r["status"] == "failed" and not r.get("error"):
        out.append(f"{where}: a failed record that does not say why (empty error)")
    return out


def problems(dirs: list[str | Path], reference: list[dict[str, Any]] | None = None) -> list[str]:
    """Every problem found in ``dirs`` (checked together, as ``bench publish`` would merge them)."""
    lines = [(w, r) for d in dirs for w, r in read(Path(d))]
    out = [p for w, r in lines for p in _schema_problems(w, r)]
    good = [(w, r) for w, r in lines if not _schema_problems(w, r)]
    manifests: dict[tuple[Any, ...], dict[str, str]] = defaultdict(dict)
    for r in reference or []:
        if r.get("manifest_sha256"):
            manifests[(r["task"], r["budget"], r["seed"])].setdefault(r["manifest_sha256"], "the published records")
    for w, r in good:
        if r.get("manifest_sha256") and r.get("status") == "ok":
            manifests[(r["task"], r["budget"], r["seed"])].setdefault(r["manifest_sha256"], w)
    for (task, budget, seed), seen in sorted(manifests.items(), key=str):
        if len(seen) > 1:
            where = "; ".join(f"{m} at {w}" for m, w in seen.items())
            out.append(f"{task} {budget} seed {seed}: label manifests differ ({where}); every submission must draw "
                       "the published manifests (same task content and transfer-bench protocol)")
    asked: dict[tuple[str, str], set[Any]] = defaultdict(set)
    have: dict[tuple[str, str, str, str, str], set[Any]] = defaultdict(set)
    for _, r in good:
        if r["status"] == "skipped":
            continue
        asked[(r["task"], r["budget"])].add(r["seed"])
        have[(r["task"], r["encoder"], strategy_label(r), config_key(r), r["budget"])].add(r["seed"])
    for (task, enc, strat, _, budget), seeds in sorted(have.items(), key=str):
        missing = sorted(asked[(task, budget)] - seeds, key=str)
        if missing:
            out.append(f"{task} {enc} {strat} {budget}: no record for seed(s) {', '.join(map(str, missing))} "
                       "(run them, or keep their failed records: a missing seed hides a failure)")
    return out

"""bench.record.Record names every field a record carries: the published records and a fresh run's
records have exactly its required keys plus some of its optional ones, with the declared kinds."""

from __future__ import annotations

import json
import typing
from pathlib import Path

import pytest

from bench.record import Metrics, Record

ROOT = Path(__file__).resolve().parents[1]
REQUIRED = set(Record.__required_keys__)
OPTIONAL = set(Record.__optional_keys__)
PYTHON_TYPES = {"int": int, "float": (int, float), "str": str, "dict": dict, "list": list}


def _check(rec: dict) -> list[str]:
    problems = [f"missing {k}" for k in sorted(REQUIRED - set(rec))]
    problems += [f"undeclared {k}" for k in sorted(set(rec) - REQUIRED - OPTIONAL)]
    problems += [f"undeclared metric {k}" for k in sorted(set(rec.get("metrics") or {}) - set(Metrics.__annotations__))]
    hints = typing.get_type_hints(Record)
    for key in ("schema", "seed", "trainable_params", "total_params", "wall_s", "peak_mem_mb", "task", "budget"):
        want = PYTHON_TYPES[getattr(hints[key], "__name__", str(hints[key]))]
        if key in rec and not isinstance(rec[key], want):
            problems.append(f"{key} is {type(rec[key]).__name__}")
    if rec.get("status") not in typing.get_args(hints["status"]):
        problems.append(f"status {rec.get('status')!r}")
    return problems


def test_the_check_sees_a_bad_record():
    assert _check({"status": "done", "metrics": {"acuracy": 1.0}})[:1] == ["missing budget"]
    assert "status 'done'" in _check({"status": "done"}) and "undeclared metric acuracy" in _check(
        {"metrics": {"acuracy": 1.0}})


def test_every_published_record_matches_the_record_type():
    path = ROOT / "leaderboard" / "results.jsonl"
    if not path.exists():
        pytest.skip("no published leaderboard in this checkout")
    bad = {}
    for i, line in enumerate(path.read_text().splitlines()):
        if line.strip() and (problems := _check(json.loads(line))):
            bad[i] = problems
    assert bad == {}


def test_a_fresh_runs_records_match_the_record_type(tmp_path, monkeypatch):
    from bench.plugins import load_plugins
    from bench.run.plan import RunConfig
    from bench.run.runner import Runner

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = RunConfig(encoders=["pixels"], strategies=["linear-probe", "scratch"], tasks=["digits"], budgets="1",
                    seeds=1, out=tmp_path, progress=False)
    Runner(cfg, load_plugins()).run()
    records = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert {r["status"] for r in records} == {"ok", "skipped"}
    assert {i: p for i, r in enumerate(records) if (p := _check(r))} == {}

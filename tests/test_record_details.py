"""Small record details that change what a reader sees: the resolution an encoder really ran at,
and task fields (zero-shot prompt names) that survive a corruption shift."""

from __future__ import annotations

import json

import pytest

from bench.loading import TaskLoader
from bench.plugins import load_plugins
from bench.run.plan import RunConfig
from bench.run.runner import Runner


def test_pixels_records_the_native_size_it_ran_at(tmp_path, monkeypatch):
    """pixels has no declared size that fits every task (its metadata says 16); its features on
    digits are 8x8, and the record used to say 16."""
    monkeypatch.setenv("BENCH_DISABLE_PLUGINS", "broken")
    cfg = RunConfig(encoders=["pixels"], strategies=["linear-probe"], tasks=["digits"], budgets="1", seeds=1,
                    out=tmp_path / "run", device="cpu", progress=False, forgetting="off", contamination=False)
    Runner(cfg, load_plugins()).run()
    (rec,) = [json.loads(line) for line in (tmp_path / "run" / "results.jsonl").read_text().splitlines()]
    assert rec["status"] == "ok"
    assert rec["encoder_info"]["resolution"] == 8


def test_corruption_shift_keeps_the_base_task_prompts(monkeypatch):
    monkeypatch.setenv("BENCH_DISABLE_PLUGINS", "broken")
    load = TaskLoader(load_plugins())
    base, shifted = load("digits"), load("digits@blur:3")
    assert base.extra["prompt_names"]
    assert shifted.extra["prompt_names"] == base.extra["prompt_names"]
    assert shifted.extra["corruption"] == "blur"


def test_records_name_the_source_commit_they_ran():
    """Guards against published numbers that cannot be traced to code: in a git checkout every
    record's ``versions.git_commit`` is the checkout's HEAD (``-dirty`` with uncommitted changes)."""
    import subprocess
    from pathlib import Path

    from bench.run.records import source_commit, versions

    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        pytest.skip("not a git checkout")
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert source_commit() is not None and source_commit().split("-")[0] == head
    assert versions()["git_commit"] == source_commit()

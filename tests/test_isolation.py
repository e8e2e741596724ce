"""Isolation (issue 12): a strategy that raises, loses to NaN, runs out of memory or past
``--cell-timeout`` is a failed record with its reason, the grid goes on, and ``--retry-failed``
runs exactly the failed cells."""

from __future__ import annotations

import json
import time

import pytest

from bench.plugins import load_plugins
from bench.run.plan import RunConfig
from bench.run.runner import Runner
from tests.reliability import misbehaving_plugin


@pytest.fixture
def plugins(with_plugins, monkeypatch, tmp_path):
    monkeypatch.setenv("BENCH_DISABLE_PLUGINS", "broken")
    monkeypatch.syspath_prepend(str(misbehaving_plugin(tmp_path / "plug")))
    return load_plugins()


def config(tmp_path, strategies, **kw) -> RunConfig:
    base = dict(encoders=["toy-cnn"], strategies=strategies, tasks=["toy-blobs"], budgets="2", seeds=1,
                out=tmp_path / "run", device="cpu", progress=False, forgetting="off", contamination=False)
    return RunConfig(**{**base, **kw})


def read(tmp_path):
    return [json.loads(line) for line in (tmp_path / "run/results.jsonl").read_text().splitlines()]


def test_oom_nan_and_timeout_are_failed_records_with_their_reason_and_the_grid_goes_on(tmp_path, plugins):
    """Guards against a NaN model recorded as ``ok`` with accuracy 0 (old code), against a
    --cell-timeout that did not exist (a looping strategy hung the grid), and keeps MemoryError
    and CUDA's OOM as ``oom``."""
    strategies = ["oom", "cuda-oom", "nan", "loop", "toy-centroid"]
    start = time.monotonic()
    Runner(config(tmp_path, strategies, cell_timeout=1.0), plugins).run()
    assert time.monotonic() - start < 60
    by = {r["strategy"]: r for r in read(tmp_path)}
    assert {s: by[s]["status"] for s in strategies} == {"oom": "failed", "cuda-oom": "failed", "nan": "failed",
                                                          "loop": "failed", "toy-centroid": "ok"}
    assert {s: by[s]["reason"] for s in strategies[:4]} == {"oom": "oom", "cuda-oom": "oom", "nan": "diverged",
                                                             "loop": "timeout"}
    assert by["loop"]["error"] == "CellTimeout: cell ran past --cell-timeout 1 s"
    assert 0.9 <= by["loop"]["wall_s"] < 10
    assert by["nan"]["error"] == "FloatingPointError: predict() returned 30 non-finite class indices"


def test_retry_failed_runs_exactly_the_failed_cells(tmp_path, plugins):
    """Guards against --retry-failed running anything else: cells never run and finished cells
    are left alone; a plain resume runs the never-run cells (and the failed ones)."""
    Runner(config(tmp_path, ["oom", "toy-centroid"]), plugins).run()
    assert len(read(tmp_path)) == 2
    bigger = config(tmp_path, ["oom", "toy-centroid"], retry_failed=True)
    bigger.budgets = "2,3"  # 2 cells never run: --retry-failed leaves them
    again = Runner(bigger, plugins).run()
    assert [(r["strategy"], r["budget"], r["status"]) for r in again] == [("oom", "2/class", "failed")]
    resumed = Runner(config(tmp_path, ["oom", "toy-centroid"], budgets="2,3"), plugins).run()
    assert sorted((r["strategy"], r["budget"]) for r in resumed) == [("oom", "2/class"), ("oom", "3/class"),
                                                                     ("toy-centroid", "3/class")]


def test_cell_timeout_flag_and_toml_key(tmp_path):
    """--cell-timeout and run.toml's cell_timeout reach RunConfig; a bad value is one line."""
    from bench.cli import build_parser, run_config_from_args
    from bench.errors import UserError

    args = build_parser().parse_args(["run", "--cell-timeout", "90", "--retry-failed"])
    cfg = run_config_from_args(args)
    assert (cfg.cell_timeout, cfg.retry_failed) == (90.0, True)
    toml = tmp_path / "run.toml"
    toml.write_text("cell_timeout = 2.5\n")
    assert run_config_from_args(build_parser().parse_args(["run", "-c", str(toml)])).cell_timeout == 2.5
    with pytest.raises(UserError, match="--cell-timeout -1.0: use a positive number of seconds"):
        run_config_from_args(build_parser().parse_args(["run", "--cell-timeout", "-1"]))

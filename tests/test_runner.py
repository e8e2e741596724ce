"""The unit of work executors ship: cell groups pickle, run in another process, and give the local records."""

from __future__ import annotations

import json
import multiprocessing
import pickle

import pytest

import bench
from bench.plugins import load_plugins
from bench.run.plan import RunConfig
from bench.run.runner import Runner
from bench.run.worker import CellGroup, run_group, run_group_records
from bench.specs import ExecutorSpec

VOLATILE = {"wall_s", "peak_mem_mb", "timestamp", "versions", "device_info"}  # device_info: the process's thread count


def config(tmp_path, **kw) -> RunConfig:
    base = dict(encoders=["toy-cnn"], strategies=["toy-centroid", "linear-probe"], tasks=["toy-blobs"], budgets="2",
                seeds=2, out=tmp_path / "run", device="cpu", progress=False, forgetting="off")
    base.update(kw)
    return RunConfig(**base)


def stable(records):
    return sorted(json.dumps({k: v for k, v in r.items() if k not in VOLATILE}, sort_keys=True) for r in records)


@pytest.fixture
def local(tmp_path, with_plugins, monkeypatch):
    """A local run's records, and the groups (without a session) that the same run hands executors."""
    monkeypatch.setenv("BENCH_DISABLE_PLUGINS", "broken")
    runner = Runner(config(tmp_path), load_plugins())
    records = runner.run()
    runner.device = "cpu"
    groups = list(runner.groups([c for c in runner.plan().cells]))
    return records, groups


def test_a_pickled_group_gives_the_local_records(local):
    records, [group] = local
    assert isinstance(group, CellGroup) and group.session == "" and len(group.cells) == 4
    again = list(run_group(pickle.loads(pickle.dumps(group))))
    assert stable(again) == stable(records)


def test_a_group_runs_in_a_spawned_process(local):
    records, [group] = local
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        again = pool.apply(run_group_records, (group,))
    assert stable(again) == stable(records)


class PicklingExecutor:
    """A third-party executor on the current protocol: every group goes through pickle, last group first."""

    def run(self, groups):
        for group in reversed(list(groups)):
            yield from run_group(pickle.loads(pickle.dumps(group)))


def executor_plugin(name: str, executor: type) -> type:
    """A plugin (as load_plugins(extra=...) takes it) that registers ``executor`` as ``name``."""

    class Plugin:
        @staticmethod
        @bench.hookimpl
        def bench_register_executors():
            return [ExecutorSpec(name=name, description=executor.__doc__ or name, loader=executor)]

    return Plugin


def test_plugin_executor_on_the_group_protocol(tmp_path, with_plugins, monkeypatch):
    monkeypatch.setenv("BENCH_DISABLE_PLUGINS", "broken")
    p = load_plugins(extra=[("pickling", executor_plugin("pickling", PicklingExecutor))])
    local = Runner(config(tmp_path, out=tmp_path / "a", encoders=["toy-cnn", "pixels"]), p).run()
    shipped = Runner(config(tmp_path, out=tmp_path / "b", encoders=["toy-cnn", "pixels"], executor="pickling"), p).run()
    assert [r["encoder"] for r in shipped] == ["pixels"] * 4 + ["toy-cnn"] * 4
    assert stable(shipped) == stable(local)


class OldExecutor:
    """An executor on the first API: run(cells, run_cell)."""

    def run(self, cells, run_cell):
        for cell in cells:
            yield run_cell(cell)


def test_executors_on_the_first_protocol_still_run_with_a_warning(tmp_path, with_plugins, monkeypatch):
    monkeypatch.setenv("BENCH_DISABLE_PLUGINS", "broken")
    p = load_plugins(extra=[("old", executor_plugin("old", OldExecutor))])
    with pytest.warns(DeprecationWarning, match="run\\(cells, run_cell\\)"):
        records = Runner(config(tmp_path, executor="old"), p).run()
    assert len(records) == 4 and all(r["status"] == "ok" for r in records)

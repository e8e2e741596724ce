"""Every mode of ``bench run`` (budget grid, ``--stream``, ``--episodes``) on one run folder and one
dispatch: stream and episode cells run as cell groups on the executors (``--jobs``, ray) with the
local records, under ``--cell-timeout``, resume, and meet the run lock."""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np
import pytest

import bench
from bench.continual.spec import ContinualSpec
from bench.episodes.driver import EpisodeRunner
from bench.errors import UserError
from bench.plugins import load_plugins
from bench.run import dispatch
from bench.run.lock import RunLock
from bench.run.plan import RunConfig
from bench.run.runner import Runner
from bench.specs import StrategySpec
from bench.strategies import Fitted
from tests.test_continual import NearestMean, StreamFixture
from tests.test_executors import stable

#: a two-task stream on the bench-toy fixture (installed, so worker processes find it by entry point)
STREAM = dict(stream="toy-blobs,digits", encoders=["toy-cnn"], strategies=["continual:finetune", "continual:lwf"],
              budgets="1", seeds=1, device="cpu", progress=False, resolution=16,
              options=[(None, "min_steps", 2), (None, "max_steps", 2), (None, "augment", "none")])
#: episodes on built-ins only: two groups (one per task), two strategies each
EPISODES = dict(episodes="5:1:3:4", tasks=["digits", "mnist5k"], encoders=["pixels"], strategies=["prototype", "knn"],
                seeds=1, device="cpu", progress=False, forgetting="off", contamination=False)


def run(mode, out, executor="local", executor_options=None, plugins=None, **kw):
    base = STREAM if mode == "stream" else EPISODES
    cfg = RunConfig(**{**base, **kw}, out=out, executor=executor, executor_options=dict(executor_options or {}))
    return dispatch.driver(cfg, plugins or load_plugins(), log=lambda m: None).run()


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def toy_site(plugin_site):
    """bench-toy on this process's path and in the environment its workers inherit."""
    old = dict(os.environ)
    sys.path.insert(0, str(plugin_site))
    os.environ["PYTHONPATH"] = os.pathsep.join([str(plugin_site), *filter(None, [old.get("PYTHONPATH")])])
    os.environ["BENCH_DISABLE_PLUGINS"] = "broken"
    yield plugin_site
    sys.path.remove(str(plugin_site))
    os.environ.clear()
    os.environ.update(old)


@pytest.fixture(scope="module")
def local(toy_site, tmp_path_factory):
    root = tmp_path_factory.mktemp("local")
    stream, episodes = run("stream", root / "stream"), run("episodes", root / "episodes")
    assert [r["status"] for r in stream] == ["ok", "ok"] and len(episodes) == 4
    assert {r["status"] for r in episodes} == {"ok"}
    return {"stream": stream, "episodes": episodes}


@pytest.fixture(scope="module")
def ray_instance(toy_site):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.parametrize("mode", ["stream", "episodes"])
@pytest.mark.parametrize("executor,options", [("local", {"jobs": 2}), ("ray", {})])
def test_stream_and_episode_cells_on_an_executor_give_the_local_records(tmp_path, local, mode, executor, options,
                                                                        request):
    """Guards against stream and episode cells bypassing the executors, or their workers giving other
    numbers than the driver's process (R matrices and episode accuracies compared exactly)."""
    if executor == "ray":
        request.getfixturevalue("ray_instance")
    records = run(mode, tmp_path / "run", executor, options)
    assert stable(records) == stable(local[mode])
    name = "results.jsonl" if mode == "stream" else "episodes.jsonl"
    assert stable(lines(tmp_path / "run" / name)) == stable(local[mode])
    if mode == "stream":
        assert [r["metrics"]["R"] for r in sorted(records, key=lambda r: r["strategy"])] == \
            [r["metrics"]["R"] for r in sorted(local[mode], key=lambda r: r["strategy"])]


@pytest.mark.parametrize("mode", ["stream", "episodes"])
def test_an_executor_resumes_what_a_local_run_finished(tmp_path, local, mode):
    """Guards against a resumed stream or episode run re-running finished cells (the pending cells are
    the driver's choice, made before any executor sees a group)."""
    first_strategy = "continual:finetune" if mode == "stream" else "prototype"
    first = run(mode, tmp_path / "run", strategies=[first_strategy])
    rest = run(mode, tmp_path / "run")
    assert {r["strategy"] for r in first} == {first_strategy}
    assert first_strategy not in {r["strategy"] for r in rest} and rest
    name = "results.jsonl" if mode == "stream" else "episodes.jsonl"
    assert stable(lines(tmp_path / "run" / name)) == stable(local[mode])
    assert run(mode, tmp_path / "run") == []  # everything finished: a third run appends nothing


@pytest.mark.parametrize("mode", ["grid", "stream", "episodes"])
def test_a_second_run_on_a_held_folder_meets_the_lock(tmp_path, toy_site, mode):
    """Guards against one mode skipping the run folder's lock (two drivers appending the same cells)."""
    out = tmp_path / "run"
    out.mkdir()
    cfg = RunConfig(**({} if mode == "grid" else STREAM if mode == "stream" else EPISODES), out=out)
    with RunLock(out), pytest.raises(UserError, match=r"^output folder .* is in use by another bench run \(pid "
                                                      rf"{os.getpid()} "):
        dispatch.run(cfg, load_plugins())
    assert not (out / "results.jsonl").exists() and not (out / "episodes.jsonl").exists()


def test_the_mode_is_chosen_in_one_place(tmp_path):
    """Guards against a mode reaching the wrong driver (--stream wins over --episodes, as before)."""
    plugins = load_plugins()
    grid = RunConfig(out=tmp_path)
    episodes = RunConfig(**EPISODES, out=tmp_path)
    assert [dispatch.mode(c) for c in (grid, episodes)] == ["grid", "episodes"]
    assert type(dispatch.driver(grid, plugins)) is Runner
    assert type(dispatch.driver(episodes, plugins)) is EpisodeRunner


# -- --cell-timeout for stream and episode cells -------------------------------------------------------


class SlowMean(NearestMean):
    """Learns its first task for ten seconds: past any small --cell-timeout."""

    def learn(self, task_index, ctx):
        time.sleep(10)
        return super().learn(task_index, ctx)


class SlowFit:
    """A few-shot strategy that fits for ten seconds."""

    def fit(self, ctx):
        time.sleep(10)
        return Fitted(predict=lambda split: np.zeros(len(split), dtype=int), trainable_params=0, total_params=0)


class SlowPlugins(StreamFixture):
    @bench.hookimpl
    def bench_register_strategies(self):
        return [ContinualSpec(name="nearest-mean", description="per-task class means", loader=NearestMean),
                ContinualSpec(name="slow-mean", description="sleeps in learn()", loader=SlowMean),
                StrategySpec(name="slow-fit", description="sleeps in fit()", loader=SlowFit, kind="features")]


@pytest.mark.parametrize("mode", ["stream", "episodes"])
def test_a_cell_past_the_cell_timeout_fails_as_timeout_and_the_others_go_on(tmp_path, mode):
    """Guards against --cell-timeout being ignored outside budget grids (a stuck cell holding the run)."""
    plugins = load_plugins(extra=[("slow", SlowPlugins())])
    if mode == "stream":
        kw = dict(stream="quad,quad-b", encoders=["cl-cnn"], strategies=["slow-mean", "nearest-mean"], options=[])
        why = "failure"  # a stream record's field, as before
    else:
        kw = dict(strategies=["slow-fit", "prototype"], tasks=["digits"])
        why = "reason"
    records = run(mode, tmp_path / "run", plugins=plugins, cell_timeout=1.0, **kw)
    by = {r["strategy"]: r for r in records}
    slow = by["slow-mean" if mode == "stream" else "slow-fit"]
    assert slow["status"] == "failed" and slow[why] == "timeout" and "--cell-timeout 1 s" in slow["error"]
    assert slow["wall_s"] < 5  # stopped at the limit, not after its ten seconds
    other = by["nearest-mean" if mode == "stream" else "prototype"]
    assert other["status"] == "ok" and other["metrics"]["accuracy"] > 0.5

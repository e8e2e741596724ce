"""Planning is torch-free, and the old harness imports keep working."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bench.plugins import load_plugins
from bench.run.plan import Planner, RunConfig, make_plan


def test_importing_the_planner_imports_no_torch():
    code = ("import bench.run.plan, sys; "
            "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m)")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_dry_run_plan_of_toy_tasks_needs_no_torch(with_plugins):
    code = ("import sys; from bench.run.plan import RunConfig, make_plan; from bench.plugins import load_plugins; "
            "plan = make_plan(RunConfig(encoders=['toy-cnn', 'pixels'], strategies=['finetune', 'toy-centroid'], "
            "tasks=['toy-blobs'], budgets='2', seeds=1), load_plugins()); "
            "assert len(plan.cells) == 3 and len(plan.skips) == 1, plan; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    env = {"PYTHONPATH": str(with_plugins), "BENCH_DISABLE_PLUGINS": "broken"}
    import os

    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, **env})


def test_planner_checks_names_and_seeds(with_plugins, monkeypatch):
    from bench.errors import UserError

    monkeypatch.setenv("BENCH_DISABLE_PLUGINS", "broken")
    p = load_plugins()
    with pytest.raises(UserError, match="listed twice"):
        Planner(RunConfig(encoders=["pixels", "pixels"]), p)
    with pytest.raises(UserError, match="positive integer"):
        Planner(RunConfig(encoders=["pixels"], seeds=0), p)
    plan = make_plan(RunConfig(encoders=["pixels"], strategies=["toy-centroid"], tasks=["toy-blobs"], budgets="1,2",
                               seeds=2), p)
    assert [c.label() for c in plan.cells][:2] == ["toy-blobs | pixels | toy-centroid | 1/class | seed 0",
                                                   "toy-blobs | pixels | toy-centroid | 1/class | seed 1"]

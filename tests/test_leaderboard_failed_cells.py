"""A cell's failure is recorded with its reason and the grid goes on (a UserError or a diverged
training loss inside a strategy included), while mistakes in what was asked still stop the run;
cells record the determinism settings of their device."""

from __future__ import annotations

import json
import os

import bench
from bench.cli import main
from bench.errors import UserError
from bench.plugins import load_plugins
from bench.run.cell import failure_reason
from bench.run.device import deterministic_settings
from bench.run.plan import RunConfig
from bench.run.runner import Runner
from bench.specs import StrategySpec
from bench.views import ProtocolError


class RaisesUserError:
    def fit(self, ctx):
        raise UserError("lr must be positive; pass --set lr=1e-3")


class Diverges:
    def fit(self, ctx):
        raise FloatingPointError("training diverged at step 3 (loss nan); lower lr")


class FailingPlugin:
    @staticmethod
    @bench.hookimpl
    def bench_register_strategies():
        return [StrategySpec(name="user-error", description="raises UserError in fit", loader=lambda: RaisesUserError(),
                             kind="features"),
                StrategySpec(name="diverges", description="its loss becomes NaN", loader=lambda: Diverges(),
                             kind="features")]


def test_user_error_and_divergence_inside_a_cell_fail_that_cell_only(tmp_path, with_plugins, monkeypatch):
    """Old code re-raised a UserError from a strategy (the whole grid stopped) and recorded a diverged
    loss as a failure without a reason."""
    monkeypatch.setenv("BENCH_DISABLE_PLUGINS", "broken")
    cfg = RunConfig(encoders=["toy-cnn"], strategies=["user-error", "diverges", "toy-centroid"], tasks=["toy-blobs"],
                    budgets="2", seeds=1, out=tmp_path / "run", device="cpu", progress=False, forgetting="off",
                    contamination=False)
    Runner(cfg, load_plugins(extra=[("failing", FailingPlugin)])).run()
    records = {r["strategy"]: r for r in map(json.loads, (tmp_path / "run/results.jsonl").read_text().splitlines())}
    assert records["toy-centroid"]["status"] == "ok"
    assert records["user-error"]["status"] == "failed" and records["user-error"]["reason"] == "error"
    assert records["user-error"]["error"] == "UserError: lr must be positive; pass --set lr=1e-3"
    assert records["diverges"]["status"] == "failed" and records["diverges"]["reason"] == "diverged"
    assert records["toy-centroid"]["device_info"]["torch_threads"] >= 1


def test_a_mistake_in_what_was_asked_still_stops_the_run_with_exit_2(tmp_path, with_plugins, monkeypatch, capsys):
    monkeypatch.setenv("BENCH_DISABLE_PLUGINS", "broken")
    code = main(["run", "--encoders", "toy-cnn", "--strategies", "toy-centroid", "--tasks", "toy-blobs",
                 "--budgets", "0", "--seeds", "1", "--out", str(tmp_path / "r"), "--no-progress"])
    assert code == 2 and "budget" in capsys.readouterr().err
    assert not (tmp_path / "r/results.jsonl").exists()


def test_failure_reasons():
    assert failure_reason(FloatingPointError("training diverged")) == "diverged"
    assert failure_reason(ProtocolError("strategies may not read test labels")) == "protocol"
    assert failure_reason(RuntimeError("CUDA out of memory. Tried to allocate")) == "oom"
    assert failure_reason(ValueError("x")) == "error"


def test_cuda_determinism_settings_are_set_and_recorded(monkeypatch):
    """Old code set none of these, so a GPU rerun need not reproduce a record."""
    import torch

    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    before = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
              torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    torch.backends.cudnn.benchmark = True
    try:
        info = deterministic_settings("cuda")
        assert torch.backends.cudnn.benchmark is False and torch.backends.cudnn.deterministic is True
        assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
        assert info["cudnn_benchmark"] is False and info["cudnn_deterministic"] is True
        assert info["deterministic_algorithms"] is True and info["cublas_workspace_config"] == ":4096:8"
        assert info["torch_threads"] == torch.get_num_threads()
    finally:
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = before[0], before[1]
        torch.use_deterministic_algorithms(before[2], warn_only=before[3])


def test_cpu_cells_record_the_thread_count_only():
    import torch

    assert deterministic_settings("cpu") == {"torch_threads": torch.get_num_threads()}


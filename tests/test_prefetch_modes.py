"""Weights are resolved before the first cell in every mode of ``bench run`` (grid, --stream, --episodes)."""

from __future__ import annotations

import time

import pytest

from bench.cli import main


@pytest.mark.parametrize("mode", [
    ["--tasks", "digits", "--strategies", "linear-probe", "--budgets", "1"],
    ["--stream", "split-digits", "--strategies", "finetune", "--budgets", "1"],
    ["--episodes", "5:1:5:2", "--tasks", "digits", "--strategies", "prototype"],
])
def test_uncached_hub_weights_stop_every_mode_before_any_cell(mode, tmp_path, capsys, with_plugins, monkeypatch):
    """Offline with an empty hub cache: ``resnet``'s weights cannot be had, and each mode says so in
    one line before the first cell, efficientnet-lite0's included (without the up-front check the
    stream and episode drivers met it after efficientnet-lite0's cells had run, loading resnet)."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    out = tmp_path / "run"
    start = time.perf_counter()
    rc = main(["run", *mode, "--encoders", "efficientnet-lite0,resnet", "--seeds", "1", "--no-progress",
               "--out", str(out)])
    took = time.perf_counter() - start
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and took < 30, (err, took)
    assert err[-1].startswith("bench: error: encoder 'resnet': weights timm/resnet50.a1_in1k/model.safetensors ")
    assert "--weights resnet=" in err[-1]
    assert not (out / "results.jsonl").exists() and not (out / "episodes.jsonl").exists()

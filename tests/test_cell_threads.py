"""A cell's record does not depend on the process's torch thread count (protocol 3's CELL_THREADS)."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch

import bench.run.cell
from bench.plugins import load_plugins
from bench.run.device import CELL_THREADS, cell_threads
from bench.run.plan import RunConfig
from bench.run.runner import Runner

#: a fine-tune cell big enough that the backward pass splits its sums over threads
GRID = dict(encoders=["efficientnet-lite0"], strategies=["finetune"], tasks=["digits"], budgets="1",
            seeds=1, device="cpu", progress=False, forgetting="off", contamination=False,
            options=[("finetune", "max_steps", 12)])


def finetune_record(out, threads):
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        [rec] = Runner(RunConfig(**GRID, out=out), load_plugins()).run()
    finally:
        torch.set_num_threads(before)
    assert rec["status"] == "ok", rec.get("error")
    return rec


def test_a_training_cell_gives_the_same_record_with_1_and_2_threads(tmp_path):
    one, two = finetune_record(tmp_path / "one", 1), finetune_record(tmp_path / "two", 2)
    assert one["cell_id"] == two["cell_id"]
    assert one["metrics"] == two["metrics"] and one["info"]["steps"] == 12
    assert one["device_info"]["torch_threads"] == two["device_info"]["torch_threads"] == CELL_THREADS == 1


def test_without_the_fixed_count_the_same_cell_moves(tmp_path, monkeypatch):
    """The control: the thread count really changes a training step's floats (else the test above
    could not fail), and the fixed count is what removes it."""
    monkeypatch.setattr(bench.run.cell, "cell_threads", contextlib.nullcontext)
    one, two = finetune_record(tmp_path / "one", 1), finetune_record(tmp_path / "two", 2)
    assert one["metrics"] != two["metrics"]


def test_encoding_is_bitwise_the_same_at_any_thread_count():
    """An encode pass on the CPU gives the same bits with the process at 1, 2 and 3 torch threads,
    contiguous and channels_last (the CPU path since protocol 3): each batch runs on one thread.
    (A plain multi-threaded forward does not on every CPU: up to 2e-6 apart on this project's VMs.)"""
    import timm

    from bench.encoders import Encoder, encode

    torch.manual_seed(0)
    model = timm.create_model("efficientnet_lite0", pretrained=False, num_classes=0).eval()
    images = np.random.default_rng(0).integers(0, 256, (70, 20, 20, 3), dtype=np.uint8)
    enc = Encoder("lite0", model, 1280, 64, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    before = torch.get_num_threads()
    try:
        for layout in (torch.contiguous_format, torch.channels_last):
            model.to(memory_format=layout)
            outs = []
            for n in (1, 2, 3):
                torch.set_num_threads(n)
                outs.append(encode(enc, lambda idx: [images[i] for i in idx], len(images), batch_size=16))
                assert torch.get_num_threads() == n  # the pass restores the process's count
            assert outs[0].shape == (70, 1280) and np.isfinite(outs[0]).all()
            assert all(np.array_equal(outs[0], o) for o in outs[1:]), layout
    finally:
        torch.set_num_threads(before)


def test_cell_threads_restores_the_process_count():
    before = torch.get_num_threads()
    with cell_threads() as n:
        assert torch.get_num_threads() == n == CELL_THREADS
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), cell_threads():
        raise RuntimeError("a failed cell")
    assert torch.get_num_threads() == before


def test_the_feature_cache_key_names_how_features_were_computed(monkeypatch):
    """A protocol-2 entry (contiguous CPU pass), a GPU entry or a bf16 entry is never read as this
    run's features: their floats differ (protocol 3 encodes CNNs channels_last on the CPU)."""
    import numpy as np

    import bench.run.records
    from bench import accel
    from bench.run.features import FeatureCache
    from bench.tasks import ArraySplit

    class Enc:
        def fingerprint(self):
            return "enc"

    split = ArraySplit(["a", "b"], np.zeros((2, 4, 4), np.uint8), [0, 1])
    cache, enc = FeatureCache(), Enc()
    here = cache.key(enc, split, "cpu")
    assert cache.key(enc, split, "cpu") == here and cache.key(enc, split) == here
    assert cache.key(enc, split, "cuda:1") == cache.key(enc, split, "cuda") != here
    monkeypatch.setattr(bench.run.records, "PROTOCOL_VERSION", 2)
    assert cache.key(enc, split, "cpu") != here
    monkeypatch.undo()
    accel.configure(precision="bf16")
    try:
        assert cache.key(enc, split, "cpu") != here
    finally:
        accel.configure()



def test_the_drivers_over_several_tasks_compute_a_cell_under_the_fixed_count(monkeypatch):
    """Stream and multi-task cells run through bench.run.task_set: the cell's work sees CELL_THREADS
    whatever the process has, the process gets its count back, and a failure is a record."""
    from types import SimpleNamespace

    from bench.continual.driver import StreamRunner
    from bench.multitask.driver import MultitaskRunner
    from bench.run.task_set import TaskSetDriver

    assert issubclass(StreamRunner, TaskSetDriver) and issubclass(MultitaskRunner, TaskSetDriver)

    class Probe(TaskSetDriver):
        def __init__(self, fail):
            self.cfg, self.fail, self.log = SimpleNamespace(cell_timeout=None), fail, lambda m: None

        def record(self, cell, ident, device):
            return {"cell": cell}

        def compute(self, cell, device, rec):
            rec.update(status="ok", threads=torch.get_num_threads(), rand=float(torch.rand(1)))
            if self.fail:
                raise ValueError("diverged")

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        cell = SimpleNamespace(seed=3)
        ok, again = Probe(False).run_cell(cell, None, "cpu"), Probe(False).run_cell(cell, None, "cpu")
        assert ok["threads"] == CELL_THREADS == 1 and torch.get_num_threads() == 2
        assert ok["rand"] == again["rand"]  # seeded by the cell's seed
        bad = Probe(True).run_cell(cell, None, "cpu")
        assert bad["status"] == "failed" and bad["error"] == "ValueError: diverged" and bad["wall_s"] >= 0
    finally:
        torch.set_num_threads(before)

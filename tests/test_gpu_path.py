"""The GPU path (bench.accel): bf16 autocast, channels_last, OOM back-off, torch.compile, the decoding
DataLoader, --precision/--compile reaching the records, and --device cuda resolved on the workers.

Everything PyTorch allows on the CPU runs here; an out-of-memory error is injected by a module that
raises torch.cuda.OutOfMemoryError above a batch size. Tests marked ``gpu`` need CUDA (skipped
without it; scripts/gpu_check.sh runs them).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from bench import accel
from bench.encoders import Encoder, encode
from bench.errors import UserError
from bench.plugins import load_plugins
from bench.recipes import RECIPE_DEFAULTS
from bench.run.plan import RunConfig
from bench.run.runner import Runner
from bench.run.worker import run_group
from bench.tasks import ArraySplit
from bench.training import Classifier, train
from tests.conftest import run_cli
from tests.test_runner import executor_plugin

CUDA = torch.cuda.is_available()


@pytest.fixture(autouse=True)
def default_settings():
    accel.configure()
    yield
    accel.configure()


def tiny_encoder(seed: int = 0) -> Encoder:
    torch.manual_seed(seed)
    module = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1),
                           nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return Encoder(name="tiny", module=module, feature_dim=6, input_size=8)


def tiny_split(n: int = 32) -> ArraySplit:
    rng = np.random.default_rng(0)
    return ArraySplit([str(i) for i in range(n)], rng.integers(0, 255, (n, 8, 8, 3), dtype=np.uint8), [0, 1] * (n // 2))


class OOMAbove(nn.Module):
    """Wraps a module; raises CUDA's out-of-memory error for batches larger than ``limit``."""

    def __init__(self, inner: nn.Module, limit: int, message: str | None = None) -> None:
        super().__init__()
        self.inner, self.limit, self.message, self.calls = inner, limit, message, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if len(x) > self.limit:
            if self.message:
                raise RuntimeError(self.message)
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.inner(x)


CONFIG = {**RECIPE_DEFAULTS, "batch_size": 16, "min_steps": 4, "epochs": 1, "max_steps": 4}


def trained(model_of, **kw):
    enc = tiny_encoder()
    model = model_of(Classifier(enc.module, 6, 2))
    info = train(model, [{"params": list(model.parameters()), "lr": 1e-2}], enc, tiny_split(), CONFIG, seed=0, **kw)
    return model, info


def test_bf16_autocast_runs_on_the_cpu_and_fp32_is_untouched():
    """Guards: --precision bf16 really computes in bf16 (a no-op context would pass silently)."""
    layer = nn.Linear(4, 2)
    with accel.autocast("cpu", "bf16"):
        assert layer(torch.randn(3, 4)).dtype == torch.bfloat16
    with accel.autocast("cpu"):
        assert layer(torch.randn(3, 4)).dtype == torch.float32
    with pytest.raises(UserError, match="--precision 'fp16'.*fp32.*bf16"):
        accel.autocast("cpu", "fp16")


def test_training_in_bf16_is_recorded_and_close_to_fp32():
    """Guards: bf16 reaches the training loop (info says so, the numbers move a little, not a lot)."""
    ref, info32 = trained(lambda m: m)
    assert "precision" not in info32 and "oom_backoff" not in info32  # the CPU defaults add nothing
    accel.configure(precision="bf16")
    low, info16 = trained(lambda m: m)
    assert info16["precision"] == "bf16"
    w32, w16 = ref.head.weight.detach(), low.head.weight.detach()
    assert not torch.equal(w32, w16)
    torch.testing.assert_close(w16, w32, rtol=0.1, atol=0.02)


def test_channels_last_for_cnns_only_and_the_same_features():
    """Guards: channels_last converts conv weights (and inputs), leaves non-CNNs alone, changes no feature."""
    enc = tiny_encoder()
    split = tiny_split(10)
    plain = encode(enc, split.images, len(split))
    assert accel.use_channels_last(enc.module, "cpu", enabled=True)
    assert enc.module[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert not accel.use_channels_last(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), "cpu", enabled=True)
    assert accel.use_channels_last(tiny_encoder().module, "cpu")  # default since protocol 3: every device
    x = accel.to_device(torch.randn(2, 3, 8, 8), "cpu", channels_last=True)
    assert x.is_contiguous(memory_format=torch.channels_last)
    np.testing.assert_allclose(encode(enc, split.images, len(split)), plain, rtol=1e-5, atol=1e-6)


def test_training_backs_off_an_oom_to_micro_batches_with_the_same_result():
    """Guards: an out-of-memory step is redone in halves (gradients summed, so the same update) and the
    final micro-batch is recorded as info.oom_backoff; before, the OOM failed the cell."""
    ref, _ = trained(lambda m: m)
    wrapped, info = trained(lambda m: OOMAbove(m, limit=4))
    assert info["oom_backoff"] == 4 and info["batch_size"] == 16
    torch.testing.assert_close(wrapped.inner.head.weight, ref.head.weight, rtol=1e-4, atol=1e-6)


def test_encode_backs_off_an_oom_and_records_it():
    """Guards: the encode pass halves its batch on OOM (the old-style "out of memory" RuntimeError too)
    and the final size reaches the records (device_info.oom_backoff)."""
    enc = tiny_encoder()
    split = tiny_split(20)
    plain = encode(enc, split.images, len(split), batch_size=16)
    module = OOMAbove(enc.module, limit=5, message="CUDA error: out of memory")
    feats = encode(enc, split.images, len(split), batch_size=16, module=module)
    np.testing.assert_allclose(feats, plain, rtol=1e-6, atol=1e-7)
    assert accel.settings().oom_backoff == {"encode": 4}
    assert accel.describe("cpu")["oom_backoff"] == {"encode": 4}


def test_oom_backoff_gives_up_at_one_and_passes_other_errors_on():
    """Guards: only OOM is retried; at the smallest batch the error propagates (no endless loop)."""
    calls = []

    def always_oom(batch: int) -> None:
        calls.append(batch)
        raise torch.cuda.OutOfMemoryError("out of memory")

    with pytest.raises(torch.cuda.OutOfMemoryError):
        accel.with_oom_backoff(always_oom, 8)
    assert calls == [8, 4, 2, 1]
    with pytest.raises(RuntimeError, match="shape"):
        accel.with_oom_backoff(lambda b: (_ for _ in ()).throw(RuntimeError("bad shape")), 8)
    assert accel.is_oom(RuntimeError("CUDA out of memory")) and not accel.is_oom(ValueError("out of memory"))


def test_decoding_workers_give_the_same_features():
    """Guards: the DataLoader path (CUDA's default: worker processes decode) yields the CPU path's features."""
    enc = tiny_encoder()
    split = tiny_split(30)
    plain = encode(enc, split.images, len(split), batch_size=8)
    loaded = encode(enc, split.images, len(split), batch_size=8, workers=2)
    np.testing.assert_array_equal(loaded, plain)


def test_compile_wraps_the_training_model_and_is_recorded(monkeypatch):
    """Guards: --compile reaches the training loop (torch.compile called on the model, info.compiled);
    the eager backend stands in for inductor so no C++ toolchain is needed here."""
    seen = []
    real = torch.compile

    def fake_compile(model, **kw):
        seen.append(model)
        return real(model, backend="eager")

    monkeypatch.setattr(accel.torch, "compile", fake_compile)
    ref, _ = trained(lambda m: m)
    accel.configure(compile=True)
    model, info = trained(lambda m: m)
    assert info["compiled"] is True and seen == [model]
    torch.testing.assert_close(model.head.weight, ref.head.weight, rtol=1e-4, atol=1e-6)


def test_precision_flags_reach_the_config_and_bad_values_are_one_line():
    """Guards: --precision/--compile parse into the RunConfig; a bad precision is a one-line error, exit 2."""
    from bench.cli import build_parser
    from bench.cli.run import run_config_from_args

    args = build_parser().parse_args(["run", "--precision", "bf16", "--compile", "--device", "cpu"])
    cfg = run_config_from_args(args)
    assert (cfg.precision, cfg.compile) == ("bf16", True)
    proc = run_cli("run", "--precision", "fp16", "--encoders", "pixels", "--dry-run")
    assert proc.returncode == 2 and "--precision 'fp16'" in proc.stderr and "Traceback" not in proc.stderr


class Capture:
    """An executor that runs nothing and keeps the groups it was handed."""

    groups: list = []

    def run(self, groups):
        Capture.groups = list(groups)
        return iter(())


@pytest.mark.skipif(CUDA, reason="checks a machine without a GPU")
def test_a_remote_driver_without_a_gpu_passes_cuda_to_its_workers(tmp_path, with_plugins, monkeypatch):
    """Guards: `--executor ray|submitit --device cuda` from a login node without a GPU (the driver used
    to refuse); the worker, which must have one, checks it and says so in one line."""
    monkeypatch.setenv("BENCH_DISABLE_PLUGINS", "broken")
    plugins = load_plugins(extra=[("remote", executor_plugin("remote", Capture))])
    cfg = RunConfig(encoders=["toy-cnn"], strategies=["toy-centroid"], tasks=["toy-blobs"], budgets="2", seeds=1,
                    out=tmp_path / "run", device="cuda", progress=False, forgetting="off", executor="remote",
                    precision="bf16")
    assert Runner(cfg, plugins).run() == []
    [group] = Capture.groups
    assert group.device == "cuda" and group.config.precision == "bf16"
    with pytest.raises(UserError, match="--device cuda.*no CUDA GPU"):
        next(run_group(copy.copy(group)))
    local = RunConfig(**{**cfg.__dict__, "executor": "local", "out": tmp_path / "b"})
    with pytest.raises(UserError, match="no CUDA GPU"):
        Runner(local, plugins).run()


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_gpu_training_and_encoding_match_the_cpu(precision):
    """On a GPU: encode (channels_last, pinned DataLoader, autocast) and train agree with the CPU run."""
    accel.configure(precision=precision)
    enc = tiny_encoder()
    split = tiny_split(64)
    cpu = encode(enc, split.images, len(split), batch_size=16)
    enc_gpu = copy.deepcopy(enc)
    enc_gpu.module.to("cuda")
    on_gpu = encode(enc_gpu, split.images, len(split), device="cuda", batch_size=16)
    tol = 1e-3 if precision == "fp32" else 5e-2
    np.testing.assert_allclose(on_gpu, cpu, rtol=tol, atol=tol)
    _, info = trained(lambda m: m, device="cuda")
    assert np.isfinite(info["final_loss"])


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_gpu_compile_trains():
    """On a GPU: --compile (inductor) trains and says so."""
    accel.configure(precision="bf16", compile=True)
    _, info = trained(lambda m: m, device="cuda")
    assert info["compiled"] is True and np.isfinite(info["final_loss"])


def test_the_cache_checksum_reads_the_array_in_place():
    """Guards: checksumming a feature array made a full bytes copy (a 50,000-image pass held its
    features twice); the checksum is unchanged."""
    import hashlib
    import tracemalloc

    from bench.run.features import checksum

    feats = np.random.default_rng(0).random((2000, 1000), dtype=np.float32)  # 8 MB
    old = hashlib.sha256(f"{feats.dtype.str}|{feats.shape}|".encode())
    old.update(feats.tobytes())
    tracemalloc.start()
    try:
        digest = checksum(feats)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert digest == old.hexdigest() and peak < 1_000_000


def test_encode_fills_one_array_with_every_batch():
    """Guards: features are written batch by batch into one array (before, a list of chunks was
    concatenated: the pass held its features twice); logits of another module keep their width."""
    enc = tiny_encoder()
    split = tiny_split(20)
    feats = encode(enc, split.images, len(split), batch_size=6)
    one_by_one = np.concatenate([encode(enc, split.images, 20, batch_size=20)])
    np.testing.assert_allclose(feats, one_by_one, rtol=1e-5, atol=1e-6)
    assert feats.flags["OWNDATA"] and feats.shape == (20, 6)
    logits = encode(enc, split.images, len(split), batch_size=6, module=nn.Sequential(enc.module, nn.Linear(6, 3)))
    assert logits.shape == (20, 3)
    assert encode(enc, split.images, 0).shape == (0, 6)


def test_precision_and_compile_are_part_of_a_cells_identity(tmp_path, with_plugins, monkeypatch):
    """Guards: a bf16 or compiled record resumed an fp32 eager grid (same cell_id) and mixed numbers of
    two precisions; fp32 eager keeps the cell_id it had (published records stay resumable)."""
    from bench.run.identities import cell_identities

    monkeypatch.setenv("BENCH_DISABLE_PLUGINS", "broken")
    plugins = load_plugins()
    ids = {}
    for precision, compile_ in (("fp32", False), ("bf16", False), ("fp32", True)):
        cfg = RunConfig(encoders=["pixels"], strategies=["toy-centroid"], tasks=["toy-blobs"], budgets="2", seeds=1,
                        out=tmp_path, device="cpu", forgetting="off", contamination=False, precision=precision,
                        compile=compile_)
        runner = Runner(cfg, plugins)
        [cell] = runner.plan().cells
        ident = cell_identities(runner.planner, runner.load_task("toy-blobs"), "pixels", [cell], None)[cell.key()]
        ids[(precision, compile_)] = ident
    assert len({i.cell_id for i in ids.values()}) == 3
    summary = {k: i.config_summary for k, i in ids.items()}
    assert "precision" not in summary[("fp32", False)] and "compile" not in summary[("fp32", False)]
    assert summary[("bf16", False)]["precision"] == "bf16" and summary[("fp32", True)]["compile"] is True

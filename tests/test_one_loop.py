"""The one training loop (bench.loop.run_steps): no strategy steps an optimiser anywhere else, every
built-in trained strategy steps inside it, and ``--precision bf16`` reaches the forward of a
fine-tune, a domain-adaptation and a continual cell."""

from __future__ import annotations

import ast
import copy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook

from bench import accel
from bench.continual.spec import StreamInfo
from bench.loop import run_steps
from bench.plugins import load_plugins
from bench.strategies import FitContext
from bench.tasks import ArraySplit
from bench.views import TaskView
from tests.test_da_methods import _ctx as da_ctx
from tests.test_da_methods import _splits as da_splits
from tests.test_strategies_peft import make_ctx, tiny_vit

ROOT = Path(__file__).resolve().parents[1]
#: The one place an optimiser may step besides the loop, and why.
ALLOWED = {"plugins/strategies/_linear_probe.py": "L-BFGS's closure solve of a convex probe on frozen features"}
FAST = {"epochs": 1, "min_steps": 2, "max_steps": 2, "batch_size": 8, "augment": "none", "tent_steps": 2,
        "tent_batch_size": 8, "adapt_images": 16, "entropy_probe_batches": 1, "stat_batches": 1,
        "ewc_fisher_items": 8, "mas_items": 8, "memory_size": 8, "lp_max_iter": 5}


def _step_calls(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute) and node.func.attr == "step"]


def test_no_source_file_steps_an_optimiser_or_scheduler_outside_the_loop():
    """Guards against a second training loop: any ``x.step(...)`` call in bench/ or plugins/ outside
    bench/loop.py (an optimiser's or a scheduler's) fails, naming the file and line."""
    found = {}
    for path in sorted([*ROOT.joinpath("bench").rglob("*.py"), *ROOT.joinpath("plugins").rglob("*.py")]):
        rel = path.relative_to(ROOT).as_posix()
        lines = _step_calls(path)
        if lines and rel != "bench/loop.py" and rel not in ALLOWED:
            found[rel] = lines
    assert found == {}
    assert _step_calls(ROOT / "bench/loop.py")  # the scan does see the loop's own steps


def _in_loop() -> bool:
    frame = sys._getframe()
    while frame is not None:
        if frame.f_code is run_steps.__code__:
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


def _continual(strategy, encoder) -> None:
    rng = np.random.default_rng(0)
    tasks = [ArraySplit([f"c{t}_{i}" for i in range(8)], rng.integers(0, 255, (8, 16, 16, 3), dtype=np.uint8),
                        np.arange(8) % 2) for t in range(2)]
    stream = StreamInfo("s", "task", tuple(TaskView(f"t{t}", ["a", "b"], {}) for t in range(2)))
    config = {**strategy.defaults, **FAST}
    learner = strategy.load()

    def ctx(split):
        return FitContext(labelled=split, config=config, seed=0, load_encoder=lambda pretrained=True: copy.deepcopy(
            encoder))

    learner.begin(stream, ctx(tasks[0]))
    for t in range(2):
        learner.learn(t, ctx(tasks[t]))


def _fit(spec) -> None:
    if spec.kind == "continual":
        _continual(spec, tiny_vit())
    elif hasattr(spec.load(), "meta_train"):  # an episode meta-learner: meta-training, then an episode's fit
        learner = spec.load()
        ctx = make_ctx(tiny_vit(), {**spec.defaults, **FAST, "meta_steps": 2, "meta_query": 1}, n=8)
        ctx.extra["episode"] = {"n_way": 2, "k_shot": 1, "q_query": 1}
        ctx.extra["meta_state"] = learner.meta_train(ctx)
        learner.fit(ctx)
    elif "unlabelled_target" in spec.requires:
        labelled, target = da_splits(16)
        spec.load().fit(da_ctx({**spec.defaults, **FAST}, labelled, target))
    else:
        spec.load().fit(make_ctx(tiny_vit(), {**spec.defaults, **FAST}, n=8))


def trained_specs():
    return [s for s in load_plugins().strategies if s.kind in ("train", "continual")
            and str(s.loader).startswith("bench_plugins.")]


def test_every_builtin_trained_strategy_steps_its_optimisers_inside_the_loop():
    """Guards the same at run time: an optimiser step hook records, for every built-in trained
    strategy (fine-tuning, PEFT, DA, Tent, continual) on a tiny model, whether each step came from
    inside :func:`bench.loop.run_steps`."""
    torch.set_num_threads(1)
    specs = trained_specs()
    assert len(specs) >= 24  # today 16 of kind train (supervised, PEFT, DA, Tent) and 8 continual
    steps: dict[str, list[bool]] = {}
    current = [""]
    handle = register_optimizer_step_pre_hook(
        lambda opt, args, kwargs: None if isinstance(opt, torch.optim.LBFGS)  # ALLOWED: the probe's solve
        else steps.setdefault(current[0], []).append(_in_loop()))
    try:
        for spec in specs:
            current[0] = spec.name
            _fit(spec)
    finally:
        handle.remove()
    outside = sorted(name for name, inside in steps.items() if not all(inside))
    assert outside == []
    assert set(steps) == {s.name for s in specs}  # each stepped (bn-adapt: its source-only baseline)


@pytest.fixture
def precision():
    yield accel.configure
    accel.configure()


def _record_dtypes(module: nn.Module, seen: list[torch.dtype]) -> None:
    """Record the output dtype of ``module``'s first layer in every forward inside the loop (EWC's
    Fisher pass and the encode pass run outside it, in float32)."""
    first = next(m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    first.register_forward_hook(lambda mod, inp, out: seen.append(out.dtype) if _in_loop() else None)


def _training_dtypes(name: str) -> set[torch.dtype]:
    spec = next(s for s in load_plugins().strategies if s.name == name)
    seen: list[torch.dtype] = []
    if spec.kind == "continual":
        encoder = tiny_vit()
        _record_dtypes(encoder.module, seen)
        _continual(spec, encoder)
    elif "unlabelled_target" in spec.requires:
        labelled, target = da_splits(16)
        ctx = da_ctx({**spec.defaults, **FAST}, labelled, target)
        load = ctx.load_encoder

        def hooked(pretrained=True):
            enc = load(pretrained)
            _record_dtypes(enc.module, seen)
            return enc

        ctx.load_encoder = hooked
        spec.load().fit(ctx)
    else:
        encoder = tiny_vit()
        _record_dtypes(encoder.module, seen)
        spec.load().fit(make_ctx(encoder, {**spec.defaults, **FAST}, n=8))
    return set(seen)


@pytest.mark.parametrize("name", ["finetune", "dann", "mcc", "continual:ewc"])
def test_bf16_reaches_the_training_forward_of_every_kind_of_cell(precision, name):
    """Guards ``--precision bf16`` reaching training beyond fine-tuning: the encoder's first layer
    runs its training forwards in bfloat16 in a fine-tune, a DA and a continual cell, and in float32
    under the default precision."""
    torch.set_num_threads(1)
    precision("fp32")
    assert _training_dtypes(name) == {torch.float32}
    precision("bf16")
    assert _training_dtypes(name) == {torch.bfloat16}


def test_compile_reaches_the_domain_adaptation_loop(precision, monkeypatch):
    """Guards ``--compile`` reaching DA cells (before: fine-tuning only): the method and its baseline
    train through the compiled wrapper (the eager backend: scripts/gpu_check.sh's CPU dry mode)."""
    torch.set_num_threads(1)
    monkeypatch.setenv("BENCH_COMPILE_BACKEND", "eager")
    precision("fp32", True)
    spec = next(s for s in load_plugins().strategies if s.name == "dann")
    labelled, target = da_splits(16)
    fitted = spec.load().fit(da_ctx({**spec.defaults, **FAST}, labelled, target))
    assert fitted.info["compiled"] is True and fitted.baseline.info["compiled"] is True
    precision()
    fitted = spec.load().fit(da_ctx({**spec.defaults, **FAST}, labelled, target))
    assert "compiled" not in fitted.info


def test_run_steps_redoes_an_out_of_memory_step_in_micro_batches_with_the_same_gradient():
    """Guards the loop's OOM back-off: a step that raises "out of memory" on the full batch is redone
    in halves, each loss weighted by its share, so the summed gradient equals the full batch's."""
    w = nn.Parameter(torch.tensor([1.0, -2.0]))
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]])
    grads = []

    def loss(batch, step, part):
        if len(batch[part]) > 2:
            raise RuntimeError("CUDA out of memory (simulated)")
        return ((batch[part] @ w) ** 2).mean()

    opt = torch.optim.SGD([w], lr=0.0)
    result = run_steps([opt], 1, lambda step: x, loss, device="cpu", items=4, name="")
    grads.append(w.grad.clone())
    expected = (2 * (x @ torch.tensor([1.0, -2.0]))[:, None] * x).mean(0)
    assert result.micro == 2
    assert torch.allclose(grads[0], expected)
    assert result.losses == pytest.approx([float(((x @ torch.tensor([1.0, -2.0])) ** 2).mean())])


def test_run_steps_raises_on_a_non_finite_loss_naming_the_stage():
    w = nn.Parameter(torch.tensor(1.0))
    with pytest.raises(FloatingPointError, match="training diverged on task 3 at step 0"):
        run_steps([torch.optim.SGD([w], lr=0.1)], 2, lambda step: None, lambda b, step, part: w * float("nan"),
                  device="cpu", where=" on task 3")

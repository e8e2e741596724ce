"""The one optimisation loop every trained strategy steps through, and the hooks it calls.

:func:`run_steps` owns the GPU path of a training run: each step's forward and loss run under
``--precision``'s autocast (:func:`bench.accel.autocast`), an out-of-memory step is redone in
micro-batches when the caller can split its batch (``items=``), and the optimisers and the
scheduler step here and nowhere else (``tests/test_one_loop.py`` fails on an ``.step()`` outside).
:func:`prepare` moves a model to its device, converts a CNN to channels_last and applies
``--compile``. A strategy supplies its data and its loss through hooks:

- ``draw(step)``: put the modules in their training modes and draw the step's batch (the RNG
  draws of batch order and augmentation happen here, in the order the strategy wants);
- ``loss(batch, step, part)``: the step's loss on the items ``part`` (a slice; the whole batch
  unless micro-batching), computed under autocast; the loop adds nothing to it;
- ``after_step(step)``: after the optimisers and the scheduler stepped (SI's path integral).

The supervised recipe (:func:`bench.training.train`), the domain-adaptation loop
(:func:`bench.domain.loop.train_domain`), the continual strategies and Tent all use it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import torch
from torch import nn

from bench.accel import autocast, maybe_compile, use_channels_last, with_oom_backoff

__all__ = ["LoopResult", "cosine_lambda", "prepare", "run_steps", "set_batchnorm_eval", "step_done"]

B = TypeVar("B")


@dataclass(frozen=True)
class LoopResult(Generic[B]):
    """What :func:`run_steps` did: every step's loss (floats), and the micro-batch that fitted
    (``items`` when no step ran out of memory)."""

    losses: tuple[float, ...]
    micro: int

    @property
    def final_loss(self) -> float:
        return self.losses[-1] if self.losses else float("nan")


def step_done(loss: torch.Tensor | float, step: int, steps: int, progress: Callable[[str], None] | None,
              where: str = "") -> float:
    """A training step's loss as a float: raises when it is not finite (``where`` names the stage,
    e.g. " on task 2"); reports progress every 20 steps and at the last."""
    value = float(loss.detach() if isinstance(loss, torch.Tensor) else loss)
    if not math.isfinite(value):
        raise FloatingPointError(f"training diverged{where} at step {step} (loss {value}); lower lr")
    if progress is not None and (step % 20 == 0 or step == steps - 1):
        progress(f"step {step + 1}/{steps} loss {value:.3f}")
    return value


def set_batchnorm_eval(module: nn.Module) -> None:
    """Freeze BatchNorm running statistics (tiny batches would corrupt them)."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


def cosine_lambda(total: int, warmup: int) -> Callable[[int], float]:
    """Linear warm-up over ``warmup`` steps, then cosine decay to 0 at ``total`` (a LambdaLR factor)."""
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return f


def prepare(model: nn.Module, device: str) -> tuple[nn.Module, bool]:
    """``model`` on ``device`` for training: channels_last for a CNN, and the module to call
    (``torch.compile``'s wrapper under ``--compile``, sharing ``model``'s parameters; else ``model``).
    Returns it and whether inputs go channels_last (:func:`bench.accel.to_device`)."""
    model.to(device)
    channels_last = use_channels_last(model, device)
    return maybe_compile(model), channels_last


def run_steps(
    optimizers: Sequence[torch.optim.Optimizer],
    steps: int,
    draw: Callable[[int], B],
    loss: Callable[[B, int, slice], torch.Tensor],
    *,
    device: str,
    scheduler: Any = None,
    after_step: Callable[[int], None] | None = None,
    progress: Callable[[str], None] | None = None,
    where: str = "",
    items: int | None = None,
    name: str = "train",
) -> LoopResult[B]:
    """``steps`` optimisation steps: per step ``draw(step)``, the gradients cleared, ``loss`` under
    autocast and its backward, every optimiser stepped in order, then ``scheduler`` and
    ``after_step``; the loss checked and reported (:func:`step_done`, ``where`` names the stage).

    ``items``: the batch has this many items and ``loss`` can score any slice of them: a step that
    runs out of memory is redone in micro-batches of half the size, each loss weighted by its share
    (gradients summed; remembered as ``name`` for the records). Without it the batch is one piece.
    """
    micro = items if items is not None else 0
    losses: list[float] = []

    def backward(batch: B, step: int, size: int) -> torch.Tensor:
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)
        total = torch.zeros(())
        n = items if items is not None else 0
        parts = [slice(start, start + size) for start in range(0, n, size)] if items is not None else [slice(None)]
        for part in parts:
            with autocast(device):
                value = loss(batch, step, part)
            if items is not None and size < n:  # micro-batches: each weighted by its share of the batch
                value = value * (len(range(n)[part]) / n)
            value.backward()
            total = total + value.detach().float().cpu()
        return total

    for step in range(steps):
        batch = draw(step)
        if items is None:
            total = backward(batch, step, 0)
        else:
            total, micro = with_oom_backoff(lambda size: backward(batch, step, size), micro, name)  # noqa: B023
        for opt in optimizers:
            opt.step()
        if scheduler is not None:
            scheduler.step()
        if after_step is not None:
            after_step(step)
        losses.append(step_done(total, step, steps, progress, where))
    return LoopResult(tuple(losses), micro)

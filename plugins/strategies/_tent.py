"""The ``tent`` strategy's implementation (registered in :mod:`bench_plugins.strategies.tent`)."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch import nn

from bench.accel import run_info, to_device
from bench.adaptation import TargetBatches, require_target
from bench.domain.loop import adapt_batchnorm, source_model
from bench.domain.terms import entropy
from bench.encoders import count_parameters
from bench.errors import UserError
from bench.loop import prepare, run_steps
from bench.strategies import FitContext, Fitted
from bench.training import predict_fn

__all__ = ["Tent", "configure_for_tent", "entropy", "mean_entropy", "norm_layers"]

NORM_LAYERS = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm)


def norm_layers(module: nn.Module) -> list[nn.Module]:
    """The normalisation layers of ``module`` that have affine parameters."""
    return [m for m in module.modules() if isinstance(m, NORM_LAYERS) and getattr(m, "weight", None) is not None]


def configure_for_tent(module: nn.Module) -> list[nn.Parameter]:
    """Freeze everything but normalisation affine parameters; returns those parameters."""
    for p in module.parameters():
        p.requires_grad_(False)
    params = []
    for m in norm_layers(module):
        for p in (m.weight, m.bias):
            if p is not None:
                p.requires_grad_(True)
                params.append(p)
    return params


def mean_entropy(model: nn.Module, inputs: Iterable[torch.Tensor]) -> float:
    """Mean prediction entropy over fixed input batches, in the model's current mode, no update."""
    with torch.no_grad():
        return float(torch.cat([entropy(model(x)) for x in inputs]).mean())


class Tent:
    def fit(self, ctx: FitContext) -> Fitted:
        target = require_target(ctx, "tent")
        cfg = ctx.config
        baseline, shared = source_model(ctx)
        encoder = baseline.encoder
        assert encoder is not None
        model = copy.deepcopy(shared)
        params = configure_for_tent(model)  # backbone and bottleneck norms; the head stays fixed
        if not norm_layers(model.backbone):
            raise UserError(f"tent: encoder {encoder.name!r} has no BatchNorm/GroupNorm/LayerNorm affine parameters")
        trainable, total = count_parameters(model)
        batches = TargetBatches(target, encoder, int(cfg["tent_batch_size"]), ctx.seed, ctx.device)
        opt = torch.optim.Adam(params, lr=float(cfg["tent_lr"]))
        model.train()  # BatchNorm normalises by each target batch's statistics
        # A fixed probe of target batches, scored in the same mode as the loss before and after.
        probe = TargetBatches(target, encoder, int(cfg["tent_batch_size"]), ctx.seed + 1, ctx.device)
        probe_inputs = [probe.next() for _ in range(max(1, int(cfg["entropy_probe_batches"])))]
        info: dict[str, Any] = {"source_steps": baseline.info.get("steps"),
                                "entropy_before": round(mean_entropy(model, probe_inputs), 5)}
        fwd, channels_last = prepare(model, ctx.device)
        result = run_steps([opt], int(cfg["tent_steps"]),
                           lambda step: to_device(batches.next(), ctx.device, channels_last),
                           lambda x, step, part: entropy(fwd(x)).mean(), device=ctx.device, progress=ctx.progress,
                           where=" (tent)")
        entropies = result.losses
        info.update(run_info(fwd is not model, 0, 0))
        info["entropy_after"] = round(mean_entropy(model, probe_inputs), 5)
        # then target statistics (AdaBN on the adapted weights) for eval-mode prediction
        info["stat_batches"] = adapt_batchnorm(ctx, model, encoder, int(cfg["adapt_images"]),
                                               int(cfg["tent_batch_size"]))
        if entropies:
            info["entropy_first"] = round(float(np.mean(entropies[:5])), 5)
            info["entropy_last"] = round(float(np.mean(entropies[-5:])), 5)
        return Fitted(predict=predict_fn(model, encoder, ctx.device), trainable_params=trainable,
                      total_params=total, encoder=encoder.with_module(model.backbone), info=info, baseline=baseline)

"""The ``bitfit`` strategy's implementation (registered in :mod:`bench_plugins.strategies.bitfit`)."""

from __future__ import annotations

from torch import nn

from bench.adaptation import fit_frozen_backbone
from bench.errors import UserError
from bench.strategies import FitContext, Fitted


def mark_biases_trainable(module: nn.Module) -> int:
    """Freeze everything but parameters named ``*bias``; returns how many values train."""
    n = 0
    for name, p in module.named_parameters():
        is_bias = name == "bias" or name.endswith(".bias")
        p.requires_grad_(is_bias)
        n += p.numel() if is_bias else 0
    return n


class BitFit:
    def fit(self, ctx: FitContext) -> Fitted:
        encoder = ctx.load_encoder(pretrained=True)
        if mark_biases_trainable(encoder.module) == 0:
            raise UserError(f"bitfit: encoder {encoder.name!r} has no bias parameters to train; use lora or adapter")
        return fit_frozen_backbone(ctx, encoder, encoder.module)

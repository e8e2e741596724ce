"""The ``lora`` strategy's implementation (registered in :mod:`bench_plugins.strategies.lora`)."""

from __future__ import annotations

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from peft.tuners.lora import LoraLayer
from torch import nn

from bench.adaptation import fit_frozen_backbone
from bench.encoders import Encoder
from bench.errors import UserError
from bench.strategies import FitContext, Fitted


def apply_lora(encoder: Encoder, rank: int, alpha: float, dropout: float, seed: int = 0) -> PeftModel:
    """Wrap ``encoder.module`` with peft LoRA on ``encoder.lora_targets``; returns the peft model
    (only LoRA parameters require gradients)."""
    if not encoder.lora_targets:
        raise UserError(f"lora: encoder {encoder.name!r} declares no lora_targets; use adapter, bitfit or finetune")
    if rank < 1:
        raise UserError(f"lora: lora_rank must be a positive integer, got {rank}; e.g. --lora-rank 8")
    config = LoraConfig(r=int(rank), lora_alpha=float(alpha), lora_dropout=float(dropout),
                        target_modules=list(encoder.lora_targets), bias="none")
    torch.manual_seed(seed)  # LoRA's A matrices are randomly initialised
    try:
        return get_peft_model(encoder.module, config)
    except ValueError as e:
        raise UserError(f"lora: targets {encoder.lora_targets} of encoder {encoder.name!r} do not fit: {e}") from None


def lora_layers(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, LoraLayer)]


class LoRA:
    def fit(self, ctx: FitContext) -> Fitted:
        encoder = ctx.load_encoder(pretrained=True)
        peft_model = apply_lora(encoder, int(ctx.config["lora_rank"]), float(ctx.config["lora_alpha"]),
                                float(ctx.config.get("lora_dropout", 0.0)), ctx.seed)
        fitted = fit_frozen_backbone(ctx, encoder, peft_model)
        fitted.info["lora_layers"] = len(lora_layers(peft_model))
        return fitted

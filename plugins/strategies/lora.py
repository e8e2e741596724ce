"""``lora``: low-rank adapters (Hu et al. 2021) via peft, on the modules the encoder names.

The encoder's ``lora_targets`` (attention ``qkv``/``proj`` for ViTs, pointwise convolutions for
CNNs: peft supports ``nn.Linear`` and ``nn.Conv2d``) get a rank-``lora_rank`` update scaled by
``lora_alpha / lora_rank``; peft initialises ``B = 0``, so before the first step the model is the
pre-trained one. The backbone's own weights are frozen (BatchNorm statistics too); the new head
sits outside the peft-wrapped backbone and trains at ``head_lr_mult`` times the LoRA rate. After
training the adapters stay unmerged, so the base weights are untouched; ``merge_adapter()`` on
the fitted encoder's module folds them in (same outputs, base-model inference cost).
"""

from __future__ import annotations

import bench
from bench.specs import StrategySpec
from bench_plugins.strategies.bitfit import PEFT_DEFAULTS


@bench.hookimpl
def bench_register_strategies():
    return [
        StrategySpec(
            name="lora",
            description="LoRA via peft on the encoder's attention/conv targets; backbone frozen, head trains",
            loader=lambda: LoRA(),
            kind="train",
            requires=("pretrained", "trainable"),
            defaults={**PEFT_DEFAULTS, "lora_rank": 8, "lora_alpha": 16, "lora_dropout": 0.0},
        )
    ]


def apply_lora(encoder, rank: int, alpha: float, dropout: float, seed: int = 0):
    """Wrap ``encoder.module`` with peft LoRA on ``encoder.lora_targets``; returns the peft model
    (only LoRA parameters require gradients)."""
    import torch
    from peft import LoraConfig, get_peft_model

    from bench.errors import UserError

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


def lora_layers(module):
    from peft.tuners.lora import LoraLayer

    return [m for m in module.modules() if isinstance(m, LoraLayer)]


class LoRA:
    def fit(self, ctx):
        from bench_plugins.strategies.bitfit import fit_frozen_backbone

        encoder = ctx.load_encoder(pretrained=True)
        peft_model = apply_lora(encoder, int(ctx.config["lora_rank"]), float(ctx.config["lora_alpha"]),
                                float(ctx.config.get("lora_dropout", 0.0)), ctx.seed)
        fitted = fit_frozen_backbone(ctx, encoder, peft_model)
        fitted.info["lora_layers"] = len(lora_layers(peft_model))
        return fitted

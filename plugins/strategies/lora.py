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
from bench.recipes import PEFT_DEFAULTS, PEFT_LR_GRID
from bench.specs import StrategySpec
from bench_plugins.strategies import lazy_exports


@bench.hookimpl
def bench_register_strategies():
    return [
        StrategySpec(
            name="lora",
            description="LoRA via peft on the encoder's attention/conv targets; backbone frozen, head trains",
            loader="bench_plugins.strategies._lora:LoRA",
            kind="train",
            requires=("pretrained", "trainable"),
            defaults={**PEFT_DEFAULTS, "lora_rank": 8, "lora_alpha": 16, "lora_dropout": 0.0},
            tunable={"lr": PEFT_LR_GRID},
        )
    ]


__getattr__ = lazy_exports(__name__, "bench_plugins.strategies._lora", ["LoRA", "apply_lora", "lora_layers"])

"""``finetune``: pre-trained initialisation, every parameter trains.

Recipe (the seed's): the new linear head at ``head_lr_mult`` (10x) the backbone's learning rate,
as separate AdamW parameter groups; BatchNorm running statistics frozen (batches of a few images
would corrupt them); optional layer-wise learning-rate decay ``layer_decay`` (e.g. 0.7) from the
encoder's ordered layer groups. ``head_init = "zero-shot"`` (encoders with a text tower) starts
the head at the zero-shot classifier built from class-name prompts.
"""

from __future__ import annotations

import bench
from bench.recipes import FINETUNE_LR_GRID, RECIPE_DEFAULTS
from bench.specs import StrategySpec
from bench_plugins.strategies import lazy_exports


@bench.hookimpl
def bench_register_strategies():
    return [
        StrategySpec(
            name="finetune",
            description="full fine-tune: head at 10x the backbone lr, frozen BatchNorm stats, "
                        "optional layer-wise lr decay",
            loader="bench_plugins.strategies._finetune:Finetune",
            kind="train",
            requires=("pretrained", "trainable"),
            defaults={**RECIPE_DEFAULTS, "layer_decay": None, "head_init": "random"},
            tunable={"lr": FINETUNE_LR_GRID},
        )
    ]


__getattr__ = lazy_exports(__name__, "bench_plugins.strategies._finetune", ["Finetune"])

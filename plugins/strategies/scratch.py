"""``scratch``: the encoder's architecture with random initialisation, trained on the budget only.

The baseline every head-start is measured against. It uses the same step schedule as
``finetune`` (see :mod:`bench.training`), but BatchNorm trains normally (random-init running
statistics mean nothing) and the head has no separate learning rate.
"""

from __future__ import annotations

import bench
from bench.recipes import RECIPE_DEFAULTS, SCRATCH_LR_GRID
from bench.specs import StrategySpec
from bench_plugins.strategies import lazy_exports


@bench.hookimpl
def bench_register_strategies():
    return [
        StrategySpec(
            name="scratch",
            description="same architecture, random init, trained on the labelled budget only",
            loader="bench_plugins.strategies._scratch:Scratch",
            kind="train",
            requires=("trainable",),
            defaults={**RECIPE_DEFAULTS, "lr": 3e-3, "head_lr_mult": 1.0, "freeze_bn": False},
            tunable={"lr": SCRATCH_LR_GRID},
        )
    ]


__getattr__ = lazy_exports(__name__, "bench_plugins.strategies._scratch", ["Scratch"])

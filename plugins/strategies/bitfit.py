"""``bitfit``: only the backbone's bias terms (and the new head) train (Ben Zaken et al. 2022).

Every other backbone parameter is frozen. In networks whose convolutions have no bias (most CNNs
with BatchNorm) the trainable biases are the BatchNorm shifts; their running statistics stay
frozen as in every fine-tuning recipe here. PEFT methods train few parameters, so the default
learning rate is higher than full fine-tuning's (:data:`bench.recipes.PEFT_DEFAULTS`).
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
            name="bitfit",
            description="BitFit: only the backbone's biases and the new head train",
            loader="bench_plugins.strategies._bitfit:BitFit",
            kind="train",
            requires=("pretrained", "trainable"),
            defaults=dict(PEFT_DEFAULTS),
            tunable={"lr": PEFT_LR_GRID},
        )
    ]


__getattr__ = lazy_exports(__name__, "bench_plugins.strategies._bitfit", ["BitFit", "mark_biases_trainable"])

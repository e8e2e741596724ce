"""``lp-ft``: linear probe, then full fine-tune from that head (Kumar et al. 2022).

Fine-tuning with a random head sends large, noisy gradients through the pre-trained features and
distorts them; starting from a fitted linear head avoids most of that. Stage 1 fits a multinomial
logistic regression (``lp_C``, default 10 as in ``linear-probe``) on the *cached frozen features*
of the labelled budget divided by their mean L2 norm (one scalar, so features are about unit norm
as in ``linear-probe`` yet the head stays exactly linear in the raw features; per-dimension
standardisation would blow up near-constant dimensions into huge weights, which fine-tuning then
destroys). The scale is folded into the weights. Stage 2 fine-tunes everything from that head
with the shared loop at a lower learning rate than ``finetune`` and no separate head rate
(``head_lr_mult = 1``); ``layer_decay`` works as in ``finetune``.
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
            name="lp-ft",
            description="linear probe on frozen features, then full fine-tune from that head at a lower lr "
                        "(Kumar et al. 2022)",
            loader="bench_plugins.strategies._lp_ft:LPFT",
            kind="train",
            requires=("pretrained", "trainable"),
            defaults={**RECIPE_DEFAULTS, "lr": 3e-4, "head_lr_mult": 1.0, "lp_C": 10.0, "lp_max_iter": 2000,
                      "layer_decay": None},
            tunable={"lr": FINETUNE_LR_GRID},
        )
    ]


__getattr__ = lazy_exports(__name__, "bench_plugins.strategies._lp_ft", ["LPFT"])

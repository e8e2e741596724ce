"""``bn-adapt``: AdaBN (Li et al., 2016), the baseline Tent is measured against.

The paired source-only model (:func:`bench.domain.loop.source_only`: trained as ``finetune`` trains,
backbone BatchNorm on its pre-trained statistics, AdamW) with every BatchNorm's statistics
re-estimated on up to ``adapt_images`` unlabelled target images (batches of ``adapt_batch_size``,
cumulative average, no gradient). It updates no parameter, so it also serves where ``tent`` has
nothing to train. An encoder without BatchNorm fails with a one-line reason (nothing to adapt).
"""

from __future__ import annotations

import bench
from bench.domain.recipe import DOMAIN_DEFAULTS
from bench.specs import StrategySpec
from bench_plugins.strategies import lazy_exports

BN_ADAPT_DEFAULTS = {**DOMAIN_DEFAULTS, "adapt_images": 2048, "adapt_batch_size": 64}


@bench.hookimpl
def bench_register_strategies():
    return [
        StrategySpec(
            name="bn-adapt",
            description="AdaBN: the source-only model with BatchNorm statistics re-estimated on the target pool",
            loader="bench_plugins.strategies._bn_adapt:BnAdapt",
            kind="train",
            requires=("pretrained", "trainable", "unlabelled_target"),
            defaults=BN_ADAPT_DEFAULTS,
        )
    ]


__getattr__ = lazy_exports(__name__, "bench_plugins.strategies._bn_adapt", ["BnAdapt"])

"""``dann-features``: Ganin & Lempitsky (2015), DANN on frozen features.

The encoder stays frozen; its cached features of the labelled source budget and the unlabelled target pool
train a bottleneck (256) and a linear head on :func:`bench.domain.features.train_features` (SGD 0.01, momentum
0.9, weight decay 1e-3, ``(1 + 10 p)^-0.75``, 2,000 steps). The loop adds: a domain critic behind gradient
reversal on the bottleneck features. The critic (two hidden ReLU layers of 1024, dropout 0.5) trains at the
head's rate; the papers' weight 1. ``Fitted.baseline``: ``source-only-features`` (the same loop without the
term).
"""

from __future__ import annotations

import bench
from bench.domain.recipe import FEATURE_CRITIC_DEFAULTS, FEATURE_DEFAULTS
from bench.specs import StrategySpec

DANN_FEATURES_DEFAULTS = {**FEATURE_DEFAULTS, **FEATURE_CRITIC_DEFAULTS}


@bench.hookimpl
def bench_register_strategies():
    return [
        StrategySpec(
            name="dann-features",
            description="frozen-feature DA: a domain critic behind gradient reversal on the bottleneck features "
                        "(paired source-only-features)",
            loader="bench_plugins.strategies._dann:DannFeatures",
            kind="features",
            requires=("unlabelled_target",),
            defaults=DANN_FEATURES_DEFAULTS,
        )
    ]

"""``mcc-features``: Jin et al. (2020), minimum class confusion on frozen features.

The encoder stays frozen; its cached features of the labelled source budget and the unlabelled target pool
train a bottleneck (256) and a linear head on :func:`bench.domain.features.train_features` (SGD 0.01, momentum
0.9, weight decay 1e-3, ``(1 + 10 p)^-0.75``, 2,000 steps). The loop adds: minimum class confusion on target
predictions. The paper's weight 1 and temperature 2.5 (``mcc``'s term). ``Fitted.baseline``: ``source-only-
features`` (the same loop without the term).
"""

from __future__ import annotations

import bench
from bench.domain.recipe import FEATURE_DEFAULTS
from bench.specs import StrategySpec

MCC_FEATURES_DEFAULTS = {**FEATURE_DEFAULTS, "mcc_weight": 1.0, "temperature": 2.5}


@bench.hookimpl
def bench_register_strategies():
    return [
        StrategySpec(
            name="mcc-features",
            description="frozen-feature DA: minimum class confusion on target predictions (paired "
                        "source-only-features)",
            loader="bench_plugins.strategies._mcc:MccFeatures",
            kind="features",
            requires=("unlabelled_target",),
            defaults=MCC_FEATURES_DEFAULTS,
        )
    ]

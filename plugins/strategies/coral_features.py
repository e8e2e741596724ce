"""``coral-features``: Sun & Saenko (2016), Deep CORAL on frozen features.

The encoder stays frozen; its cached features of the labelled source budget and the unlabelled target pool
train a bottleneck (256) and a linear head on :func:`bench.domain.features.train_features` (SGD 0.01, momentum
0.9, weight decay 1e-3, ``(1 + 10 p)^-0.75``, 2,000 steps). The loop adds: CORAL alignment of source and
target bottleneck feature means and covariances. ``coral``'s term at weight 1 (the paper's trade-off, not
tuned here). ``Fitted.baseline``: ``source-only-features`` (the same loop without the term).
"""

from __future__ import annotations

import bench
from bench.domain.recipe import FEATURE_DEFAULTS
from bench.specs import StrategySpec

CORAL_FEATURES_DEFAULTS = {**FEATURE_DEFAULTS, "coral_weight": 1.0}


@bench.hookimpl
def bench_register_strategies():
    return [
        StrategySpec(
            name="coral-features",
            description="frozen-feature DA: CORAL alignment of source and target bottleneck feature means and "
                        "covariances (paired source-only-features)",
            loader="bench_plugins.strategies._coral:CoralFeatures",
            kind="features",
            requires=("unlabelled_target",),
            defaults=CORAL_FEATURES_DEFAULTS,
        )
    ]

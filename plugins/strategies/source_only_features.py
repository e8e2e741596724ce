"""``source-only-features``: the frozen-feature DA protocol's standard source-only baseline.

The encoder stays frozen; its cached features of the labelled source budget and the unlabelled target pool
train a bottleneck (256) and a linear head on :func:`bench.domain.features.train_features` (SGD 0.01, momentum
0.9, weight decay 1e-3, ``(1 + 10 p)^-0.75``, 2,000 steps). The loop adds: nothing: the same bottleneck and
head on source features only. Every frozen-feature DA record's ``Fitted.baseline`` is this cell (same keys,
trained once per session and key).
"""

from __future__ import annotations

import bench
from bench.domain.recipe import FEATURE_DEFAULTS
from bench.specs import StrategySpec

SOURCE_ONLY_FEATURES_DEFAULTS = dict(FEATURE_DEFAULTS)


@bench.hookimpl
def bench_register_strategies():
    return [
        StrategySpec(
            name="source-only-features",
            description="frozen-feature DA: nothing: the same bottleneck and head on source features only",
            loader="bench_plugins.strategies._features:SourceOnlyFeatures",
            kind="features",
            requires=("unlabelled_target",),
            defaults=SOURCE_ONLY_FEATURES_DEFAULTS,
        )
    ]

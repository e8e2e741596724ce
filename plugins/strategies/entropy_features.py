"""``entropy-features``: Grandvalet & Bengio (2005), entropy minimisation on frozen features.

The encoder stays frozen; its cached features of the labelled source budget and the unlabelled target pool
train a bottleneck (256) and a linear head on :func:`bench.domain.features.train_features` (SGD 0.01, momentum
0.9, weight decay 1e-3, ``(1 + 10 p)^-0.75``, 2,000 steps). The loop adds: the mean prediction entropy of
target batches. ``entropy_weight`` 0.1, a common re-implementation value (weight 1 from step 0 invites
collapse), not tuned here. ``Fitted.baseline``: ``source-only-features`` (the same loop without the term).
"""

from __future__ import annotations

import bench
from bench.domain.recipe import FEATURE_DEFAULTS
from bench.specs import StrategySpec

ENTROPY_FEATURES_DEFAULTS = {**FEATURE_DEFAULTS, "entropy_weight": 0.1}


@bench.hookimpl
def bench_register_strategies():
    return [
        StrategySpec(
            name="entropy-features",
            description="frozen-feature DA: the mean prediction entropy of target batches (paired "
                        "source-only-features)",
            loader="bench_plugins.strategies._features:EntropyFeatures",
            kind="features",
            requires=("unlabelled_target",),
            defaults=ENTROPY_FEATURES_DEFAULTS,
        )
    ]

"""``importance-features``: Sugiyama et al. (2007), importance weighting on frozen features.

The encoder stays frozen; its cached features of the labelled source budget and the unlabelled target pool
train a bottleneck (256) and a linear head on :func:`bench.domain.features.train_features` (SGD 0.01, momentum
0.9, weight decay 1e-3, ``(1 + 10 p)^-0.75``, 2,000 steps). The loop adds: source items weighted by a cross-
fitted density ratio p(target|x)/p(source|x). The weights are ``importance``'s (a balanced logistic domain
classifier on L2-normalised features, clipped to [1/10, 10]). ``Fitted.baseline``: ``source-only-features``
(the same loop without the term).
"""

from __future__ import annotations

import bench
from bench.domain.recipe import FEATURE_DEFAULTS
from bench.specs import StrategySpec

IMPORTANCE_FEATURES_DEFAULTS = {**FEATURE_DEFAULTS, "domain_C": 1.0, "max_weight": 10.0}


@bench.hookimpl
def bench_register_strategies():
    return [
        StrategySpec(
            name="importance-features",
            description="frozen-feature DA: source items weighted by a cross-fitted density ratio "
                        "p(target|x)/p(source|x) (paired source-only-features)",
            loader="bench_plugins.strategies._importance:ImportanceFeatures",
            kind="features",
            requires=("unlabelled_target",),
            defaults=IMPORTANCE_FEATURES_DEFAULTS,
        )
    ]

"""``cdan-features``: Long et al. (2018), CDAN+E on frozen features.

The encoder stays frozen; its cached features of the labelled source budget and the unlabelled target pool
train a bottleneck (256) and a linear head on :func:`bench.domain.features.train_features` (SGD 0.01, momentum
0.9, weight decay 1e-3, ``(1 + 10 p)^-0.75``, 2,000 steps). The loop adds: a critic on the multilinear map of
bottleneck features and predictions, entropy conditioning. As ``cdan``'s term (the full map while ``D * K <=
max_full_dim``); the papers' weight 1. ``Fitted.baseline``: ``source-only-features`` (the same loop without
the term).
"""

from __future__ import annotations

import bench
from bench.domain.recipe import FEATURE_CRITIC_DEFAULTS, FEATURE_DEFAULTS
from bench.specs import StrategySpec

CDAN_FEATURES_DEFAULTS = {**FEATURE_DEFAULTS, **FEATURE_CRITIC_DEFAULTS, "entropy_conditioning": True,
                          "max_full_dim": 4096, "random_dim": 1024}


@bench.hookimpl
def bench_register_strategies():
    return [
        StrategySpec(
            name="cdan-features",
            description="frozen-feature DA: a critic on the multilinear map of bottleneck features and "
                        "predictions, entropy conditioning (paired source-only-features)",
            loader="bench_plugins.strategies._cdan:CdanFeatures",
            kind="features",
            requires=("unlabelled_target",),
            defaults=CDAN_FEATURES_DEFAULTS,
        )
    ]

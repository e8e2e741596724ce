"""``importance``: importance-weighted training of source examples (covariate-shift correction).

1. A domain classifier (logistic regression, penalty ``domain_C``) on the frozen, L2-normalised
   features separates the labelled source budget from the unlabelled target pool, with balanced
   class weights so that its odds estimate the density ratio. Each source item's probability
   comes from 5-fold cross-fitting (the classifier never scores an item it was trained on, which
   would push every weight towards zero).
2. ``w = p(target | x) / p(source | x)``, clipped to ``[1 / max_weight, max_weight]`` and
   rescaled to mean 1.
3. :mod:`bench.domain.loop`'s loop trains on the budget with each item's loss multiplied by its
   weight; ``Fitted.baseline`` is the same loop unweighted (the shared source-only baseline).
"""

from __future__ import annotations

import bench
from bench.domain.recipe import DOMAIN_DEFAULTS
from bench.specs import StrategySpec
from bench_plugins.strategies import lazy_exports

IMPORTANCE_DEFAULTS = {**DOMAIN_DEFAULTS, "domain_C": 1.0, "max_weight": 10.0}


@bench.hookimpl
def bench_register_strategies():
    return [
        StrategySpec(
            name="importance",
            description="importance-weighted fine-tune: source items weighted by p(target|x)/p(source|x) "
                        "from a domain classifier",
            loader="bench_plugins.strategies._importance:Importance",
            kind="train",
            requires=("pretrained", "trainable", "unlabelled_target"),
            defaults=IMPORTANCE_DEFAULTS,
        )
    ]


__getattr__ = lazy_exports(__name__, "bench_plugins.strategies._importance", ["Importance", "importance_weights"])

"""``prototype``: nearest class mean of L2-normalised frozen features (the ProtoNet classifier,
Snell et al. 2017, with the pre-trained encoder as the embedding).

Each class's prototype is the mean of its labelled items' unit-norm features; an item goes to the
prototype at the smallest squared Euclidean distance. Classes with no labelled item have no
prototype and are never predicted. The fitted parameters are the prototypes (classes x dim).
"""

from __future__ import annotations

import bench
from bench.specs import StrategySpec
from bench_plugins.strategies import lazy_exports


@bench.hookimpl
def bench_register_strategies():
    return [
        StrategySpec(
            name="prototype",
            description="nearest class mean (ProtoNet) of L2-normalised frozen features",
            loader="bench_plugins.strategies._prototype:Prototype",
            kind="features",
            defaults={},
        )
    ]


__getattr__ = lazy_exports(__name__, "bench_plugins.strategies._prototype",
                           ["Prototype", "class_means", "nearest_prototype"])

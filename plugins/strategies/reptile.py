"""``reptile``: Reptile meta-learning of a head on the frozen encoder's features, adapted by SGD per episode.

Nichol, Achiam & Schulman (2018), "On First-Order Meta-Learning Algorithms": the same head and
inner loop as ``fomaml`` (a residual linear block and an N-way classifier on unit-norm frozen
features scaled by ``feature_scale`` = 10; ``inner_steps`` = 5 SGD steps at ``inner_lr`` = 0.1 on
the parameters ``adapt`` names), but the inner steps run on the whole base-class episode (support
and query, ``meta_query`` = 15 per class) and the outer update moves the meta-parameters towards
the adapted ones: ``theta <- theta + outer_lr * (phi - theta)`` (``outer_lr`` = 0.1, constant,
``meta_steps`` = 300). Each evaluation episode takes the same inner steps on its support set.
Values fixed in advance, never chosen on test data. Runs on the episode protocol only.
"""

from __future__ import annotations

import bench
from bench.specs import StrategySpec
from bench_plugins.strategies import lazy_exports


@bench.hookimpl
def bench_register_strategies():
    return [
        StrategySpec(
            name="reptile",
            description="Reptile (Nichol et al. 2018) of a head on frozen features: theta += eps (phi - theta) "
                        "after inner SGD on base episodes (--episodes only)",
            loader="bench_plugins.strategies._reptile:Reptile",
            kind="features",
            defaults={"meta_steps": 300, "meta_query": 15, "inner_steps": 5, "inner_lr": 0.1, "outer_lr": 0.1,
                      "feature_scale": 10.0, "adapt": "all"},
        )
    ]


__getattr__ = lazy_exports(__name__, "bench_plugins.strategies._reptile", ["Reptile", "reptile_loss"])

"""``knn``: weighted k-nearest-neighbour vote on frozen, cached, L2-normalised features.

As in DINOv2's k-NN evaluation: cosine similarity to every labelled item, the ``k`` most similar
(``k = min(knn_k, n)``, default 20) vote for their class with weight ``exp(similarity / T)``
(``T = knn_temperature``, default 0.07); the class with the largest summed weight wins (ties go
to the lower class index). Nothing is trained: the labelled features are the model.
"""

from __future__ import annotations

import bench
from bench.specs import StrategySpec
from bench_plugins.strategies import lazy_exports


@bench.hookimpl
def bench_register_strategies():
    return [
        StrategySpec(
            name="knn",
            description="cosine k-NN, temperature-weighted vote (DINOv2 eval: k=min(20,n), T=0.07) on frozen features",
            loader="bench_plugins.strategies._knn:KNN",
            kind="features",
            defaults={"knn_k": 20, "knn_temperature": 0.07},
            tunable={"knn_k": (1, 5, 10, 20)},
        )
    ]


__getattr__ = lazy_exports(__name__, "bench_plugins.strategies._knn", ["KNN", "knn_predict"])

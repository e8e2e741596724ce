"""``knn``: weighted k-nearest-neighbour vote on frozen, cached, L2-normalised features.

As in DINOv2's k-NN evaluation: cosine similarity to every labelled item, the ``k`` most similar
(``k = min(knn_k, n)``, default 20) vote for their class with weight ``exp(similarity / T)``
(``T = knn_temperature``, default 0.07); the class with the largest summed weight wins (ties go
to the lower class index). Nothing is trained: the labelled features are the model.
"""

from __future__ import annotations

import bench
from bench.specs import StrategySpec


@bench.hookimpl
def bench_register_strategies():
    return [
        StrategySpec(
            name="knn",
            description="cosine k-NN, temperature-weighted vote (DINOv2 eval: k=min(20,n), T=0.07) on frozen features",
            loader=lambda: KNN(),
            kind="features",
            defaults={"knn_k": 20, "knn_temperature": 0.07},
        )
    ]


def knn_predict(train_x, train_y, query_x, num_classes: int, k: int, temperature: float, chunk: int = 1024):
    """Class indices for ``query_x`` by the temperature-weighted vote of its ``k`` cosine neighbours."""
    import numpy as np

    from bench.probe import l2_normalise

    train_x = l2_normalise(np.asarray(train_x, dtype=np.float64))
    train_y = np.asarray(train_y, dtype=np.int64)
    k = int(min(k, len(train_y)))
    out = np.empty(len(query_x), dtype=np.int64)
    for start in range(0, len(query_x), chunk):
        q = l2_normalise(np.asarray(query_x[start : start + chunk], dtype=np.float64))
        sims = q @ train_x.T
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        weights = np.exp(np.take_along_axis(sims, top, axis=1) / temperature)
        votes = np.zeros((len(q), num_classes))
        np.add.at(votes, (np.arange(len(q))[:, None], train_y[top]), weights)
        out[start : start + chunk] = votes.argmax(axis=1)
    return out


class KNN:
    def fit(self, ctx):
        import numpy as np

        from bench.errors import UserError
        from bench.strategies import Fitted

        k, temperature = int(ctx.config["knn_k"]), float(ctx.config["knn_temperature"])
        if k < 1 or temperature <= 0:
            raise UserError(f"knn: knn_k must be >= 1 and knn_temperature > 0, got k={k}, T={temperature}")
        train_x = ctx.features(ctx.labelled)
        train_y = np.asarray(ctx.labelled.labels)
        num_classes = ctx.task.num_classes
        return Fitted(
            predict=lambda split: knn_predict(train_x, train_y, ctx.features(split), num_classes, k, temperature),
            trainable_params=0,
            total_params=0,
            info={"k": int(min(k, len(train_y))), "temperature": temperature},
        )

"""The ``knn`` strategy's implementation (registered in :mod:`bench_plugins.strategies.knn`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.errors import UserError
from bench.probe import l2_normalise
from bench.strategies import FitContext, Fitted


def knn_predict(train_x: Any, train_y: Any, query_x: Any, num_classes: int, k: int, temperature: float,
                chunk: int = 1024) -> np.ndarray:
    """Class indices for ``query_x`` by the temperature-weighted vote of its ``k`` cosine neighbours."""
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
    def fit(self, ctx: FitContext) -> Fitted:
        k, temperature = int(ctx.config["knn_k"]), float(ctx.config["knn_temperature"])
        if k < 1 or temperature <= 0:
            raise UserError(f"knn: knn_k must be >= 1 and knn_temperature > 0, got k={k}, T={temperature}")
        train_x = ctx.features(ctx.labelled)
        train_y = np.asarray(ctx.labelled.labels)
        num_classes = ctx.num_classes
        return Fitted(
            predict=lambda split: knn_predict(train_x, train_y, ctx.features(split), num_classes, k, temperature),
            trainable_params=0,
            total_params=0,
            info={"k": int(min(k, len(train_y))), "temperature": temperature},
        )

"""The ``prototype`` strategy's implementation (registered in :mod:`bench_plugins.strategies.prototype`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.probe import l2_normalise
from bench.strategies import FitContext, Fitted


def class_means(x: Any, y: Any, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """``(prototypes [C, D], present [C] bool)`` from unit-norm features."""
    x = l2_normalise(np.asarray(x, dtype=np.float64))
    y = np.asarray(y, dtype=np.int64)
    protos = np.zeros((num_classes, x.shape[1]))
    present = np.zeros(num_classes, dtype=bool)
    for c in np.unique(y):
        protos[c] = x[y == c].mean(axis=0)
        present[c] = True
    return protos, present


def nearest_prototype(protos: np.ndarray, present: np.ndarray, query_x: Any) -> np.ndarray:
    q = l2_normalise(np.asarray(query_x, dtype=np.float64))
    d = (q**2).sum(1)[:, None] - 2 * q @ protos.T + (protos**2).sum(1)[None, :]
    d[:, ~present] = np.inf
    return d.argmin(axis=1)


class Prototype:
    def fit(self, ctx: FitContext) -> Fitted:
        protos, present = class_means(ctx.features(ctx.labelled), ctx.labelled.labels, ctx.num_classes)
        n = int(present.sum() * protos.shape[1])
        return Fitted(
            predict=lambda split: nearest_prototype(protos, present, ctx.features(split)),
            trainable_params=n,
            total_params=n,
            info={"classes_with_prototype": int(present.sum())},
        )

"""``prototype``: nearest class mean of L2-normalised frozen features (the ProtoNet classifier,
Snell et al. 2017, with the pre-trained encoder as the embedding).

Each class's prototype is the mean of its labelled items' unit-norm features; an item goes to the
prototype at the smallest squared Euclidean distance. Classes with no labelled item have no
prototype and are never predicted. The fitted parameters are the prototypes (classes x dim).
"""

from __future__ import annotations

import bench
from bench.specs import StrategySpec


@bench.hookimpl
def bench_register_strategies():
    return [
        StrategySpec(
            name="prototype",
            description="nearest class mean (ProtoNet) of L2-normalised frozen features",
            loader=lambda: Prototype(),
            kind="features",
            defaults={},
        )
    ]


def class_means(x, y, num_classes: int):
    """``(prototypes [C, D], present [C] bool)`` from unit-norm features."""
    import numpy as np

    from bench.probe import l2_normalise

    x = l2_normalise(np.asarray(x, dtype=np.float64))
    y = np.asarray(y, dtype=np.int64)
    protos = np.zeros((num_classes, x.shape[1]))
    present = np.zeros(num_classes, dtype=bool)
    for c in np.unique(y):
        protos[c] = x[y == c].mean(axis=0)
        present[c] = True
    return protos, present


def nearest_prototype(protos, present, query_x):
    import numpy as np

    from bench.probe import l2_normalise

    q = l2_normalise(np.asarray(query_x, dtype=np.float64))
    d = (q**2).sum(1)[:, None] - 2 * q @ protos.T + (protos**2).sum(1)[None, :]
    d[:, ~present] = np.inf
    return d.argmin(axis=1)


class Prototype:
    def fit(self, ctx):
        from bench.strategies import Fitted

        protos, present = class_means(ctx.features(ctx.labelled), ctx.labelled.labels, ctx.task.num_classes)
        n = int(present.sum() * protos.shape[1])
        return Fitted(
            predict=lambda split: nearest_prototype(protos, present, ctx.features(split)),
            trainable_params=n,
            total_params=n,
            info={"classes_with_prototype": int(present.sum())},
        )

"""kNN and prototype strategies: predictions equal a hand computation on toy feature sets."""

from __future__ import annotations

import math

import numpy as np

from bench.strategies import FitContext
from bench.tasks import ArraySplit, TaskData

# Toy 2-d features: class 0 around +x, class 1 around +y, class 2 around -x.
TRAIN = np.array([[1.0, 0.1], [2.0, -0.1], [0.1, 1.0], [-0.1, 3.0], [-1.0, 0.2], [-1.0, -0.2]])
TRAIN_Y = np.array([0, 0, 1, 1, 2, 2])
QUERY = np.array([[1.0, 0.9], [-1.0, 0.8], [0.2, -1.0], [0.0, 1.0]])


def ctx_for(config: dict, train_x=TRAIN, train_y=TRAIN_Y, query_x=QUERY) -> tuple[FitContext, ArraySplit]:
    feats = {}
    def split_of(prefix, x, y):
        ids = [f"{prefix}/{i}" for i in range(len(x))]
        feats.update(zip(ids, x))
        return ArraySplit(ids, np.zeros((len(x), 2, 2, 1), dtype=np.uint8), y)
    train = split_of("train", train_x, train_y)
    query = split_of("query", query_x, np.zeros(len(query_x), dtype=np.int64))
    task = TaskData(name="toy", classes=["a", "b", "c"], train=train, test=query)
    ctx = FitContext(task_name=task.name, classes=list(task.classes), extra=task.extra,
                     labelled=train, unlabelled_target=None, config=config, seed=0, device="cpu",
                     load_encoder=None,
                     features=lambda split: np.stack([feats[i] for i in split.ids]).astype(np.float32))
    return ctx, query


def hand_knn(train_x, train_y, q, k, T, num_classes=3):
    """Literal DINOv2-style vote: cosine similarities, top k, weights exp(sim / T), per-class sums."""
    unit = [v / math.hypot(*v) for v in train_x]
    qu = q / math.hypot(*q)
    sims = [float(qu @ u) for u in unit]
    top = sorted(range(len(sims)), key=lambda i: -sims[i])[:k]
    votes = [0.0] * num_classes
    for i in top:
        votes[train_y[i]] += math.exp(sims[i] / T)
    return int(np.argmax(votes))


def test_knn_matches_hand_computed_weighted_vote():
    from bench_plugins.strategies import knn

    spec = next(s for s in knn.bench_register_strategies() if s.name == "knn")
    assert spec.kind == "features" and spec.defaults["knn_k"] == 20 and spec.defaults["knn_temperature"] == 0.07
    for k, T in [(20, 0.07), (3, 0.07), (1, 0.5), (4, 10.0)]:
        ctx, query = ctx_for({"knn_k": k, "knn_temperature": T})
        fitted = spec.load().fit(ctx)
        expected = [hand_knn(TRAIN, TRAIN_Y, q, min(k, len(TRAIN)), T) for q in QUERY]
        assert fitted.predict(query).tolist() == expected
        assert fitted.info["k"] == min(k, len(TRAIN))
        assert fitted.trainable_params == 0


def test_knn_temperature_decides_between_many_far_and_one_near_neighbour():
    from bench_plugins.strategies.knn import knn_predict

    # One class-1 item almost identical to the query, three class-0 items at 60 degrees.
    train = np.array([[1.0, 0.0], [0.5, math.sqrt(3) / 2], [0.5, -math.sqrt(3) / 2], [0.5, math.sqrt(3) / 2 + 1e-3]])
    labels = np.array([1, 0, 0, 0])
    q = np.array([[1.0, 0.0]])
    # Sharp T: exp(1/0.07) >> 3 exp(0.5/0.07) -> the near neighbour wins; flat T: the majority wins.
    assert knn_predict(train, labels, q, 2, k=4, temperature=0.07).tolist() == [1]
    assert knn_predict(train, labels, q, 2, k=4, temperature=100.0).tolist() == [0]


def test_prototype_is_nearest_mean_of_unit_features():
    from bench_plugins.strategies import prototype

    spec = next(s for s in prototype.bench_register_strategies() if s.name == "prototype")
    assert spec.kind == "features"
    ctx, query = ctx_for({})
    fitted = spec.load().fit(ctx)
    unit = TRAIN / np.linalg.norm(TRAIN, axis=1, keepdims=True)
    means = np.stack([unit[TRAIN_Y == c].mean(0) for c in range(3)])
    expected = []
    for q in QUERY:
        qu = q / np.linalg.norm(q)
        expected.append(int(np.argmin([((qu - m) ** 2).sum() for m in means])))
    assert fitted.predict(query).tolist() == expected
    assert fitted.trainable_params == 3 * 2


def test_prototype_never_predicts_a_class_without_labels():
    from bench_plugins.strategies import prototype

    keep = TRAIN_Y != 2
    ctx, _ = ctx_for({}, train_x=TRAIN[keep], train_y=TRAIN_Y[keep])
    query_x = np.array([[-1.0, 0.0], [-1.0, 0.1]])  # would be class 2
    ctx2, query = ctx_for({}, train_x=TRAIN[keep], train_y=TRAIN_Y[keep], query_x=query_x)
    fitted = next(s for s in prototype.bench_register_strategies()).load().fit(ctx2)
    preds = fitted.predict(query)
    assert 2 not in preds.tolist()
    assert fitted.info["classes_with_prototype"] == 2

"""The linear probe keeps feature magnitude (one global scale from the budget) and records its solver."""

from __future__ import annotations

import numpy as np

from bench.adaptation import probe_head_weights
from bench.probe import FeatureScale, fit_logistic_info
from bench.strategies import FitContext
from bench.tasks import ArraySplit


def magnitude_task(n_per_class: int, seed: int, dim: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Four classes that differ only in overall brightness: item = level_c * (1 + small texture)."""
    rng = np.random.default_rng(seed)
    levels = np.array([0.25, 0.5, 0.75, 1.0])
    y = np.repeat(np.arange(4), n_per_class)
    texture = 1.0 + 0.05 * rng.standard_normal((len(y), dim))
    return levels[y, None] * texture, y


def ctx_for(x: np.ndarray, y: np.ndarray, config: dict) -> FitContext:
    feats = {f"l/{i}": v for i, v in enumerate(x)}
    labelled = ArraySplit(list(feats), np.zeros((len(y), 2, 2, 1), dtype=np.uint8), y)

    def features(split):
        return np.stack([feats[i] for i in split.ids]).astype(np.float32)

    return FitContext(labelled=labelled, task_name="bright", classes=list("abcd"), config=config, seed=0,
                      features=features)


def query_split(x: np.ndarray, ctx: FitContext) -> ArraySplit:
    ids = [f"q/{i}" for i in range(len(x))]
    store = {i: v for i, v in zip(ids, x)}
    old = ctx.features
    ctx.features = lambda split: (np.stack([store[i] for i in split.ids]).astype(np.float32)
                                  if split.ids[0].startswith("q/") else old(split))
    return ArraySplit(ids, np.zeros((len(x), 2, 2, 1), dtype=np.uint8), np.zeros(len(x), dtype=np.int64))


def test_linear_probe_separates_classes_that_differ_only_in_brightness():
    """Guards against unit-length normalisation of each feature vector, which erased brightness
    (the probe scored about chance, 25%, on this task)."""
    from bench_plugins.strategies._linear_probe import LinearProbe

    x, y = magnitude_task(10, seed=0)
    xq, yq = magnitude_task(50, seed=1)
    ctx = ctx_for(x, y, {"C": 10.0, "max_iter": 2000, "head_init": "random"})
    fitted = LinearProbe().fit(ctx)
    acc = float((fitted.predict(query_split(xq, ctx)) == yq).mean())
    assert acc >= 0.98
    assert fitted.info["probe_converged"] is True and 0 < fitted.info["probe_iterations"] < 2000


def test_feature_scale_is_one_global_centred_scale_from_the_labelled_set():
    x = np.array([[1.0, 0.0], [3.0, 0.0], [2.0, 2.0], [2.0, -2.0]])
    s = FeatureScale.fit(x)
    assert s.mean.tolist() == [2.0, 0.0] and s.scale == 1.5  # distances 1, 1, 2, 2
    assert np.allclose(s(x), (x - [2.0, 0.0]) / 1.5)
    # a ten-fold larger encoder output gives the same scaled features: C means the same
    assert np.allclose(FeatureScale.fit(10 * x)(10 * x), s(x))
    W, b = s.fold(np.array([[1.0, 2.0]]), np.array([0.5]))
    assert np.allclose(x @ W.T + b, s(x) @ np.array([[1.0, 2.0]]).T + 0.5)


def test_probe_records_iterations_and_non_convergence():
    """Guards against probes that stop at max_iter silently."""
    x, y = magnitude_task(10, seed=2)
    _, info = fit_logistic_info(FeatureScale.fit(x)(x), y, 1e4, 2, 0)
    assert info == {"probe_iterations": 2, "probe_converged": False}
    _, info = fit_logistic_info(FeatureScale.fit(x)(x), y, 1.0, 2000, 0)
    assert info["probe_converged"] is True and info["probe_iterations"] < 2000


def test_probe_head_on_raw_features_equals_the_probe_and_records_its_fit():
    """LP-FT's and EWC's head: the probe's scaling folded into W and b, its solver recorded."""
    x, y = magnitude_task(10, seed=3)
    info: dict = {}
    W, b, acc = probe_head_weights(x, y, 5, C=10.0, max_iter=2000, seed=0, info=info)
    xq, yq = magnitude_task(50, seed=4)
    assert float(((xq @ W.T + b).argmax(1) == yq).mean()) >= 0.98 and acc == 1.0
    assert info["probe_converged"] is True and info["probe_iterations"] > 0
    assert (b[4] < (x @ W[:4].T + b[:4]).min())  # the absent class is never predicted on the budget

"""l2-sp, ewc and lp-ft: penalties and Fisher equal hand computations, the probe head equals the
fitted logistic regression, and training changes every weight while BatchNorm stats stay frozen."""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest
import torch
from torch import nn

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import timm  # noqa: E402

from bench.encoders import Encoder, count_parameters, encode  # noqa: E402
from bench.strategies import FitContext  # noqa: E402
from bench.tasks import ArraySplit, TaskData  # noqa: E402

NUM_CLASSES = 3
FAST = {"epochs": 1, "min_steps": 5, "max_steps": 5, "batch_size": 8, "augment": "none"}


def tiny_cnn() -> Encoder:
    torch.manual_seed(0)
    net = timm.create_model("test_efficientnet", num_classes=0)
    return Encoder(name="tiny-cnn", module=net, feature_dim=net.num_features, input_size=32)


def make_ctx(base: Encoder, defaults: dict, **overrides) -> FitContext:
    rng = np.random.default_rng(0)
    n = 12
    images = rng.integers(0, 256, size=(n, 16, 16, 3), dtype=np.uint8)
    labels = np.arange(n) % NUM_CLASSES
    train = ArraySplit([f"t/{i}" for i in range(n)], images, labels)
    task = TaskData(name="toy", classes=[str(c) for c in range(NUM_CLASSES)], train=train, test=train)
    frozen = copy.deepcopy(base)
    return FitContext(task_name=task.name, classes=list(task.classes), extra=task.extra,
                      labelled=train, unlabelled_target=None, config={**defaults, **FAST, **overrides},
                      seed=0, device="cpu", load_encoder=lambda pretrained=True: copy.deepcopy(base),
                      features=lambda split: encode(frozen, split.images, len(split)))


def spec(module, name):
    return next(s for s in module.bench_register_strategies() if s.name == name)


def distance(a: nn.Module, b_state: dict) -> float:
    return sum(float(((p.detach() - b_state[k]) ** 2).sum()) for k, p in a.named_parameters())


def test_anchor_penalty_equals_hand_value():
    from bench_plugins.strategies.regularised import anchor_penalty

    torch.manual_seed(0)
    net = nn.Linear(4, 2)
    w0, b0 = net.weight.detach().clone(), net.bias.detach().clone()
    importance = {"weight": torch.rand(2, 4), "bias": torch.rand(2)}
    plain, weighted = anchor_penalty(net, 0.3), anchor_penalty(net, 0.3, importance)
    assert float(plain(None, None, None, None, 0).detach()) == 0.0
    with torch.no_grad():
        net.weight.add_(torch.randn(2, 4))
        net.bias.add_(torch.randn(2))
    dw, db = net.weight.detach() - w0, net.bias.detach() - b0
    expected = 0.15 * float((dw**2).sum() + (db**2).sum())
    assert float(plain(None, None, None, None, 1).detach()) == pytest.approx(expected, rel=1e-5)
    hand = 0.15 * float((importance["weight"] * dw**2).sum() + (importance["bias"] * db**2).sum())
    assert float(weighted(None, None, None, None, 1).detach()) == pytest.approx(hand, rel=1e-5)


def test_ewc_fisher_equals_hand_computed_squared_gradients():
    from bench_plugins.strategies.regularised import fisher_diagonal, normalise_importance

    torch.manual_seed(0)
    backbone, head = nn.Linear(4, 3, bias=False), nn.Linear(3, 2)
    x = torch.randn(5, 4)
    labels = np.array([0, 1, 1, 0, 1])
    fisher = fisher_diagonal(backbone, head, x, labels)
    # d log p_y / d W_b = outer(head.W^T (onehot_y - p), x) for logits = head(W_b x)
    Wb, Wh, bh = backbone.weight.detach().numpy(), head.weight.detach().numpy(), head.bias.detach().numpy()
    hand = np.zeros_like(Wb)
    for xi, yi in zip(x.numpy(), labels):
        z = Wh @ (Wb @ xi) + bh
        p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
        g = np.outer(Wh.T @ (np.eye(2)[yi] - p), xi)
        hand += g**2
    np.testing.assert_allclose(fisher["weight"].numpy(), hand / 5, rtol=1e-4, atol=1e-7)
    norm = normalise_importance(fisher)
    assert float(norm["weight"].mean()) == pytest.approx(1.0, rel=1e-5)


def test_l2sp_stays_closer_to_pretrained_weights_than_plain_finetuning():
    from bench_plugins.strategies import regularised

    base = tiny_cnn()
    w0 = {k: v.detach().clone() for k, v in base.module.named_parameters()}
    buffers = {k: v.clone() for k, v in base.module.named_buffers()}
    s = spec(regularised, "l2-sp")
    free = s.load().fit(make_ctx(base, dict(s.defaults), l2sp_alpha=0.0))
    pulled = s.load().fit(make_ctx(base, dict(s.defaults), l2sp_alpha=1e4))
    for fitted in (free, pulled):
        for k, p in fitted.encoder.module.named_parameters():
            assert not torch.equal(p.detach(), w0[k]), f"{k} did not train"
        for k, v in fitted.encoder.module.named_buffers():
            assert torch.equal(v, buffers[k]), f"BatchNorm buffer {k} changed"
        assert fitted.trainable_params == fitted.total_params == count_parameters(base.module)[1] + 256 * 3 + 3
    assert distance(pulled.encoder.module, w0) < 0.5 * distance(free.encoder.module, w0)


def test_ewc_trains_everything_with_fisher_from_the_budget():
    from bench_plugins.strategies import regularised

    base = tiny_cnn()
    w0 = {k: v.detach().clone() for k, v in base.module.named_parameters()}
    s = spec(regularised, "ewc")
    fitted = s.load().fit(make_ctx(base, dict(s.defaults), ewc_fisher_items=3))
    assert fitted.info["fisher_items"] == 3
    changed = [not torch.equal(p.detach(), w0[k]) for k, p in fitted.encoder.module.named_parameters()]
    assert all(changed)


def test_probe_head_reproduces_the_scaled_logistic_regression():
    from sklearn.linear_model import LogisticRegression

    from bench.adaptation import probe_head_weights

    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 5)) * np.array([1, 10, 0.1, 3, 1]) + 4
    y = np.arange(30) % 3
    W, b, _ = probe_head_weights(x, y, 4, C=1.0, max_iter=2000, seed=0)  # class 3 has no labels
    scale = np.linalg.norm(x, axis=1).mean()
    clf = LogisticRegression(C=1.0, max_iter=2000, random_state=0).fit(x / scale, y)
    q = rng.normal(size=(50, 5)) * np.array([1, 10, 0.1, 3, 1]) + 4
    np.testing.assert_allclose((q @ W.T + b)[:, :3], clf.decision_function(q / scale), rtol=1e-3, atol=1e-3)
    assert ((q @ W.T + b).argmax(1) == clf.predict(q / scale)).all()
    assert (W[3] == 0).all() and ((x @ W.T + b).argmax(1) != 3).all()


def test_lp_ft_starts_from_the_probe_head_and_then_fine_tunes_everything():
    from bench.adaptation import probe_head_weights
    from bench_plugins.strategies import lp_ft

    base = tiny_cnn()
    w0 = {k: v.detach().clone() for k, v in base.module.named_parameters()}
    s = spec(lp_ft, "lp-ft")
    assert s.defaults["lr"] < 1e-3 and s.defaults["head_lr_mult"] == 1.0
    ctx = make_ctx(base, dict(s.defaults))
    # Zero steps of fine-tuning: the model is exactly backbone + probe head.
    probe_only = s.load().fit(make_ctx(base, dict(s.defaults), min_steps=0, max_steps=0, epochs=0))
    W, b, _ = probe_head_weights(ctx.features(ctx.labelled), ctx.labelled.labels, NUM_CLASSES, 10.0, 2000, 0)
    expected = (ctx.features(ctx.labelled) @ W.T + b).argmax(1)
    assert (probe_only.predict(ctx.labelled) == expected).all()
    fitted = s.load().fit(ctx)
    assert all(not torch.equal(p.detach(), w0[k]) for k, p in fitted.encoder.module.named_parameters())
    assert 0.0 <= fitted.info["probe_train_accuracy"] <= 1.0

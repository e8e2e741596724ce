"""Domain adaptation strategies on a planted shift where adaptation must help.

Source: UCI digits (grey). Target: the same digits with a strong colour tint (``colour:5``: the
weakest channel keeps 20%, a random hue per image). A tiny CNN is first trained on the source
pool (our stand-in for a pre-trained encoder); then source-only fine-tuning, DANN and CORAL start
from it with the same recipe and seed. During development CORAL beat source-only on the target by
+0.19 to +0.23 for seeds 0, 1 and 2, and DANN (two-layer dropout domain classifier at 10x the
backbone's rate) by +0.17, +0.14 and +0.13.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from bench.encoders import Encoder, encode
from bench.specs import TaskRequest
from bench.strategies import FitContext
from bench.tasks import TaskData
from bench.training import RECIPE_DEFAULTS, Classifier, head_and_backbone_groups, train
from bench_plugins.strategies.coral import CORAL_DEFAULTS, Coral, coral_loss
from bench_plugins.strategies.dann import DANN_DEFAULTS, Dann, dann_lambda, grad_reverse
from bench_plugins.strategies.finetune import Finetune
from bench_plugins.strategies.importance import IMPORTANCE_DEFAULTS, Importance, importance_weights
from bench_plugins.strategies.tent import TENT_DEFAULTS, Tent
from bench_plugins.tasks.corruptions import CorruptedSplit
from bench_plugins.tasks.digits import load_digits_task

RECIPE = {"min_steps": 300, "max_steps": 300, "lr": 1e-3, "head_lr_mult": 1.0, "augment": "none", "freeze_bn": False}


def _tiny(seed, norm=False):
    torch.manual_seed(seed)
    bn = (lambda c: nn.BatchNorm2d(c)) if norm else (lambda c: nn.Identity())
    m = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), bn(16), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Conv2d(16, 16, 3, padding=1), bn(16), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Flatten(), nn.Linear(256, 64), nn.ReLU())
    return Encoder(name="tiny", module=m, feature_dim=64, input_size=16)


@pytest.fixture(scope="module")
def setting():
    torch.set_num_threads(1)
    base = load_digits_task(TaskRequest("digits"))
    task = TaskData("digits@colour:5", base.classes, base.train, base.test,
                    CorruptedSplit(base.train, "colour", 5), CorruptedSplit(base.test, "colour", 5))
    rng = np.random.default_rng(0)
    budget = sorted(i for c in range(10) for i in rng.choice(np.flatnonzero(task.train.labels == c), 20, replace=False))
    return task, task.train.subset(budget)


_PRETRAINED = {}


def _context(task, labelled, strategy_defaults, seed, norm=False, **overrides):
    enc = _tiny(seed, norm)
    if (seed, norm) not in _PRETRAINED:  # "pre-training" on the labelled source pool, once per seed
        pre = Classifier(enc.module, 64, 10)
        train(pre, head_and_backbone_groups(pre, 3e-3, 1.0), enc, task.train,
              {**RECIPE_DEFAULTS, "min_steps": 150, "max_steps": 150, "lr": 3e-3, "augment": "none"}, seed)
        _PRETRAINED[seed, norm] = copy.deepcopy(enc.module.state_dict())
    state = _PRETRAINED[seed, norm]
    enc.module.load_state_dict(state)

    def load_encoder(pretrained=True):
        fresh = _tiny(seed, norm)
        fresh.module.load_state_dict(state)
        return fresh

    return FitContext(task=task, labelled=labelled, unlabelled_target=task.target_train,
                      config={**strategy_defaults, **RECIPE, **overrides}, seed=seed, device="cpu",
                      load_encoder=load_encoder, features=lambda split: encode(enc, split.images, len(split)))


def _target_accuracy(fitted, task):
    return float((fitted.predict(task.target_test) == task.target_test.labels).mean())


def test_coral_beats_source_only_on_planted_colour_shift(setting):
    task, labelled = setting
    source_only = _target_accuracy(Finetune().fit(_context(task, labelled, RECIPE_DEFAULTS, seed=0)), task)
    coral = _target_accuracy(Coral().fit(_context(task, labelled, CORAL_DEFAULTS, 0)), task)
    assert source_only < 0.8
    assert coral > source_only + 0.1, (source_only, coral)


def test_gradient_reversal_flips_and_scales_the_gradient():
    x = torch.ones(3, requires_grad=True)
    grad_reverse(x, 0.5).sum().backward()
    assert torch.equal(x.grad, torch.full((3,), -0.5))


def test_dann_beats_source_only_on_planted_colour_shift_across_seeds(setting):
    task, labelled = setting
    gains, domain_acc = [], []
    for seed in (0, 1, 2):
        source_only = _target_accuracy(Finetune().fit(_context(task, labelled, RECIPE_DEFAULTS, seed=seed)), task)
        fitted = Dann().fit(_context(task, labelled, DANN_DEFAULTS, seed))
        gains.append(_target_accuracy(fitted, task) - source_only)
        domain_acc.append(fitted.info["final_domain_accuracy"])
    # Measured: +0.17, +0.14, +0.13 at seeds 0, 1, 2 (source-only 0.74, 0.73, 0.77).
    print("dann - source-only per seed:", [round(g, 3) for g in gains], "domain acc:", domain_acc)
    assert sum(g > 0.03 for g in gains) >= 2 and np.mean(gains) > 0.05, gains
    assert np.mean(domain_acc) < 0.8, domain_acc  # the features became hard to tell apart


def test_tent_updates_only_normalisation_affine_parameters(setting):
    task, labelled = setting
    ctx = _context(task, labelled, TENT_DEFAULTS, seed=0, norm=True, tent_steps=20, stat_batches=5, tent_lr=1e-4)
    before = {k: v.clone() for k, v in ctx.load_encoder().module.state_dict().items()}
    fitted = Tent().fit(ctx)
    after = fitted.encoder.module.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.split(".")[0] in ("1", "5") for k in changed)  # the BatchNorm layers
    assert not any(k.endswith("weight") and k.split(".")[0] in ("0", "4", "9") for k in changed)
    assert fitted.info["entropy_first"] > 0 and fitted.info["stat_batches"] == 5
    assert fitted.trainable_params == 2 * (16 + 16)


def test_tent_lowers_target_entropy_without_collapsing_target_accuracy(setting):
    task, labelled = setting
    adapted = Tent().fit(_context(task, labelled, TENT_DEFAULTS, seed=0, norm=True, stat_batches=5))
    # Without entropy steps: the same source model with target BatchNorm statistics.
    unadapted = Tent().fit(_context(task, labelled, TENT_DEFAULTS, seed=0, norm=True, stat_batches=5, tent_steps=0))
    before, after = adapted.info["entropy_before"], adapted.info["entropy_after"]
    assert unadapted.info["entropy_after"] == before  # same fixed target batches, same model
    # Measured: 0.828 -> 0.791 (seeds 1, 2: 0.812 -> 0.787, 0.785 -> 0.759); target accuracy 0.93.
    assert after < before - 0.01, (before, after)
    acc, acc0 = _target_accuracy(adapted, task), _target_accuracy(unadapted, task)
    assert acc > 0.8 and acc >= acc0 - 0.03, (acc0, acc)


def test_importance_weights_favour_target_like_source_items():
    rng = np.random.default_rng(0)
    near = rng.normal(0, 1, (100, 8)) + np.array([3.0] + [0] * 7)
    far = rng.normal(0, 1, (100, 8)) - np.array([3.0] + [0] * 7)
    target = rng.normal(0, 1, (200, 8)) + np.array([3.0] + [0] * 7)
    w = importance_weights(np.concatenate([near, far]), target, C=1.0, max_weight=10.0, seed=0)
    assert abs(w.mean() - 1) < 1e-5 and w.max() <= w.min() * 100 + 1e-6
    assert w[:100].mean() > 3 * w[100:].mean()


def test_importance_strategy_trains_with_weights(setting):
    task, labelled = setting
    fitted = Importance().fit(_context(task, labelled, IMPORTANCE_DEFAULTS, 0, min_steps=30, max_steps=30))
    assert fitted.info["weight_min"] > 0 and fitted.info["weight_ess"] <= len(labelled)
    assert _target_accuracy(fitted, task) > 0.1


def test_dann_lambda_schedule_and_coral_loss_values():
    assert dann_lambda(0, 100, 10.0) == 0.0 and dann_lambda(100, 100, 10.0) > 0.99
    x = torch.randn(64, 5)
    assert float(coral_loss(x, x)) == 0.0
    assert float(coral_loss(x, 2 * x)) > float(coral_loss(x, 1.1 * x)) > 0

"""Domain adaptation methods on a planted shift where adaptation must help.

Source: UCI digits (grey). Target: the same digits with a strong colour tint (``colour:5``: the
weakest channel keeps 20%, a random hue per image). A tiny CNN with BatchNorm is first trained
on the source pool (our stand-in for a pre-trained encoder); every method then runs on
:mod:`bench.domain.loop`'s loop and is compared with its paired source-only baseline
(``Fitted.baseline``: same backbone, steps, batches and seed, the method's loss switched off).
Guards against a DA recipe that cannot beat doing nothing where alignment must help (the
published DANN was 16-33 points below source-only, Tent at chance).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from bench.domain.loop import grad_reverse
from bench.encoders import Encoder, encode
from bench.specs import TaskRequest
from bench.strategies import FitContext
from bench.tasks import Split, TaskData
from bench.training import RECIPE_DEFAULTS, Classifier, head_and_backbone_groups, train
from bench_plugins.strategies.bn_adapt import BN_ADAPT_DEFAULTS, BnAdapt
from bench_plugins.strategies.cdan import CDAN_DEFAULTS, Cdan
from bench_plugins.strategies.coral import CORAL_DEFAULTS, Coral, coral_loss
from bench_plugins.strategies.dann import DANN_DEFAULTS, Dann, dann_lambda
from bench_plugins.strategies.importance import IMPORTANCE_DEFAULTS, Importance, importance_weights
from bench_plugins.strategies.mcc import MCC_DEFAULTS, Mcc
from bench_plugins.strategies.tent import TENT_DEFAULTS, Tent
from bench_plugins.tasks.corruptions import CorruptedSplit
from bench_plugins.tasks.digits import load_digits_task

#: The planted-shift recipe: each method's defaults (optimiser, rates, schedule), sized for a 16-px tiny CNN.
RECIPE = {"min_steps": 200, "max_steps": 200, "augment": "none", "bottleneck_dim": 64, "domain_hidden": 256,
          "stat_batches": 5, "adapt_images": 512}
SEEDS = (0, 1, 2)


def _tiny(seed):
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
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


def _context(task, labelled, strategy_defaults, seed, **overrides):
    enc = _tiny(seed)
    if (task.name, seed) not in _PRETRAINED:  # "pre-training" on the labelled source pool, once per seed
        pre = Classifier(enc.module, 64, 10)
        train(pre, head_and_backbone_groups(pre, 3e-3, 1.0), enc, task.train,
              {**RECIPE_DEFAULTS, "min_steps": 150, "max_steps": 150, "lr": 3e-3, "augment": "none"}, seed)
        _PRETRAINED[task.name, seed] = copy.deepcopy(enc.module.state_dict())
    state = _PRETRAINED[task.name, seed]
    enc.module.load_state_dict(state)

    def load_encoder(pretrained=True):
        fresh = _tiny(seed)
        fresh.module.load_state_dict(state)
        return fresh

    return FitContext(task_name=task.name, classes=task.classes, labelled=labelled,
                      unlabelled_target=task.target_train, config={**strategy_defaults, **RECIPE, **overrides},
                      seed=seed, device="cpu", load_encoder=load_encoder,
                      features=lambda split: encode(enc, split.images, len(split)))


def _target_accuracy(fitted, task):
    return float((fitted.predict(task.target_test) == task.target_test.labels).mean())


def _gains(task, labelled, cls, defaults, **overrides):
    out = []
    for seed in SEEDS:
        fitted = cls().fit(_context(task, labelled, defaults, seed, **overrides))
        out.append((_target_accuracy(fitted.baseline, task), _target_accuracy(fitted, task), fitted.info))
    return out


# Measured (target accuracy, baseline -> method, seeds 0, 1, 2): see each test's comment.
@pytest.mark.parametrize("name, cls, defaults", [
    ("dann", Dann, DANN_DEFAULTS), ("cdan", Cdan, CDAN_DEFAULTS), ("mcc", Mcc, MCC_DEFAULTS),
    ("coral", Coral, CORAL_DEFAULTS), ("tent", Tent, TENT_DEFAULTS), ("bn-adapt", BnAdapt, BN_ADAPT_DEFAULTS),
])
def test_each_method_beats_its_paired_baseline_on_the_planted_colour_shift(setting, name, cls, defaults):
    task, labelled = setting
    runs = _gains(task, labelled, cls, defaults)
    gains = [after - before for before, after, _ in runs]
    print(name, "baseline -> method:", [(round(b, 3), round(a, 3)) for b, a, _ in runs])
    assert max(b for b, _, _ in runs) < 0.93  # the shift hurts the source-only model (in-domain: ~0.97)
    assert sum(g > 0.01 for g in gains) >= 2 and np.mean(gains) > 0.02, gains
    if name in ("dann", "cdan"):
        acc = [info["final_domain_accuracy"] for _, _, info in runs]
        assert 0.0 <= min(acc) and max(acc) <= 1.0, acc


class MixedSplit(Split):
    """The source with the target's tint on a fifth of its items (a covariate shift inside the
    source's support: the setting importance weighting is for)."""

    def __init__(self, grey, tinted, tinted_positions):
        self.ids, self.labels, self.grey, self.tinted = list(grey.ids), grey.labels, grey, tinted
        self.tinted_positions = set(int(i) for i in tinted_positions)

    def images(self, positions):
        return [(self.tinted if int(i) in self.tinted_positions else self.grey).images([int(i)])[0] for i in positions]


def test_importance_upweights_target_like_items_and_stays_within_noise_of_its_baseline(setting):
    """Source: digits with a fifth of the items tinted; target: every item tinted. The weights must
    favour the tinted source items (guards the density ratio and its use in the loop's loss); the
    target accuracy stays within noise of the unweighted loop. Measured: 0.924 -> 0.913,
    0.911 -> 0.865, 0.913 -> 0.898 (seeds 0-2): a network that fits its budget exactly has no bias
    left for the weights to correct, only fewer effective samples (Byrd & Lipton, 2019)."""
    task, _ = setting
    rng = np.random.default_rng(1)
    tinted = rng.choice(len(task.train), len(task.train) // 5, replace=False)
    source = MixedSplit(task.train, task.target_train, tinted)
    budget = sorted(i for c in range(10) for i in rng.choice(np.flatnonzero(task.train.labels == c), 20, replace=False))
    mixed = TaskData("digits-mixed@colour:5", task.classes, source, task.test, task.target_train, task.target_test)
    ctx = _context(mixed, source.subset(budget), IMPORTANCE_DEFAULTS, 0)
    w = importance_weights(ctx.features(ctx.labelled), ctx.features(task.target_train), 1.0, 10.0, 0)
    is_tinted = np.isin(budget, tinted)
    assert w[is_tinted].mean() > 2 * w[~is_tinted].mean(), (w[is_tinted].mean(), w[~is_tinted].mean())
    runs = _gains(mixed, source.subset(budget), Importance, IMPORTANCE_DEFAULTS)
    print("importance baseline -> method:", [(round(b, 3), round(a, 3)) for b, a, _ in runs])
    assert np.mean([a - b for b, a, _ in runs]) > -0.06


def test_gradient_reversal_flips_and_scales_the_gradient():
    x = torch.ones(3, requires_grad=True)
    grad_reverse(x, 0.5).sum().backward()
    assert torch.equal(x.grad, torch.full((3,), -0.5))


def test_tent_updates_only_normalisation_affine_parameters(setting):
    task, labelled = setting
    ctx = _context(task, labelled, TENT_DEFAULTS, seed=0, tent_steps=20, tent_lr=1e-4)
    fitted = Tent().fit(ctx)
    before = {k: v for k, v in fitted.baseline.encoder.module.state_dict().items()}
    after = fitted.encoder.module.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.split(".")[0] in ("1", "5") for k in changed)  # the BatchNorm layers
    assert not any(k.endswith("weight") and k.split(".")[0] in ("0", "4", "9") for k in changed)
    assert fitted.info["entropy_first"] > 0 and fitted.info["stat_batches"] > 0
    assert fitted.trainable_params == 2 * (16 + 16) + 2 * 64  # backbone BatchNorms + the bottleneck's


def test_tent_lowers_target_entropy(setting):
    task, labelled = setting
    adapted = Tent().fit(_context(task, labelled, TENT_DEFAULTS, seed=0))
    assert adapted.info["entropy_after"] < adapted.info["entropy_before"] - 0.01, adapted.info


def test_importance_weights_favour_target_like_source_items():
    rng = np.random.default_rng(0)
    near = rng.normal(0, 1, (100, 8)) + np.array([3.0] + [0] * 7)
    far = rng.normal(0, 1, (100, 8)) - np.array([3.0] + [0] * 7)
    target = rng.normal(0, 1, (200, 8)) + np.array([3.0] + [0] * 7)
    w = importance_weights(np.concatenate([near, far]), target, C=1.0, max_weight=10.0, seed=0)
    assert abs(w.mean() - 1) < 1e-5 and w.max() <= w.min() * 100 + 1e-6
    assert w[:100].mean() > 3 * w[100:].mean()


def test_dann_lambda_schedule_and_coral_loss_values():
    assert dann_lambda(0, 100, 10.0) == 0.0 and dann_lambda(100, 100, 10.0) > 0.99
    x = torch.randn(64, 5)
    assert float(coral_loss(x, x)) == 0.0
    assert float(coral_loss(x, 2 * x)) > float(coral_loss(x, 1.1 * x)) > 0

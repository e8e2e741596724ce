"""The shared domain-adaptation loop (bench.domain.loop) and its methods, piece by piece: the memoised
paired baseline, CDAN's multilinear map and entropy weights, MCC's loss against hand-computed
values, the step count, and that no DA strategy can read target labels.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from bench.domain import loop as domain
from bench.domain.loop import DOMAIN_DEFAULTS, domain_steps, lambda_ramp, source_model, source_only
from bench.encoders import Encoder
from bench.errors import UserError
from bench.strategies import FitContext
from bench.tasks import ArraySplit
from bench_plugins.strategies._cdan import entropy_weights, multilinear_map
from bench_plugins.strategies._mcc import mcc_loss
from bench_plugins.strategies.bn_adapt import BN_ADAPT_DEFAULTS, BnAdapt
from bench_plugins.strategies.cdan import CDAN_DEFAULTS, Cdan
from bench_plugins.strategies.coral import CORAL_DEFAULTS, Coral
from bench_plugins.strategies.dann import DANN_DEFAULTS, Dann
from bench_plugins.strategies.importance import IMPORTANCE_DEFAULTS, Importance
from bench_plugins.strategies.mcc import MCC_DEFAULTS, Mcc
from bench_plugins.strategies.tent import TENT_DEFAULTS, Tent

FAST = {"min_steps": 3, "max_steps": 3, "stat_batches": 2, "batch_size": 8, "augment": "none", "tent_steps": 2,
        "tent_batch_size": 8, "adapt_images": 16, "entropy_probe_batches": 1}
METHODS = {"dann": (Dann, DANN_DEFAULTS), "cdan": (Cdan, CDAN_DEFAULTS), "mcc": (Mcc, MCC_DEFAULTS),
           "coral": (Coral, CORAL_DEFAULTS), "importance": (Importance, IMPORTANCE_DEFAULTS),
           "tent": (Tent, TENT_DEFAULTS), "bn-adapt": (BnAdapt, BN_ADAPT_DEFAULTS)}


def _encoder(norm=True):
    torch.manual_seed(0)
    layers = [nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4) if norm else nn.Identity(), nn.ReLU(),
              nn.AdaptiveAvgPool2d(2), nn.Flatten()]
    return Encoder(name="tiny-bn", module=nn.Sequential(*layers), feature_dim=16, input_size=8)


class SealedSplit(ArraySplit):
    """A target split whose labels raise on any read."""

    @property  # type: ignore[override]
    def labels(self):
        raise AssertionError("a DA strategy read target labels")

    @labels.setter
    def labels(self, value):
        self._labels = value


def _splits(n=40, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 255, (n, 8, 8, 3), dtype=np.uint8)
    labelled = ArraySplit([f"s{i}" for i in range(n)], images, np.arange(n) % 4)
    target = SealedSplit([f"t{i}" for i in range(n)], 255 - images, np.arange(n) % 4)
    return labelled, target


def _ctx(defaults, labelled, target, seed=0, norm=True, shared=None, **overrides):
    enc = _encoder(norm)
    state = {k: v.clone() for k, v in enc.module.state_dict().items()}

    def load_encoder(pretrained=True):
        fresh = _encoder(norm)
        fresh.module.load_state_dict(state)
        return fresh

    def features(split):
        return np.asarray(split.images(range(len(split))), dtype=np.float32).reshape(len(split), -1)[:, :16]

    return FitContext(task_name="toy->shifted", classes=list("abcd"), labelled=labelled, unlabelled_target=target,
                      config={**defaults, **FAST, **overrides}, seed=seed, load_encoder=load_encoder,
                      features=features, shared=shared)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_no_da_strategy_reads_target_labels_and_each_sets_its_paired_baseline(name):
    """Guards against a DA method (or its baseline, or BatchNorm adaptation) peeking at target
    labels: the target split's ``labels`` raise, and the strategy still fits and predicts."""
    torch.set_num_threads(1)
    cls, defaults = METHODS[name]
    labelled, target = _splits()
    with pytest.raises(AssertionError):
        target.labels  # noqa: B018 -- the split really is sealed
    fitted = cls().fit(_ctx(defaults, labelled, target))
    assert fitted.baseline is not None and fitted.baseline is not fitted
    assert fitted.predict(target).shape == (len(target),)
    assert fitted.baseline.predict(target).shape == (len(target),)


def test_baseline_memo_returns_the_same_model_for_the_same_key_and_trains_anew_when_a_key_changes():
    """Guards against training the shared source-only baseline once per method (seven times per
    cell) and against reusing it across different labelled sets, seeds, recipes or encoders, or
    across cell groups: the memo lives in the group's ``ctx.shared``, not in the process."""
    torch.set_num_threads(1)
    labelled, target = _splits()
    shared: dict = {domain.MEMO_KEY: domain.BaselineMemo(size=3)}
    first = source_only(_ctx(MCC_DEFAULTS, labelled, target, shared=shared))
    assert source_only(_ctx(CORAL_DEFAULTS, labelled, target, shared=shared)) is first  # same base recipe
    assert source_only(_ctx(DANN_DEFAULTS, labelled, target, shared=shared)) is not first  # adversarial (SGD)
    assert source_only(_ctx(MCC_DEFAULTS, labelled, target)) is not first  # another group: its own memo
    other_ids = ArraySplit([f"x{i}" for i in range(40)], np.asarray(labelled.images(range(40))), labelled.labels)
    shared = {domain.MEMO_KEY: domain.BaselineMemo(size=3)}
    first = source_only(_ctx(MCC_DEFAULTS, labelled, target, shared=shared))
    changed = [_ctx(MCC_DEFAULTS, labelled, target, seed=1, shared=shared),
               _ctx(MCC_DEFAULTS, labelled, target, lr=1e-3, shared=shared),
               _ctx(MCC_DEFAULTS, other_ids, target, shared=shared)]
    for ctx in changed:
        assert source_only(ctx) is not first
    assert len(shared[domain.MEMO_KEY].entries) == 3  # four keys, at most three kept (LRU)
    enc = _ctx(MCC_DEFAULTS, labelled, target, shared=shared)
    enc.load_encoder = lambda pretrained=True: _encoder(norm=False)  # other weights: another fingerprint
    assert source_only(enc) is not first
    fitted, model = source_model(_ctx(DANN_DEFAULTS, labelled, target, seed=1))
    assert isinstance(model, domain.DomainModel) and fitted.info["steps"] == 3


def test_bn_adapt_refuses_an_encoder_without_batchnorm():
    """Guards against a silent no-op: AdaBN on a backbone with no BatchNorm is a one-line error."""
    labelled, target = _splits()
    with pytest.raises(UserError, match="no BatchNorm"):
        BnAdapt().fit(_ctx(BN_ADAPT_DEFAULTS, labelled, target, norm=False))


def test_multilinear_map_and_entropy_weights_match_hand_computed_values():
    """Guards CDAN's conditioning: the outer product's layout, the randomised map's formula and
    CDAN+E's weights (1 + exp(-H), mean 1)."""
    f = torch.tensor([[1.0, 2.0, 3.0]])
    g = torch.tensor([[0.25, 0.75]])
    assert torch.allclose(multilinear_map(f, g), torch.tensor([[0.25, 0.5, 0.75, 0.75, 1.5, 2.25]]))
    rf, rg = torch.ones(3, 4), torch.full((2, 4), 2.0)
    assert torch.allclose(multilinear_map(f, g, (rf, rg)), torch.full((1, 4), 6.0 * 2.0 / 2.0))
    probs = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    w1, w2 = 1 + 1.0, 1 + 0.5  # exp(-0) and exp(-ln 2)
    assert torch.allclose(entropy_weights(probs), torch.tensor([w1, w2]) * 2 / (w1 + w2), atol=1e-6)


def test_mcc_loss_matches_a_hand_computed_value():
    """Guards MCC's definition: temperature, entropy weights, per-row normalisation, off-diagonal
    mass over K. Two examples, two classes, T=1: p1 = (1, 0) (weight 2), p2 = (0.5, 0.5) (weight 1.5);
    rescaled to sum 2: w = (8/7, 6/7); C = sum w p p^T = [[8/7 + 6/28, 6/28], [6/28, 6/28]];
    rows normalised: [[38/44, 6/44], [0.5, 0.5]]; loss = (6/44 + 0.5) / 2."""
    logits = torch.log(torch.tensor([[1.0, 1e-30], [0.5, 0.5]]))
    assert float(mcc_loss(logits, 1.0)) == pytest.approx((6 / 44 + 0.5) / 2, abs=1e-5)
    confident = torch.tensor([[10.0, -10.0], [-10.0, 10.0]])
    assert float(mcc_loss(confident, 2.5)) < float(mcc_loss(torch.zeros(2, 2), 2.5))


def test_steps_follow_the_target_pool_within_bounds_and_the_lambda_ramp():
    """Guards the step budget: passes over the unlabelled pool, clamped; and Ganin's ramp."""
    cfg = {**DOMAIN_DEFAULTS, "batch_size": 32, "target_epochs": 2, "min_steps": 80, "max_steps": 100}
    assert domain_steps(4000, DOMAIN_DEFAULTS) == 80  # the CPU defaults: the clamp decides
    assert domain_steps(1258, cfg) == 80 and domain_steps(1400, cfg) == 88 and domain_steps(4000, cfg) == 100
    assert domain_steps(4000, {**cfg, "max_steps": 1000}) == 250
    assert lambda_ramp(0.0) == 0.0 and lambda_ramp(1.0) == pytest.approx(2 / (1 + np.exp(-10)) - 1)


def test_the_loop_augments_target_batches_like_source_batches(monkeypatch):
    """Guards against target batches without the source's augmentation (a critic could tell the
    domains apart by their borders); replaces the source-text check on the old _dann/_coral."""
    seen = []

    class Recording(domain.TargetBatches):
        def __init__(self, split, encoder, batch_size, seed, device="cpu", augment="none", stream=7919):
            seen.append((stream, augment))
            super().__init__(split, encoder, batch_size, seed, device, augment, stream)

    monkeypatch.setattr(domain, "TargetBatches", Recording)
    labelled, target = _splits()
    Dann().fit(_ctx(DANN_DEFAULTS, labelled, target, augment="shift"))
    assert (0, "shift") in seen and (7919, "shift") in seen


def test_the_critic_can_have_its_own_adam_optimiser():
    """Guards dann's critic_optimizer=adam: the critic's weights move by Adam's scale-free steps even
    when the domain weight makes its loss tiny (the shared SGD critic hardly moved in 80 steps on
    EfficientNet), the loop still trains, and an unknown value is one UserError."""
    from bench.domain.loop import AdversarialTerm, train_domain

    labelled, target = _splits()
    moved = {}
    for kind in ("shared", "adam"):
        ctx = _ctx(DANN_DEFAULTS, labelled, target, critic_optimizer=kind, domain_weight=1e-4)
        term = AdversarialTerm(ctx.config)
        torch.manual_seed(1)
        term.setup(int(ctx.config["bottleneck_dim"]), ctx.num_classes)
        before = [p.detach().clone() for p in term.critic.parameters()]
        term.setup = lambda *a, _t=term: None  # keep the critic whose start we saved
        train_domain(ctx, ctx.load_encoder(), term)
        moved[kind] = max(float((p.detach() - b).abs().max()) for p, b in zip(term.critic.parameters(), before))
    assert moved["adam"] > 100 * moved["shared"] and moved["adam"] > 1e-4
    with pytest.raises(UserError, match="critic_optimizer='rmsprop'"):
        train_domain(_ctx(DANN_DEFAULTS, labelled, target, critic_optimizer="rmsprop"), _encoder(),
                     AdversarialTerm({**DANN_DEFAULTS}))


def test_domain_recipe_is_typed_frozen_and_read_from_the_merged_config():
    """Guards the DA recipe object: values typed from the merged config (strings from ``--set`` too),
    a key left out takes DOMAIN_DEFAULTS' value, max_steps 0 means uncapped, the method's own keys
    stay out of it, and it cannot be changed."""
    import dataclasses

    from bench.domain.recipe import DomainRecipe

    recipe = DomainRecipe.of({**DANN_DEFAULTS, "batch_size": "16", "max_steps": 0})
    assert (recipe.batch_size, recipe.max_steps, recipe.optimizer, recipe.critic_optimizer) == (16, None, "sgd", "adam")
    assert (recipe.lr, recipe.domain_lr_mult, recipe.min_steps) == (1e-3, 10.0, 80)
    assert DomainRecipe.of({}).bottleneck_dim == DOMAIN_DEFAULTS["bottleneck_dim"]
    assert not hasattr(recipe, "domain_weight")
    with pytest.raises(dataclasses.FrozenInstanceError):
        recipe.lr = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(("key", "value", "message"), [
    ("batch_size", "many", "batch_size='many' is not a valid int; set it with --set batch_size=VALUE"),
    ("lr", None, "lr=None is not a valid float"),
    ("schedule", "step", "schedule='step' is not known; use --set schedule=cosine or --set schedule=anneal"),
    ("optimizer", "rmsprop", "optimizer='rmsprop' is not known; use --set optimizer=sgd or --set optimizer=adamw"),
])
def test_a_bad_domain_recipe_value_is_a_one_line_error_naming_the_key(key, value, message):
    labelled, target = _splits()
    with pytest.raises(UserError) as err:
        train_domain_ctx = _ctx(MCC_DEFAULTS, labelled, target, **{key: value})
        domain.train_domain(train_domain_ctx, _encoder())
    assert message in str(err.value) and "\n" not in str(err.value)

"""The shared domain-adaptation training loop and its paired, memoised source-only baseline.

Public API for built-in and third-party DA strategies (keys in :data:`bench.domain.recipe.DOMAIN_DEFAULTS`):

- :class:`DomainModel`: backbone -> bottleneck (Linear -> BatchNorm1d -> ReLU, ``bottleneck_dim``)
  -> linear head; the method's loss sees the bottleneck features (as in Transfer-Learning-Library).
- :class:`DomainTerm`: a method's extra loss on one step's :class:`DomainBatch` (source and target
  bottleneck features and logits), with its own modules (e.g. a critic, trained at
  ``domain_lr_mult`` times the backbone's rate) and numbers to record.
- :func:`train_domain`: the recipe read once (:class:`~bench.domain.recipe.DomainRecipe`); on the shared
  loop (:func:`bench.loop.run_steps`: autocast, compile, channels_last) each step draws a labelled source
  batch and, when the term uses the target, an unlabelled target batch of the same size; both go through
  the network in ONE forward (BatchNorm normalises the mixed batch, TLL's convention). Cross-entropy on
  the source part plus the term. AdamW; ``schedule`` cosine (warm-up then cosine) or anneal (``(1 + 10 p)^-0.75``).
  Steps: :func:`domain_steps` (passes over the unlabelled target pool, clamped); ``info`` carries
  ``steps_wanted`` and ``capped`` (:func:`step_rule`: the DA rule's own, never the labelled-epoch rule).
- :func:`source_only`: the same loop with no term: the paired baseline every DA strategy sets as
  ``Fitted.baseline``; memoised in the session's :class:`BaselineMemo` (``ctx.shared``, an LRU of
  :data:`MEMO_SIZE`) by the labelled ids, the seed, the encoder's fingerprint and name, the task
  and the base recipe keys.
- :func:`fit_domain`: a method's model as a :class:`~bench.strategies.Fitted` with that baseline.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.accel import run_info, to_device
from bench.adaptation import TargetBatches, require_target
from bench.domain.recipe import BASE_KEYS, CRITIC_DEFAULTS, DOMAIN_DEFAULTS, DomainRecipe, domain_steps, step_rule
from bench.domain.terms import (
    AdversarialTerm,
    DomainBatch,
    DomainTerm,
    GradReverse,
    WeightedTerm,
    domain_critic,
    grad_reverse,
    lambda_ramp,
)
from bench.encoders import Encoder, count_parameters
from bench.errors import UserError
from bench.loop import cosine_lambda, prepare, run_steps, set_batchnorm_eval
from bench.strategies import FitContext, Fitted
from bench.tasks import Split
from bench.training import predict_fn, reestimate_batchnorm

__all__ = ["BASE_KEYS", "CRITIC_DEFAULTS", "DOMAIN_DEFAULTS", "MEMO_KEY", "MEMO_SIZE", "AdversarialTerm",
           "BaselineMemo", "DomainBatch", "DomainRecipe", "DomainModel", "DomainTerm", "GradReverse", "WeightedTerm",
           "adapt_batchnorm", "baseline_key", "digest", "optimizer_for", "schedule_for",
           "batchnorm_layers", "domain_critic", "domain_steps", "fit_domain", "grad_reverse", "lambda_ramp",
           "source_model", "source_only", "step_rule", "train_domain"]

#: How many source-only baselines a :class:`BaselineMemo` keeps (each a full model: ~15 MB for efficientnet-lite0).
#: Cells run strategy-major (every budget and seed of one strategy, then the next), so the memo spans a
#: group's budgets x seeds x base recipes (3 recipes among the built-ins) to be hit at all.
MEMO_SIZE = 24
MEMO_KEY = "bench.domain.baseline"  #: where the session's :class:`BaselineMemo` lies in ``FitContext.shared``


class BaselineMemo:
    """The paired source-only baselines a session has trained, by :func:`baseline_key`, the least
    recently used dropped beyond ``size``. The worker's session owns one (``ctx.shared``, under
    :data:`MEMO_KEY`): the DA methods of a cell group that share a base recipe train it once."""

    def __init__(self, size: int = MEMO_SIZE) -> None:
        self.size = size
        self.entries: OrderedDict[str, tuple[Fitted, DomainModel]] = OrderedDict()

    @classmethod
    def of(cls, ctx: FitContext) -> BaselineMemo:
        """The memo of ``ctx``'s session (a fresh one, shared with nobody, when the context has no store)."""
        shared = getattr(ctx, "shared", None)
        return cls() if shared is None else shared.setdefault(MEMO_KEY, cls())

    def get(self, key: str) -> tuple[Fitted, DomainModel] | None:
        if key in self.entries:
            self.entries.move_to_end(key)
            return self.entries[key]
        return None

    def put(self, key: str, value: tuple[Fitted, DomainModel]) -> None:
        self.entries[key] = value
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)


class DomainModel(nn.Module):
    """Backbone -> bottleneck -> head; ``features(x)`` is the bottleneck output."""

    def __init__(self, backbone: nn.Module, feature_dim: int, num_classes: int, bottleneck_dim: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.bottleneck = nn.Sequential(nn.Linear(feature_dim, bottleneck_dim), nn.BatchNorm1d(bottleneck_dim),
                                        nn.ReLU())
        self.head = nn.Linear(bottleneck_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.bottleneck(self.backbone(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def batchnorm_layers(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def schedule_for(recipe: DomainRecipe, steps: int) -> Callable[[int], float]:
    """The recipe's learning-rate factor per step (a LambdaLR function)."""
    if recipe.schedule == "cosine":
        return cosine_lambda(steps, int(round(steps * recipe.warmup_frac)))
    return lambda step: (1.0 + 10.0 * step / max(1, steps)) ** -0.75  # "anneal"


def optimizer_for(groups: list[dict[str, Any]], recipe: DomainRecipe) -> torch.optim.Optimizer:
    """The recipe's optimiser over ``groups``."""
    lr, wd = recipe.lr, recipe.weight_decay
    if recipe.optimizer == "sgd":  # the papers' and TLL's: momentum 0.9, Nesterov
        return torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True, weight_decay=wd)
    return torch.optim.AdamW(groups, lr=lr, weight_decay=wd)


class _FeaturesAndLogits(nn.Module):
    """One forward of a :class:`DomainModel` giving both its bottleneck features and its logits."""

    def __init__(self, model: DomainModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.model.features(x)
        return feats, self.model.head(feats)


def train_domain(ctx: FitContext, encoder: Encoder, term: DomainTerm | None = None,
                 sample_weights: np.ndarray | None = None) -> tuple[DomainModel, dict[str, Any]]:
    """Train a :class:`DomainModel` on ``ctx.labelled`` (+ target batches for ``term``) with the shared
    loop (:func:`bench.loop.run_steps`); see the module doc."""
    recipe, device = DomainRecipe.of(ctx.config), ctx.device
    target = require_target(ctx, term.name if term is not None else "source-only")
    torch.manual_seed(ctx.seed)
    model = DomainModel(encoder.module, encoder.feature_dim, ctx.num_classes, recipe.bottleneck_dim).to(device)
    lr, n = recipe.lr, len(ctx.labelled)
    if term is not None:
        torch.manual_seed(ctx.seed + 1)
        term.setup(recipe.bottleneck_dim, ctx.num_classes)
    extra = [m.to(device) for m in (term.modules() if term is not None else [])]
    groups: list[dict[str, Any]] = [{"params": list(model.backbone.parameters()), "lr": lr, "name": "backbone"},
                                     {"params": [*model.bottleneck.parameters(), *model.head.parameters()],
                                      "lr": lr * recipe.head_lr_mult, "name": "head"}]
    critic_params = [p for m in extra for p in m.parameters() if p.requires_grad]
    if critic_params and recipe.critic_optimizer == "shared":
        groups.append({"params": critic_params, "lr": lr * recipe.domain_lr_mult, "name": "critic"})
    for g in groups:
        g["params"] = [p for p in g["params"] if p.requires_grad]
    optimizers = [optimizer_for([g for g in groups if g["params"]], recipe)]
    if critic_params and recipe.critic_optimizer == "adam":
        optimizers.append(torch.optim.Adam(critic_params, lr=recipe.critic_lr))
    steps, wanted, capped = step_rule(len(target), recipe)
    sched = torch.optim.lr_scheduler.LambdaLR(optimizers[0], schedule_for(recipe, steps))
    batch = min(recipe.batch_size, n)
    source = TargetBatches(ctx.labelled, encoder, batch, ctx.seed, device, recipe.augment, stream=0)
    use_target = term is not None and term.uses_target
    targets = TargetBatches(target, encoder, batch, ctx.seed, device, recipe.augment) if use_target else None
    labels = torch.as_tensor(np.asarray(ctx.labelled.labels), dtype=torch.long)
    weights = None if sample_weights is None else torch.as_tensor(sample_weights, dtype=torch.float32)
    both = _FeaturesAndLogits(model)
    fwd, channels_last = prepare(both, device)

    def draw(step: int) -> tuple[int, torch.Tensor, torch.Tensor]:
        model.train()
        for m in extra:
            m.train()
        if recipe.freeze_bn:
            set_batchnorm_eval(model.backbone)
        xs = source.next()
        idx = torch.as_tensor(source.last)
        return len(xs), idx, torch.cat([xs, targets.next()]) if targets is not None else xs

    def loss_of(data: tuple[int, torch.Tensor, torch.Tensor], step: int, part: slice) -> torch.Tensor:
        ns, idx, x = data  # one forward for both domains: BatchNorm normalises the mixed batch
        feats, logits = fwd(to_device(x, device, channels_last))
        ce = F.cross_entropy(logits[:ns], labels[idx].to(device), reduction="none")
        loss = (ce * weights[idx].to(device)).mean() if weights is not None else ce.mean()
        if term is not None:
            loss = loss + term.loss(DomainBatch(feats[:ns], logits[:ns], feats[ns:], logits[ns:], step / steps))
        return loss

    result = run_steps(optimizers, steps, draw, loss_of, device=device, scheduler=sched, progress=ctx.progress)
    stats = 0
    if not recipe.freeze_bn:  # statistics of the final weights, on batches composed like the training ones
        stats = reestimate_batchnorm(model, (torch.cat([source.next(), targets.next()]) if targets is not None
                                             else source.next() for _ in range(recipe.stat_batches)))
    model.eval()
    info = {"steps": steps, "steps_wanted": wanted, "capped": capped, "batch_size": batch,
            "final_loss": round(result.final_loss, 5), "stat_batches": stats,
            "target_pool": len(target)}
    if term is not None:
        info.update(term.info())
    return model, info | run_info(fwd is not both, batch, batch)


def digest(values: Any) -> str:
    """SHA-256 of ``values`` as sorted JSON (memo keys)."""
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()


def baseline_key(ctx: FitContext, encoder: Encoder) -> str:
    """The memo key of the paired baseline: labelled ids, seed, encoder fingerprint and name, task,
    target pool size and every base recipe key (:data:`BASE_KEYS`)."""
    target = ctx.unlabelled_target
    return digest({"ids": digest(list(ctx.labelled.ids)), "seed": ctx.seed, "encoder": encoder.name,
                    "fingerprint": encoder.fingerprint(), "task": ctx.task_name, "device": ctx.device,
                    "target": len(target) if target is not None else 0,
                    "recipe": {k: ctx.config.get(k) for k in BASE_KEYS}})


def _memo_predict(predict: Callable[[Split], np.ndarray]) -> Callable[[Split], np.ndarray]:
    """``predict`` with its answers kept by split (ids and first image), so the shared baseline is
    scored once per split however many DA cells carry it."""
    seen: dict[str, np.ndarray] = {}

    def memo(split: Split) -> np.ndarray:
        first = np.asarray(split.images([0])[0]) if len(split) else np.zeros(0)
        key = digest([len(split), digest(list(split.ids)), hashlib.sha256(first.tobytes()).hexdigest()])
        if key not in seen:
            seen[key] = predict(split)
        return seen[key].copy()

    return memo


def _as_fitted(model: DomainModel, encoder: Encoder, ctx: FitContext, info: dict[str, Any],
               extra: list[nn.Module] | None = None) -> Fitted:
    trainable, total = count_parameters(nn.ModuleList([model, *(extra or [])]))
    return Fitted(predict=predict_fn(model, encoder, ctx.device), trainable_params=trainable, total_params=total,
                  encoder=encoder.with_module(model.backbone), info=info)


def source_model(ctx: FitContext) -> tuple[Fitted, DomainModel]:
    """The paired source-only baseline (:func:`train_domain` with no term) and its trained model
    (shared: copy it before changing it), memoised in the session's :class:`BaselineMemo`."""
    encoder = ctx.load_encoder(pretrained=True)
    key, memo = baseline_key(ctx, encoder), BaselineMemo.of(ctx)
    found = memo.get(key)
    if found is not None:
        return found
    model, info = train_domain(ctx, encoder)
    fitted = _as_fitted(model, encoder, ctx, info)
    fitted.predict = _memo_predict(fitted.predict)
    memo.put(key, (fitted, model))
    return fitted, model


def source_only(ctx: FitContext) -> Fitted:
    """The paired source-only baseline every DA strategy sets as ``Fitted.baseline`` (memoised)."""
    return source_model(ctx)[0]


def adapt_batchnorm(ctx: FitContext, model: nn.Module, encoder: Encoder, images: int, batch_size: int) -> int:
    """AdaBN: every BatchNorm's statistics re-estimated (cumulative average, no gradient) on up to
    ``images`` unlabelled target images in batches of ``batch_size``, unaugmented; returns the
    number of batches. A backbone without BatchNorm is a UserError (nothing to adapt)."""
    backbone = model.backbone if isinstance(model, DomainModel) else model
    if not batchnorm_layers(backbone):
        raise UserError(f"encoder {encoder.name!r} has no BatchNorm layers: BatchNorm adaptation (bn-adapt, tent) "
                        f"cannot change it; use a DA method with a loss (dann, cdan, mcc, coral)")
    target = require_target(ctx, "bn-adapt")
    batches = TargetBatches(target, encoder, batch_size, ctx.seed, ctx.device, "none")
    used = reestimate_batchnorm(model, (batches.next() for _ in range(max(1, math.ceil(min(images, len(target))
                                                                                       / batches.batch)))))
    model.eval()
    return used


def fit_domain(ctx: FitContext, term: DomainTerm | None, sample_weights: np.ndarray | None = None) -> Fitted:
    """A DA method's :class:`Fitted`: its model from :func:`train_domain` with ``term`` (and
    ``sample_weights``), and ``baseline`` = :func:`source_only` (trained once per key)."""
    baseline = source_only(ctx)
    encoder = ctx.load_encoder(pretrained=True)
    model, info = train_domain(ctx, encoder, term, sample_weights)
    fitted = _as_fitted(model, encoder, ctx, info, term.modules() if term is not None else None)
    fitted.baseline = baseline
    return fitted

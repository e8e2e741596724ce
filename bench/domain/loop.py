"""The shared domain-adaptation training loop and its paired, memoised source-only baseline.

Public API for built-in and third-party DA strategies (keys in :data:`bench.domain.recipe.DOMAIN_DEFAULTS`):

- :class:`DomainModel`: backbone -> bottleneck (Linear -> BatchNorm1d -> ReLU, ``bottleneck_dim``)
  -> linear head; the method's loss sees the bottleneck features (as in Transfer-Learning-Library).
- :class:`DomainTerm`: a method's extra loss on one step's :class:`DomainBatch` (source and target
  bottleneck features and logits), with its own modules (e.g. a critic, trained at
  ``domain_lr_mult`` times the backbone's rate) and numbers to record.
- :func:`train_domain`: each step draws a labelled source batch and, when the term uses the
  target, an unlabelled target batch of the same size; both go through the network in ONE forward
  (BatchNorm normalises the mixed batch, TLL's convention). Cross-entropy on the source part plus
  the term. AdamW; ``schedule`` cosine (warm-up then cosine) or anneal (``(1 + 10 p)^-0.75``).
  Steps: :func:`domain_steps` (passes over the unlabelled target pool, clamped).
- :func:`source_only`: the same loop with no term: the paired baseline every DA strategy sets as
  ``Fitted.baseline``; memoised in the process (LRU of :data:`MEMO_SIZE`) by the labelled ids, the
  seed, the encoder's fingerprint and name, the task and the base recipe keys.
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

from bench.adaptation import TargetBatches, require_target
from bench.domain.recipe import BASE_KEYS, CRITIC_DEFAULTS, DOMAIN_DEFAULTS
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
from bench.strategies import FitContext, Fitted
from bench.tasks import Split
from bench.training import cosine_lambda, predict_fn, reestimate_batchnorm, set_batchnorm_eval, step_done

__all__ = ["BASE_KEYS", "CRITIC_DEFAULTS", "DOMAIN_DEFAULTS", "MEMO_SIZE", "AdversarialTerm", "DomainBatch",
           "DomainModel", "DomainTerm", "GradReverse", "WeightedTerm", "adapt_batchnorm", "baseline_key",
           "batchnorm_layers", "domain_critic", "domain_steps", "fit_domain", "grad_reverse", "lambda_ramp",
           "source_model", "source_only", "train_domain"]

#: How many source-only baselines a worker process keeps (each a full model: ~15 MB for efficientnet-lite0).
#: Cells run strategy-major (every budget and seed of one strategy, then the next), so the memo spans a
#: group's budgets x seeds x base recipes (3 recipes among the built-ins) to be hit at all.
MEMO_SIZE = 24
_MEMO: OrderedDict[str, tuple[Fitted, DomainModel]] = OrderedDict()


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


def domain_steps(n_target: int, config: dict[str, Any]) -> int:
    """``ceil(target_epochs * n_target / batch_size)`` clamped to ``[min_steps, max_steps]``."""
    steps = math.ceil(float(config["target_epochs"]) * n_target / int(config["batch_size"]))
    return max(int(config["min_steps"]), min(steps, int(config["max_steps"]))) if config.get("max_steps") else \
        max(int(config["min_steps"]), steps)


def batchnorm_layers(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def _schedule(config: dict[str, Any], steps: int) -> Callable[[int], float]:
    kind = config.get("schedule", "cosine")
    if kind == "cosine":
        return cosine_lambda(steps, int(round(steps * float(config["warmup_frac"]))))
    if kind == "anneal":
        return lambda step: (1.0 + 10.0 * step / max(1, steps)) ** -0.75
    raise UserError(f"schedule={kind!r} is not known; use --set schedule=cosine or --set schedule=anneal")


def _optimizer(groups: list[dict[str, Any]], cfg: dict[str, Any]) -> torch.optim.Optimizer:
    kind, lr, wd = cfg.get("optimizer", "adamw"), float(cfg["lr"]), float(cfg["weight_decay"])
    if kind == "sgd":  # the papers' and TLL's: momentum 0.9, Nesterov
        return torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True, weight_decay=wd)
    if kind == "adamw":
        return torch.optim.AdamW(groups, lr=lr, weight_decay=wd)
    raise UserError(f"optimizer={kind!r} is not known; use --set optimizer=sgd or --set optimizer=adamw")


def train_domain(ctx: FitContext, encoder: Encoder, term: DomainTerm | None = None,
                 sample_weights: np.ndarray | None = None) -> tuple[DomainModel, dict[str, Any]]:
    """Train a :class:`DomainModel` on ``ctx.labelled`` (+ target batches for ``term``); see the module doc."""
    cfg, device = ctx.config, ctx.device
    target = require_target(ctx, term.name if term is not None else "source-only")
    torch.manual_seed(ctx.seed)
    model = DomainModel(encoder.module, encoder.feature_dim, ctx.num_classes, int(cfg["bottleneck_dim"])).to(device)
    lr, n = float(cfg["lr"]), len(ctx.labelled)
    if term is not None:
        torch.manual_seed(ctx.seed + 1)
        term.setup(int(cfg["bottleneck_dim"]), ctx.num_classes)
    extra = [m.to(device) for m in (term.modules() if term is not None else [])]
    groups: list[dict[str, Any]] = [{"params": list(model.backbone.parameters()), "lr": lr, "name": "backbone"},
                                     {"params": [*model.bottleneck.parameters(), *model.head.parameters()],
                                      "lr": lr * float(cfg["head_lr_mult"]), "name": "head"}]
    critic_params = [p for m in extra for p in m.parameters() if p.requires_grad]
    own = cfg.get("critic_optimizer", "shared")  # "adam": the critic learns at its own pace (Adam is
    if own not in ("shared", "adam"):  # scale-free), the weight then scales only the reversed gradient
        raise UserError(f"critic_optimizer={own!r} is not known; use --set critic_optimizer=shared or adam")
    if critic_params and own == "shared":
        groups.append({"params": critic_params, "lr": lr * float(cfg.get("domain_lr_mult", 10.0)), "name": "critic"})
    for g in groups:
        g["params"] = [p for p in g["params"] if p.requires_grad]
    opt = _optimizer([g for g in groups if g["params"]], cfg)
    critic_opt = torch.optim.Adam(critic_params, lr=float(cfg.get("critic_lr", 1e-3))) \
        if critic_params and own == "adam" else None
    steps = domain_steps(len(target), cfg)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _schedule(cfg, steps))
    batch = min(int(cfg["batch_size"]), n)
    aug = cfg.get("augment", "none")
    source = TargetBatches(ctx.labelled, encoder, batch, ctx.seed, device, aug, stream=0)
    use_target = term is not None and term.uses_target
    targets = TargetBatches(target, encoder, batch, ctx.seed, device, aug) if use_target else None
    labels = torch.as_tensor(np.asarray(ctx.labelled.labels), dtype=torch.long)
    weights = None if sample_weights is None else torch.as_tensor(sample_weights, dtype=torch.float32)
    loss_value = float("nan")
    for step in range(steps):
        model.train()
        for m in extra:
            m.train()
        if cfg.get("freeze_bn"):
            set_batchnorm_eval(model.backbone)
        xs = source.next()
        idx = torch.as_tensor(source.last)
        x = torch.cat([xs, targets.next()]) if targets is not None else xs
        feats = model.features(x)
        logits = model.head(feats)
        ns = len(xs)
        ce = F.cross_entropy(logits[:ns], labels[idx].to(device), reduction="none")
        loss = (ce * weights[idx].to(device)).mean() if weights is not None else ce.mean()
        if term is not None:
            loss = loss + term.loss(DomainBatch(feats[:ns], logits[:ns], feats[ns:], logits[ns:], step / steps))
        opt.zero_grad(set_to_none=True)
        if critic_opt is not None:
            critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if critic_opt is not None:
            critic_opt.step()
        sched.step()
        loss_value = step_done(loss, step, steps, ctx.progress)
    stats = 0
    if not cfg.get("freeze_bn"):  # statistics of the final weights, on batches composed like the training ones
        stats = reestimate_batchnorm(model, (torch.cat([source.next(), targets.next()]) if targets is not None
                                             else source.next() for _ in range(int(cfg["stat_batches"]))))
    model.eval()
    info = {"steps": steps, "batch_size": batch, "final_loss": round(loss_value, 5), "stat_batches": stats,
            "target_pool": len(target)}
    if term is not None:
        info.update(term.info())
    return model, info


def _digest(values: Any) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()


def baseline_key(ctx: FitContext, encoder: Encoder) -> str:
    """The memo key of the paired baseline: labelled ids, seed, encoder fingerprint and name, task,
    target pool size and every base recipe key (:data:`BASE_KEYS`)."""
    target = ctx.unlabelled_target
    return _digest({"ids": _digest(list(ctx.labelled.ids)), "seed": ctx.seed, "encoder": encoder.name,
                    "fingerprint": encoder.fingerprint(), "task": ctx.task_name, "device": ctx.device,
                    "target": len(target) if target is not None else 0,
                    "recipe": {k: ctx.config.get(k) for k in BASE_KEYS}})


def _memo_predict(predict: Callable[[Split], np.ndarray]) -> Callable[[Split], np.ndarray]:
    """``predict`` with its answers kept by split (ids and first image), so the shared baseline is
    scored once per split however many DA cells carry it."""
    seen: dict[str, np.ndarray] = {}

    def memo(split: Split) -> np.ndarray:
        first = np.asarray(split.images([0])[0]) if len(split) else np.zeros(0)
        key = _digest([len(split), _digest(list(split.ids)), hashlib.sha256(first.tobytes()).hexdigest()])
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
    (shared: copy it before changing it), memoised by :func:`baseline_key`."""
    encoder = ctx.load_encoder(pretrained=True)
    key = baseline_key(ctx, encoder)
    if key in _MEMO:
        _MEMO.move_to_end(key)
        return _MEMO[key]
    model, info = train_domain(ctx, encoder)
    fitted = _as_fitted(model, encoder, ctx, info)
    fitted.predict = _memo_predict(fitted.predict)
    _MEMO[key] = (fitted, model)
    while len(_MEMO) > MEMO_SIZE:
        _MEMO.popitem(last=False)
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

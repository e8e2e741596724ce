"""The frozen-feature DA protocol: a bottleneck, a head and a term's critic trained on cached encoder features.

The encoder stays frozen: the loop reads the labelled source budget's and the unlabelled target
pool's features from the feature cache (``ctx.features``, the probes' cache) and trains a
:class:`~bench.domain.loop.DomainModel` with an identity backbone (bottleneck Linear -> BatchNorm1d ->
ReLU, then a linear head) on :func:`bench.loop.run_steps`, with the terms of :mod:`bench.domain.terms`
and the optimiser and schedule of the fine-tuning DA loop (:data:`~bench.domain.recipe.FEATURE_DEFAULTS`:
SGD 0.01, ``(1 + 10 p)^-0.75``, thousands of steps: seconds on features). Each step draws a source
batch and, for a term that uses the target, a target batch of the same size (seeded draws with
replacement); both go through one forward, as in the fine-tuning loop. Deterministic under a seed.

:func:`fit_features` returns a method's :class:`~bench.strategies.Fitted` whose ``baseline`` is
:func:`source_only_features`: the same loop without a term (the protocol's standard source-only cell,
``source-only-features``), memoised in the session's :class:`~bench.domain.loop.BaselineMemo`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.adaptation import require_target
from bench.domain.loop import BaselineMemo, DomainModel, digest, optimizer_for, schedule_for
from bench.domain.recipe import FEATURE_DEFAULTS, DomainRecipe, step_rule
from bench.domain.terms import DomainBatch, DomainTerm
from bench.loop import run_steps
from bench.strategies import FitContext, Fitted
from bench.tasks import Split

__all__ = ["fit_features", "source_only_features", "train_features"]


def train_features(ctx: FitContext, term: DomainTerm | None = None,
                   sample_weights: np.ndarray | None = None) -> tuple[DomainModel, dict[str, Any]]:
    """Train a bottleneck and head (and ``term``'s modules) on ``ctx``'s cached features; see the module doc."""
    recipe, device = DomainRecipe.of({**FEATURE_DEFAULTS, **ctx.config}), ctx.device
    target = require_target(ctx, term.name if term is not None else "source-only-features")
    xs = torch.as_tensor(np.asarray(ctx.features(ctx.labelled), dtype=np.float32), device=device)
    ys = torch.as_tensor(np.asarray(ctx.labelled.labels), dtype=torch.long, device=device)
    use_target = term is not None and term.uses_target
    xt = torch.as_tensor(np.asarray(ctx.features(target), dtype=np.float32), device=device) if use_target else None
    torch.manual_seed(ctx.seed)
    model = DomainModel(nn.Identity(), xs.shape[1], ctx.num_classes, recipe.bottleneck_dim).to(device)
    groups: list[dict[str, Any]] = [{"params": list(model.parameters()), "lr": recipe.lr * recipe.head_lr_mult}]
    extra: list[nn.Module] = []
    if term is not None:
        torch.manual_seed(ctx.seed + 1)
        term.setup(recipe.bottleneck_dim, ctx.num_classes)
        extra = [m.to(device) for m in term.modules()]
        critic = [p for m in extra for p in m.parameters() if p.requires_grad]
        if critic:
            groups.append({"params": critic, "lr": recipe.lr * recipe.domain_lr_mult})
    opt = optimizer_for(groups, recipe)
    steps, wanted, capped = step_rule(len(target), recipe)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule_for(recipe, steps))
    batch = min(recipe.batch_size, len(xs))
    gen = torch.Generator().manual_seed(ctx.seed)
    weights = None if sample_weights is None else torch.as_tensor(sample_weights, dtype=torch.float32, device=device)

    def draw(step: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        model.train()
        for m in extra:
            m.train()
        si = torch.randint(len(xs), (batch,), generator=gen)
        ti = torch.randint(len(xt), (batch,), generator=gen) if xt is not None else None
        return si.to(device), None if ti is None else ti.to(device)

    def loss_of(data: tuple[torch.Tensor, torch.Tensor | None], step: int, part: slice) -> torch.Tensor:
        si, ti = data
        x = xs[si] if ti is None or xt is None else torch.cat([xs[si], xt[ti]])
        feats = model.features(x)
        logits = model.head(feats)
        ce = F.cross_entropy(logits[:batch], ys[si], reduction="none")
        loss = (ce * weights[si]).mean() if weights is not None else ce.mean()
        if term is not None:
            loss = loss + term.loss(DomainBatch(feats[:batch], logits[:batch], feats[batch:], logits[batch:],
                                                step / steps))
        return loss

    result = run_steps([opt], steps, draw, loss_of, device=device, scheduler=sched, progress=ctx.progress,
                       where=" (frozen-feature DA)")
    model.eval()
    info: dict[str, Any] = {"protocol": "frozen-features", "steps": steps, "steps_wanted": wanted, "capped": capped,
                            "batch_size": batch, "final_loss": round(result.final_loss, 5), "target_pool": len(target)}
    if term is not None:
        info.update(term.info())
    return model, info


def _as_fitted(model: DomainModel, ctx: FitContext, info: dict[str, Any], extra: list[nn.Module]) -> Fitted:
    features, device = ctx.features, ctx.device

    def predict(split: Split) -> np.ndarray:
        with torch.no_grad():
            x = torch.as_tensor(np.asarray(features(split), dtype=np.float32), device=device)
            return model(x).argmax(dim=1).cpu().numpy()

    n_model = sum(p.numel() for p in model.parameters())
    n_extra = sum(p.numel() for m in extra for p in m.parameters())
    return Fitted(predict=predict, trainable_params=n_model + n_extra, total_params=n_model + n_extra, info=info)


def source_only_features(ctx: FitContext) -> Fitted:
    """The protocol's source-only cell (:func:`train_features` with no term), memoised by the labelled
    ids, seed, task, target pool size and every :data:`~bench.domain.recipe.FEATURE_DEFAULTS` key."""
    target = ctx.unlabelled_target
    key = "features:" + digest({"ids": digest(list(ctx.labelled.ids)), "seed": ctx.seed, "task": ctx.task_name,
                                 "device": ctx.device, "target": len(target) if target is not None else 0,
                                 "recipe": {k: ctx.config.get(k, v) for k, v in FEATURE_DEFAULTS.items()}})
    memo = BaselineMemo.of(ctx)
    found = memo.get(key)
    if found is None:
        model, info = train_features(ctx)
        found = (_as_fitted(model, ctx, info, []), model)
        memo.put(key, found)
    # predictions read THIS cell's features (each cell's feature access is gated to its own splits)
    return _as_fitted(found[1], ctx, dict(found[0].info), [])


def fit_features(ctx: FitContext, term: DomainTerm | None, sample_weights: np.ndarray | None = None) -> Fitted:
    """A frozen-feature DA method's :class:`Fitted`: :func:`train_features` with ``term`` (and
    ``sample_weights``), ``baseline`` = :func:`source_only_features`."""
    baseline = source_only_features(ctx)
    model, info = train_features(ctx, term, sample_weights)
    fitted = _as_fitted(model, ctx, info, term.modules() if term is not None else [])
    fitted.baseline = baseline
    return fitted

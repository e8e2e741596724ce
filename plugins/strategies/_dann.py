"""The ``dann`` strategy's implementation (registered in :mod:`bench_plugins.strategies.dann`)."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bench.adaptation import TargetBatches, feature_classifier, require_target
from bench.strategies import FitContext, Fitted
from bench.training import fit_classifier, head_and_backbone_groups, num_steps


class GradReverse(torch.autograd.Function):
    """Identity forward; gradient multiplied by ``-coeff`` backward."""

    @staticmethod
    def forward(ctx: Any, inp: torch.Tensor, coeff: float) -> torch.Tensor:
        ctx.coeff = coeff
        return inp.view_as(inp)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.coeff * grad, None


def grad_reverse(x: torch.Tensor, coeff: float) -> torch.Tensor:
    """Identity forward; gradient multiplied by ``-coeff`` backward."""
    return GradReverse.apply(x, coeff)


def domain_classifier(feature_dim: int, hidden: int, dropout: float) -> nn.Sequential:
    """Two hidden ReLU layers with dropout, one logit (source 0 / target 1), as in Ganin et al."""
    return nn.Sequential(nn.Linear(feature_dim, hidden), nn.ReLU(), nn.Dropout(dropout),
                         nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 1))


def dann_lambda(step: int, total: int, gamma: float) -> float:
    p = min(1.0, step / max(1, total))
    return 2.0 / (1.0 + math.exp(-gamma * p)) - 1.0


class Dann:
    def fit(self, ctx: FitContext) -> Fitted:
        target = require_target(ctx, "dann")
        cfg = ctx.config
        encoder = ctx.load_encoder(pretrained=True)
        model = feature_classifier(encoder, ctx.num_classes)
        torch.manual_seed(ctx.seed)
        hidden = int(cfg["domain_hidden"])
        domain = domain_classifier(encoder.feature_dim, hidden, float(cfg["domain_dropout"])).to(ctx.device)
        lr, mult = float(cfg["lr"]), float(cfg["head_lr_mult"])
        groups = head_and_backbone_groups(model, lr, mult)
        groups.append({"params": list(domain.parameters()), "lr": lr * float(cfg["domain_lr_mult"]), "name": "domain"})
        total = num_steps(len(ctx.labelled), cfg)
        batches = TargetBatches(target, encoder, min(int(cfg["batch_size"]), len(ctx.labelled)), ctx.seed, ctx.device,
                                cfg.get("augment", "none"))
        weight, gamma = float(cfg["domain_weight"]), float(cfg["gamma"])
        log: dict[str, list[float]] = {"domain_acc": []}

        def extra_loss(model, x, y, logits, step):
            feats_t = model.backbone(batches.next())
            feats = torch.cat([model.features, feats_t])
            dom = torch.cat([torch.zeros(len(model.features)), torch.ones(len(feats_t))]).to(feats.device)
            out = domain(grad_reverse(feats, dann_lambda(step, total, gamma))).squeeze(1)
            if step >= total - 10:
                log["domain_acc"].append(float(((out > 0).float() == dom).float().mean()))
            return weight * F.binary_cross_entropy_with_logits(out, dom)

        fitted = fit_classifier(ctx, encoder, model, groups, extra_loss=extra_loss)
        if log["domain_acc"]:  # near 0.5 means the domains became indistinguishable
            fitted.info["final_domain_accuracy"] = round(sum(log["domain_acc"]) / len(log["domain_acc"]), 4)
        return fitted

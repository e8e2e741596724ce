"""The ``l2-sp`` and ``ewc`` strategies' implementation (registered in
:mod:`bench_plugins.strategies.regularised`)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.adaptation import init_head_from_probe
from bench.encoders import preprocess
from bench.errors import UserError
from bench.strategies import FitContext, Fitted
from bench.training import Classifier, fit_classifier, head_and_backbone_groups


def fisher_diagonal(backbone: nn.Module, head: nn.Module, images: torch.Tensor, labels: np.ndarray
                    ) -> dict[str, torch.Tensor]:
    """Diagonal empirical Fisher ``mean_x grad(log p(label|x))^2`` of ``backbone``'s parameters
    (a dict name -> tensor), one image at a time, in eval mode (frozen BatchNorm, no dropout)."""
    named = [(n, p) for n, p in backbone.named_parameters() if p.requires_grad]
    fisher = {n: torch.zeros_like(p) for n, p in named}
    was_training = backbone.training
    backbone.eval()
    try:
        for i in range(len(images)):
            logp = F.log_softmax(head(backbone(images[i : i + 1])), dim=1)[0, int(labels[i])]
            grads = torch.autograd.grad(logp, [p for _, p in named], allow_unused=True)
            for (n, _), g in zip(named, grads):
                if g is not None:
                    fisher[n] += g.detach() ** 2
    finally:
        backbone.train(was_training)
    return {n: f / max(1, len(images)) for n, f in fisher.items()}


def normalise_importance(fisher: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Divide by the mean over all entries (uniform importance if the Fisher is all zero)."""
    total = sum(float(f.sum()) for f in fisher.values())
    count = sum(f.numel() for f in fisher.values())
    if total <= 0:
        return {n: torch.ones_like(f) for n, f in fisher.items()}
    mean = total / count
    return {n: f / mean for n, f in fisher.items()}


def anchor_penalty(backbone: nn.Module, strength: float, importance: dict[str, torch.Tensor] | None = None
                   ) -> Callable[..., torch.Tensor]:
    """``extra_loss`` for the shared loop: ``strength / 2 * sum importance * (w - w0)^2`` with
    ``w0`` the backbone's weights now."""
    named = [(n, p) for n, p in backbone.named_parameters() if p.requires_grad]
    anchors = {n: p.detach().clone() for n, p in named}
    weights = dict(importance) if importance is not None else None

    def penalty(model, x, y, logits, step):
        total = 0.0
        for n, p in named:
            if anchors[n].device != p.device:
                anchors[n] = anchors[n].to(p.device)
                if weights is not None:
                    weights[n] = weights[n].to(p.device)
            d = (p - anchors[n]) ** 2
            total = total + (d.sum() if weights is None else (weights[n] * d).sum())
        return 0.5 * strength * total

    return penalty


class Regularised:
    def __init__(self, kind: str) -> None:
        self.kind = kind

    def fit(self, ctx: FitContext) -> Fitted:
        encoder = ctx.load_encoder(pretrained=True)
        model = Classifier(encoder.module, encoder.feature_dim, ctx.num_classes)
        info: dict = {}
        if self.kind == "l2-sp":
            strength, importance = float(ctx.config["l2sp_alpha"]), None
        else:
            strength = float(ctx.config["ewc_lambda"])
            probe = nn.Linear(encoder.feature_dim, ctx.num_classes)
            init_head_from_probe(ctx, probe, float(ctx.config["lp_C"]), 2000, info)
            n = min(len(ctx.labelled), int(ctx.config["ewc_fisher_items"]))
            positions = np.random.default_rng(ctx.seed).permutation(len(ctx.labelled))[:n]
            images = preprocess(ctx.labelled.images(positions.tolist()), encoder).to(ctx.device)
            model.to(ctx.device)
            probe.to(ctx.device)
            with torch.no_grad():
                encoder.module.eval()
                labels = probe(encoder.module(images)).argmax(1).cpu().numpy()
            importance = normalise_importance(fisher_diagonal(encoder.module, probe, images, labels))
            info["fisher_items"] = int(n)
        if strength < 0:
            raise UserError(f"{self.kind}: the penalty strength must be >= 0, got {strength}")
        groups = head_and_backbone_groups(model, float(ctx.config["lr"]), float(ctx.config["head_lr_mult"]))
        groups[0]["weight_decay"] = 0.0  # the penalty replaces decay towards zero for the backbone
        penalty = anchor_penalty(model.backbone, strength, importance)
        fitted = fit_classifier(ctx, encoder, model, groups, extra_loss=penalty)
        fitted.info.update(info)
        return fitted


def l2_sp() -> Regularised:
    """The ``l2-sp`` strategy (its spec's loader)."""
    return Regularised("l2-sp")


def ewc() -> Regularised:
    """The ``ewc`` strategy (its spec's loader)."""
    return Regularised("ewc")

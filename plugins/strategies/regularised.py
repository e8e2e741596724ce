"""``l2-sp`` and ``ewc``: fine-tuning pulled towards the pre-trained weights.

Both fine-tune everything as ``finetune`` does (new head at ``head_lr_mult`` times the rate,
frozen BatchNorm statistics) and add a penalty on the backbone's distance from its pre-trained
weights ``w0``, through the shared loop's ``extra_loss``:

- ``l2-sp`` (Li et al. 2018): ``l2sp_alpha / 2 * ||w - w0||^2``.
- ``ewc`` (Kirkpatrick et al. 2017): ``ewc_lambda / 2 * sum_i F_i (w_i - w0_i)^2`` with ``F`` a
  diagonal Fisher information. The pre-trained network's own task (ImageNet and its classifier)
  is not available, so the Fisher is estimated on the data at hand, without touching anything
  the protocol forbids: the labelled budget (at most ``ewc_fisher_items`` images), each labelled
  with the prediction of a linear probe fitted on the pre-trained encoder's cached features (the
  same probe LP-FT starts from), i.e. ``F_i = mean_x (d/dw_i log p(probe label | x))^2`` at
  ``w0``, one backward pass per image. ``F`` is divided by its mean, so ``ewc_lambda`` is on the
  same scale as ``l2sp_alpha`` (a uniform Fisher makes EWC equal to L2-SP).

The backbone's decoupled weight decay is switched off (the penalty replaces decay towards zero,
as in L2-SP); the head keeps it.
"""

from __future__ import annotations

import bench
from bench.recipes import RECIPE_DEFAULTS
from bench.specs import StrategySpec


@bench.hookimpl
def bench_register_strategies():
    return [
        StrategySpec(
            name="l2-sp",
            description="fine-tune with an L2 penalty towards the pre-trained weights (L2-SP)",
            loader=lambda: Regularised("l2-sp"),
            kind="train",
            requires=("pretrained", "trainable"),
            defaults={**RECIPE_DEFAULTS, "l2sp_alpha": 0.1},
        ),
        StrategySpec(
            name="ewc",
            description="fine-tune with an EWC penalty (diagonal Fisher on the budget, probe labels)",
            loader=lambda: Regularised("ewc"),
            kind="train",
            requires=("pretrained", "trainable"),
            defaults={**RECIPE_DEFAULTS, "ewc_lambda": 0.1, "ewc_fisher_items": 64, "lp_C": 10.0},
        ),
    ]


def fisher_diagonal(backbone, head, images, labels):
    """Diagonal empirical Fisher ``mean_x grad(log p(label|x))^2`` of ``backbone``'s parameters
    (a dict name -> tensor), one image at a time, in eval mode (frozen BatchNorm, no dropout)."""
    import torch
    import torch.nn.functional as F

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


def normalise_importance(fisher):
    """Divide by the mean over all entries (uniform importance if the Fisher is all zero)."""
    import torch

    total = sum(float(f.sum()) for f in fisher.values())
    count = sum(f.numel() for f in fisher.values())
    if total <= 0:
        return {n: torch.ones_like(f) for n, f in fisher.items()}
    mean = total / count
    return {n: f / mean for n, f in fisher.items()}


def anchor_penalty(backbone, strength: float, importance=None):
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

    def fit(self, ctx):
        import numpy as np
        import torch

        from bench.encoders import preprocess
        from bench.errors import UserError
        from bench.training import Classifier, fit_classifier, head_and_backbone_groups
        from bench_plugins.strategies.lp_ft import init_head_from_probe

        encoder = ctx.load_encoder(pretrained=True)
        model = Classifier(encoder.module, encoder.feature_dim, ctx.task.num_classes)
        info = {}
        if self.kind == "l2-sp":
            strength, importance = float(ctx.config["l2sp_alpha"]), None
        else:
            strength = float(ctx.config["ewc_lambda"])
            probe = torch.nn.Linear(encoder.feature_dim, ctx.task.num_classes)
            init_head_from_probe(ctx, probe, float(ctx.config["lp_C"]), 2000)
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
        fitted = fit_classifier(ctx, encoder, model, groups, extra_loss=anchor_penalty(model.backbone, strength, importance))
        fitted.info.update(info)
        return fitted

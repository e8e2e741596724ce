"""The ``coral`` strategy's implementation (registered in :mod:`bench_plugins.strategies.coral`)."""

from __future__ import annotations

import torch

from bench.adaptation import TargetBatches, feature_classifier, require_target
from bench.strategies import FitContext, Fitted
from bench.training import fit_classifier, head_and_backbone_groups


def covariance(x: torch.Tensor) -> torch.Tensor:
    """Unbiased covariance of the rows of ``x`` ``[n, d]`` -> ``[d, d]``."""
    xc = x - x.mean(dim=0, keepdim=True)
    return xc.T @ xc / max(1, x.shape[0] - 1)


def coral_loss(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of the feature means plus a quarter of that of the covariance
    matrices (``||mu_s - mu_t||^2 / d + ||C_s - C_t||_F^2 / (4 d^2)``)."""
    if source.shape[0] < 2 or target.shape[0] < 2:  # no covariance from one item
        return source.sum() * 0.0
    mean_term = (source.mean(dim=0) - target.mean(dim=0)).pow(2).mean()
    return mean_term + (covariance(source) - covariance(target)).pow(2).mean() / 4


class Coral:
    def fit(self, ctx: FitContext) -> Fitted:
        target = require_target(ctx, "coral")
        cfg = ctx.config
        encoder = ctx.load_encoder(pretrained=True)
        model = feature_classifier(encoder, ctx.num_classes)
        groups = head_and_backbone_groups(model, float(cfg["lr"]), float(cfg["head_lr_mult"]))
        batches = TargetBatches(target, encoder, min(int(cfg["batch_size"]), len(ctx.labelled)), ctx.seed, ctx.device,
                                cfg.get("augment", "none"))
        weight = float(cfg["coral_weight"])
        log: dict[str, list[float]] = {"coral": []}

        def extra_loss(model, x, y, logits, step):
            loss = coral_loss(model.features, model.backbone(batches.next()))
            log["coral"].append(float(loss.detach()))
            return weight * loss

        fitted = fit_classifier(ctx, encoder, model, groups, extra_loss=extra_loss)
        if log["coral"]:
            fitted.info["coral_first"] = round(log["coral"][0], 6)
            fitted.info["coral_last"] = round(sum(log["coral"][-10:]) / len(log["coral"][-10:]), 6)
        return fitted

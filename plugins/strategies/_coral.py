"""The ``coral`` strategy's implementation (registered in :mod:`bench_plugins.strategies.coral`)."""

from __future__ import annotations

from typing import Any

import torch

from bench.adaptation import require_target
from bench.domain.loop import DomainBatch, WeightedTerm, fit_domain
from bench.strategies import FitContext, Fitted

__all__ = ["Coral", "CoralTerm", "coral_loss", "covariance"]


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


class CoralTerm(WeightedTerm):
    name = "coral"

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config["coral_weight"])

    def value(self, batch: DomainBatch) -> torch.Tensor:
        return coral_loss(batch.features_s, batch.features_t)


class Coral:
    def fit(self, ctx: FitContext) -> Fitted:
        require_target(ctx, "coral")
        return fit_domain(ctx, CoralTerm(ctx.config))

"""The ``mcc`` strategy's implementation (registered in :mod:`bench_plugins.strategies.mcc`)."""

from __future__ import annotations

from typing import Any

import torch

from bench.adaptation import require_target
from bench.domain.loop import DomainBatch, WeightedTerm, fit_domain
from bench.strategies import FitContext, Fitted

__all__ = ["Mcc", "MccTerm", "mcc_loss"]


def mcc_loss(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Minimum class confusion (Jin et al., 2020) of a batch of target logits ``[B, K]``.

    ``p = softmax(logits / T)``; example weights ``w = 1 + exp(-H(p))`` (no gradient), rescaled to
    sum to ``B``; class correlation ``C = p^T diag(w) p`` ``[K, K]``; each row divided by its sum
    (category normalisation); loss = the off-diagonal mass ``(sum(C) - trace(C)) / K``.
    """
    p = torch.softmax(logits / temperature, dim=1)
    h = -(p * torch.log(p.clamp_min(1e-12))).sum(dim=1).detach()
    w = 1.0 + torch.exp(-h)
    w = w / w.sum() * len(w)
    c = (p * w.unsqueeze(1)).T @ p
    c = c / c.sum(dim=1, keepdim=True)
    return (c.sum() - c.trace()) / p.shape[1]


class MccTerm(WeightedTerm):
    name = "mcc"

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config["mcc_weight"])
        self.temperature = float(config["temperature"])

    def value(self, batch: DomainBatch) -> torch.Tensor:
        return mcc_loss(batch.logits_t, self.temperature)


class Mcc:
    def fit(self, ctx: FitContext) -> Fitted:
        require_target(ctx, "mcc")
        return fit_domain(ctx, MccTerm(ctx.config))

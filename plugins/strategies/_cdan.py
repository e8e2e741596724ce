"""The ``cdan`` strategy's implementation (registered in :mod:`bench_plugins.strategies.cdan`)."""

from __future__ import annotations

import math
from typing import Any

import torch

from bench.adaptation import require_target
from bench.domain.loop import AdversarialTerm, DomainBatch, fit_domain
from bench.strategies import FitContext, Fitted

__all__ = ["Cdan", "CdanTerm", "entropy_weights", "multilinear_map"]


def multilinear_map(features: torch.Tensor, probs: torch.Tensor,
                    random: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """CDAN's conditioning ``f (x) g``: the flattened outer product ``[B, K * D]`` (row ``b``,
    column ``k * D + d`` = ``g[b, k] * f[b, d]``), or with ``random = (R_f [D, m], R_g [K, m])``
    the randomised map ``(f R_f) * (g R_g) / sqrt(m)``."""
    if random is None:
        return (probs.unsqueeze(2) * features.unsqueeze(1)).flatten(1)
    rf, rg = random
    return (features @ rf) * (probs @ rg) / math.sqrt(rf.shape[1])


def entropy_weights(probs: torch.Tensor) -> torch.Tensor:
    """CDAN+E's example weights ``1 + exp(-H(g))``, rescaled to mean 1 over the batch."""
    h = -(probs * torch.log(probs.clamp_min(1e-12))).sum(dim=1)
    w = 1.0 + torch.exp(-h)
    return w / w.sum() * len(w)


class CdanTerm(AdversarialTerm):
    """DANN's critic, fed the multilinear map of bottleneck features and (detached) softmax
    predictions; the randomised map when ``D * K > max_full_dim``; entropy conditioning (CDAN+E)."""

    name = "cdan"

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.entropy = bool(config["entropy_conditioning"])
        self.max_full, self.random_dim = int(config["max_full_dim"]), int(config["random_dim"])
        self.random: tuple[torch.Tensor, torch.Tensor] | None = None

    def critic_input(self, feature_dim: int, num_classes: int) -> int:
        if feature_dim * num_classes <= self.max_full:
            return feature_dim * num_classes
        self.random = (torch.randn(feature_dim, self.random_dim), torch.randn(num_classes, self.random_dim))
        return self.random_dim

    def critic_features(self, batch: DomainBatch) -> tuple[torch.Tensor, torch.Tensor | None]:
        f = torch.cat([batch.features_s, batch.features_t])
        g = torch.softmax(torch.cat([batch.logits_s, batch.logits_t]), dim=1).detach()
        random = None if self.random is None else (self.random[0].to(f.device), self.random[1].to(f.device))
        return multilinear_map(f, g, random), entropy_weights(g) if self.entropy else None


class Cdan:
    def fit(self, ctx: FitContext) -> Fitted:
        require_target(ctx, "cdan")
        return fit_domain(ctx, CdanTerm(ctx.config))

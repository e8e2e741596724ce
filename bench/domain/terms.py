"""Domain-adaptation loss terms for :mod:`bench.domain.loop`'s loop: the term contract, gradient
reversal, the DANN lambda ramp, the domain critic and the adversarial term (DANN; CDAN builds on it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["AdversarialTerm", "DomainBatch", "DomainTerm", "GradReverse", "WeightedTerm", "domain_critic",
           "grad_reverse", "lambda_ramp"]


@dataclass
class DomainBatch:
    """One step: bottleneck features and logits of the source batch (``*_s``) and of the target
    batch (``*_t``, empty when the term does not use the target); ``progress`` 0..1."""

    features_s: torch.Tensor
    logits_s: torch.Tensor
    features_t: torch.Tensor
    logits_t: torch.Tensor
    progress: float


class DomainTerm:
    """A method's plug-in loss. Subclasses set ``name`` and implement :meth:`loss`; ``modules()``
    lists trainable extra modules (a critic); ``info()`` numbers to record."""

    name = "term"
    uses_target = True

    def setup(self, feature_dim: int, num_classes: int) -> None:
        """Build the term's modules for bottleneck features of ``feature_dim`` (called by
        :func:`train_domain` with the torch RNG seeded from the cell's seed)."""

    def modules(self) -> list[nn.Module]:
        return []

    def loss(self, batch: DomainBatch) -> torch.Tensor:
        raise NotImplementedError

    def info(self) -> dict[str, Any]:
        return {}


class WeightedTerm(DomainTerm):
    """``weight * value(batch)``, recording the value: ``info()`` gives ``<name>_first`` (the first
    step's) and ``<name>_last`` (the mean of the last ten), e.g. CORAL's distance, MCC's confusion."""

    def __init__(self, weight: float) -> None:
        self.weight = float(weight)
        self.values: list[float] = []

    def value(self, batch: DomainBatch) -> torch.Tensor:
        raise NotImplementedError

    def loss(self, batch: DomainBatch) -> torch.Tensor:
        value = self.value(batch)
        self.values.append(float(value.detach()))
        return self.weight * value

    def info(self) -> dict[str, Any]:
        last = self.values[-10:]
        return {f"{self.name}_first": round(self.values[0], 6), f"{self.name}_last": round(sum(last) / len(last), 6)} \
            if last else {}


class GradReverse(torch.autograd.Function):
    """Identity forward; gradient multiplied by ``-coeff`` backward (Ganin & Lempitsky's GRL)."""

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


def lambda_ramp(progress: float, gamma: float = 10.0) -> float:
    """Ganin & Lempitsky's adaptation weight ``2 / (1 + exp(-gamma p)) - 1`` (0 at the start, ~1 at the end)."""
    return 2.0 / (1.0 + math.exp(-gamma * min(1.0, max(0.0, progress)))) - 1.0


def domain_critic(in_dim: int, hidden: int, dropout: float) -> nn.Sequential:
    """Two hidden ReLU layers with dropout and one logit (source 0, target 1), as in Ganin et al."""
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(dropout),
                         nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 1))


class AdversarialTerm(DomainTerm):
    """A domain critic behind a gradient reversal layer scaled by the lambda ramp (DANN: the
    critic judges bottleneck features; subclasses override :meth:`critic_input` and
    :meth:`critic_features`, e.g. CDAN). Records the critic's accuracy over the last tenth of the
    steps as ``final_domain_accuracy`` (0.5: the domains are indistinguishable)."""

    name = "dann"

    def __init__(self, config: dict[str, Any]) -> None:
        self.weight, self.gamma = float(config["domain_weight"]), float(config["gamma"])
        self.hidden, self.dropout = int(config["domain_hidden"]), float(config["domain_dropout"])
        self.accuracy: list[float] = []

    def setup(self, feature_dim: int, num_classes: int) -> None:
        self.critic = domain_critic(self.critic_input(feature_dim, num_classes), self.hidden, self.dropout)

    def critic_input(self, feature_dim: int, num_classes: int) -> int:
        return feature_dim

    def modules(self) -> list[nn.Module]:
        return [self.critic]

    def critic_features(self, batch: DomainBatch) -> tuple[torch.Tensor, torch.Tensor | None]:
        """What the critic judges (source rows first) and per-row loss weights (None: equal)."""
        return torch.cat([batch.features_s, batch.features_t]), None

    def loss(self, batch: DomainBatch) -> torch.Tensor:
        h, weight = self.critic_features(batch)
        ns = len(batch.features_s)
        domain = torch.cat([torch.zeros(ns), torch.ones(len(h) - ns)]).to(h.device)
        out = self.critic(grad_reverse(h, lambda_ramp(batch.progress, self.gamma))).squeeze(1)
        if batch.progress >= 0.9:
            self.accuracy.append(float(((out > 0).float() == domain).float().mean()))
        return self.weight * F.binary_cross_entropy_with_logits(out, domain, weight=weight)

    def info(self) -> dict[str, Any]:
        if not self.accuracy:
            return {}
        return {"final_domain_accuracy": round(sum(self.accuracy) / len(self.accuracy), 4)}

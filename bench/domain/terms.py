"""Domain-adaptation loss terms for the DA loops (:mod:`bench.domain.loop`, :mod:`bench.domain.features`).

The term contract, gradient reversal, the DANN lambda ramp, the domain critic, the adversarial term
(DANN) and the terms built on it or on :class:`WeightedTerm`: CDAN's conditioned critic, MCC, CORAL
and entropy minimisation; each method's fine-tune and frozen-feature strategies share one term.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["AdversarialTerm", "CdanTerm", "CoralTerm", "DomainBatch", "DomainTerm", "EntropyTerm", "GradReverse",
           "MccTerm", "WeightedTerm", "coral_loss", "covariance", "domain_critic", "entropy", "entropy_weights",
           "grad_reverse", "lambda_ramp", "mcc_loss", "multilinear_map"]


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


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Each row's prediction entropy ``-sum softmax * log_softmax`` ``[B]``."""
    logp = torch.log_softmax(logits, dim=1)
    return -(logp.exp() * logp).sum(dim=1)


class EntropyTerm(WeightedTerm):
    """Entropy minimisation (Grandvalet & Bengio, 2005): ``entropy_weight`` times the mean prediction
    entropy of the target batch."""

    name = "entropy"

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config["entropy_weight"])

    def value(self, batch: DomainBatch) -> torch.Tensor:
        return entropy(batch.logits_t).mean()

"""The built-in weightings' implementations (registered in :mod:`bench_plugins.multitask.weightings`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch


class Equal:
    """``sum_i L_i``."""

    def __init__(self, num_tasks: int, config: Mapping[str, Any], seed: int) -> None:
        self.num_tasks = num_tasks

    def parameters(self) -> list[torch.Tensor]:
        return []

    def combine(self, losses: Sequence[torch.Tensor], shared: Sequence[torch.Tensor],
                last: torch.Tensor) -> torch.Tensor:
        return torch.stack(list(losses)).sum()

    def after_step(self) -> None:
        pass

    def weights(self) -> list[float]:
        return [1.0] * self.num_tasks


class Uncertainty(Equal):
    """``sum_i exp(-s_i) L_i + s_i`` with learned log-variances ``s_i`` (Kendall et al. 2018)."""

    def __init__(self, num_tasks: int, config: Mapping[str, Any], seed: int) -> None:
        super().__init__(num_tasks, config, seed)
        self.log_vars = torch.zeros(num_tasks, requires_grad=True)

    def parameters(self) -> list[torch.Tensor]:
        return [self.log_vars]

    def combine(self, losses: Sequence[torch.Tensor], shared: Sequence[torch.Tensor],
                last: torch.Tensor) -> torch.Tensor:
        s = self.log_vars.to(losses[0].device)
        return (torch.exp(-s) * torch.stack(list(losses)) + s).sum()

    def weights(self) -> list[float]:
        return torch.exp(-self.log_vars.detach()).tolist()


def gradnorm_objective(weights: torch.Tensor, norms: torch.Tensor, ratios: torch.Tensor,
                       alpha: float) -> torch.Tensor:
    """GradNorm's ``L_grad = sum_i |w_i n_i - mean(w n) * r_i ** alpha|``, where ``n_i`` is
    ``||grad_W L_i||`` and ``r_i`` the relative inverse training rate; the target is a constant."""
    g = weights * norms
    target = (g.mean() * ratios ** alpha).detach()
    return (g - target).abs().sum()


class GradNorm(Equal):
    """Task weights trained to balance the gradient norms on the shared last layer (Chen et al. 2018)."""

    def __init__(self, num_tasks: int, config: Mapping[str, Any], seed: int) -> None:
        super().__init__(num_tasks, config, seed)
        self.alpha = float(config["gradnorm_alpha"])
        self.w = torch.ones(num_tasks, requires_grad=True)
        self.initial: torch.Tensor | None = None

    def parameters(self) -> list[torch.Tensor]:
        return [self.w]

    def combine(self, losses: Sequence[torch.Tensor], shared: Sequence[torch.Tensor],
                last: torch.Tensor) -> torch.Tensor:
        stacked = torch.stack(list(losses))
        norms = torch.stack([_norm(torch.autograd.grad(v, last, retain_graph=True, allow_unused=True)[0], last)
                             for v in losses]).detach().float()
        if self.initial is None:
            self.initial = stacked.detach().float().cpu().clamp_min(1e-12)
        rate = stacked.detach().float().cpu() / self.initial
        ratios = rate / rate.mean()
        w = self.w.to(stacked.device)
        l_grad = gradnorm_objective(w, norms, ratios.to(stacked.device), self.alpha)
        # value: the weighted loss; gradients: the network's from sum w_i L_i, the weights' from L_grad
        return (w.detach() * stacked).sum() + (l_grad - l_grad.detach())

    def after_step(self) -> None:
        with torch.no_grad():  # renormalise to sum T (a weight pushed to zero or below stays just positive)
            self.w.clamp_(min=1e-3)
            self.w.mul_(self.num_tasks / self.w.sum())

    def weights(self) -> list[float]:
        return self.w.detach().tolist()


def pcgrad(grads: Sequence[torch.Tensor], order: Sequence[Sequence[int]]) -> torch.Tensor:
    """Yu et al. (2020)'s projection of flat per-task gradients: for task ``i``, for each ``j`` in
    ``order[i]``, ``g_i <- g_i - (g_i . g_j) / ||g_j||^2 g_j`` when ``g_i . g_j < 0`` (``g_j`` the
    original gradient); returns the sum of the projected gradients."""
    out = []
    for i, g in enumerate(grads):
        p = g.clone()
        for j in order[i]:
            dot = torch.dot(p, grads[j])
            if dot < 0:
                p = p - dot / grads[j].pow(2).sum().clamp_min(1e-20) * grads[j]
        out.append(p)
    return torch.stack(out).sum(0)


class PCGrad(Equal):
    """Projected conflicting gradients on the shared encoder; heads keep their own task's gradient."""

    def __init__(self, num_tasks: int, config: Mapping[str, Any], seed: int) -> None:
        super().__init__(num_tasks, config, seed)
        self.gen = torch.Generator().manual_seed(seed)

    def combine(self, losses: Sequence[torch.Tensor], shared: Sequence[torch.Tensor],
                last: torch.Tensor) -> torch.Tensor:
        params = list(shared)
        grads = []
        for v in losses:
            gs = torch.autograd.grad(v, params, retain_graph=True, allow_unused=True)
            grads.append(torch.cat([_flat(g, p) for g, p in zip(gs, params)]))
        order = []
        for i in range(self.num_tasks):
            others = [j for j in torch.randperm(self.num_tasks, generator=self.gen).tolist() if j != i]
            order.append(others)
        surgery = pcgrad(grads, order) - torch.stack(grads).sum(0)  # what the plain sum lacks
        total = torch.stack(list(losses)).sum()
        # a zero-valued term whose gradient on the shared parameters turns sum_i g_i into the projected sum
        correction = torch.zeros((), device=total.device)
        start = 0
        for p in params:
            c = surgery[start: start + p.numel()].view_as(p).detach()
            start += p.numel()
            correction = correction + (p * c).sum() - (p.detach() * c).sum()
        return total + correction


def _flat(g: torch.Tensor | None, p: torch.Tensor) -> torch.Tensor:
    return (torch.zeros_like(p) if g is None else g).reshape(-1).float()


def _norm(g: torch.Tensor | None, p: torch.Tensor) -> torch.Tensor:
    return _flat(g, p).norm()

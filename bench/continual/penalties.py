"""Parameter-importance penalties for strategies that hold weights near earlier ones (continual EWC, SI, MAS).

- :func:`per_item_importance`: ``mean_x reduce(d score(x) / dw)`` over images one at a time, for a
  per-image scalar ``score`` (EWC: log-likelihood of the label, squared gradients -> a diagonal
  Fisher; MAS: squared output norm, absolute gradients).
- :func:`mean_one`: an importance divided by its mean over every entry (uniform when all zero), so
  one penalty strength suits every method and encoder.
- :func:`Anchor`: ``strength / 2 * sum importance * (w - w*)^2`` towards the weights it was made at.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

Importance = dict[str, torch.Tensor]


def _trainable(module: nn.Module) -> list[tuple[str, nn.Parameter]]:
    return [(n, p) for n, p in module.named_parameters() if p.requires_grad]


def per_item_importance(backbone: nn.Module, score: Callable[[torch.Tensor, int], torch.Tensor],
                        images: torch.Tensor, squared: bool) -> Importance:
    """Mean over ``images`` of the squared (``squared``) or absolute gradient of
    ``score(features of one image, its position)`` with respect to ``backbone``'s trainable
    parameters, in eval mode (frozen BatchNorm statistics, no dropout)."""
    params = _trainable(backbone)
    total = {n: torch.zeros_like(p) for n, p in params}
    mode = backbone.training
    backbone.eval()
    try:
        for i in range(len(images)):
            value = score(backbone(images[i: i + 1]), i)
            grads = torch.autograd.grad(value, [p for _, p in params], allow_unused=True)
            for (n, _), g in zip(params, grads):
                if g is not None:
                    total[n] += g.detach().pow(2) if squared else g.detach().abs()
    finally:
        backbone.train(mode)
    return {n: v / max(1, len(images)) for n, v in total.items()}


def fisher(backbone: nn.Module, head: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor,
           labels: torch.Tensor) -> Importance:
    """Diagonal empirical Fisher: squared gradients of ``log p(label | x)``."""
    return per_item_importance(
        backbone, lambda f, i: F.log_softmax(head(f), dim=1)[0, int(labels[i])], images, squared=True)


def output_sensitivity(backbone: nn.Module, head: Callable[[torch.Tensor], torch.Tensor],
                       images: torch.Tensor) -> Importance:
    """MAS (Aljundi et al. 2018): absolute gradients of the squared L2 norm of the outputs."""
    return per_item_importance(backbone, lambda f, i: head(f).pow(2).sum(), images, squared=False)


def mean_one(importance: Importance) -> Importance:
    """``importance`` divided by its mean entry; all ones when it is all zero."""
    count = sum(v.numel() for v in importance.values())
    mean = sum(float(v.sum()) for v in importance.values()) / max(1, count)
    if mean <= 0:
        return {n: torch.ones_like(v) for n, v in importance.items()}
    return {n: v / mean for n, v in importance.items()}


class Anchor:
    """``Anchor(module, strength, importance)()``: the penalty ``strength / 2 * sum importance *
    (w - w*)^2`` with ``w*`` the module's trainable weights when the anchor was made."""

    def __init__(self, module: nn.Module, strength: float, importance: Importance) -> None:
        self.params = _trainable(module)
        self.strength = float(strength)
        self.anchor = {n: p.detach().clone() for n, p in self.params}
        self.importance = {n: importance[n].to(p.device) for n, p in self.params}

    def __call__(self) -> torch.Tensor:
        total = sum(((p - self.anchor[n]).pow(2) * self.importance[n]).sum() for n, p in self.params)
        return 0.5 * self.strength * torch.as_tensor(total)

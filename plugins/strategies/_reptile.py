"""The ``reptile`` strategy's implementation (registered in :mod:`bench_plugins.strategies.reptile`)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from bench.episodes.meta import MetaHead, adapt_option, head_fit, head_meta_train, inner_sgd, meta_state
from bench.strategies import FitContext, Fitted


def reptile_loss(params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor, lr: float, steps: int,
                 adapt: Sequence[str]) -> torch.Tensor:
    """``0.5 * ||theta - phi||^2`` with ``phi`` (inner SGD on ``(x, y)``) detached: its gradient is
    ``theta - phi``, so one plain SGD step at ``outer_lr`` is Reptile's ``theta + eps (phi - theta)``."""
    phi = inner_sgd(params, x, y, lr, steps, adapt)
    return 0.5 * sum(((v - phi[k]) ** 2).sum() for k, v in params.items())  # type: ignore[return-value]


class Reptile:
    """``meta_train``: Reptile on the head; ``fit``: inner steps from it on the support set."""

    def meta_train(self, ctx: FitContext) -> MetaHead:
        lr, steps, adapt = float(ctx.config["inner_lr"]), int(ctx.config["inner_steps"]), adapt_option(ctx.config)

        def loss(p: dict[str, torch.Tensor], xs: torch.Tensor, ys: torch.Tensor, xq: torch.Tensor,
                 yq: torch.Tensor) -> torch.Tensor:
            return reptile_loss(p, torch.cat([xs, xq]), torch.cat([ys, yq]), lr, steps, adapt)

        return head_meta_train(ctx, lambda ps: torch.optim.SGD(ps, lr=float(ctx.config["outer_lr"])), loss)

    def fit(self, ctx: FitContext) -> Fitted:
        return head_fit(ctx, meta_state(ctx, "reptile"))

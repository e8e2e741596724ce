"""The ``fomaml`` strategy's implementation (registered in :mod:`bench_plugins.strategies.fomaml`)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from bench.episodes.meta import MetaHead, adapt_option, head_fit, head_logits, head_meta_train, inner_sgd, meta_state
from bench.strategies import FitContext, Fitted


def fomaml_loss(params: dict[str, torch.Tensor], xs: torch.Tensor, ys: torch.Tensor, xq: torch.Tensor,
                yq: torch.Tensor, lr: float, steps: int, adapt: Sequence[str]) -> torch.Tensor:
    """The query loss at the adapted weights ``phi`` (inner SGD on the support set), written as
    ``theta + (phi - theta)`` with the difference detached: its gradient with respect to an adapted
    ``theta`` is the query gradient at ``phi`` (the first-order approximation), and with respect to
    a parameter not adapted, its exact gradient."""
    phi = inner_sgd(params, xs, ys, lr, steps, adapt)
    at_phi = {k: (v + (phi[k] - v.detach())) if k in adapt else v for k, v in params.items()}
    return F.cross_entropy(head_logits(at_phi, xq), yq)


class FOMAML:
    """``meta_train``: first-order MAML of the head; ``fit``: inner steps from it on the support set."""

    def meta_train(self, ctx: FitContext) -> MetaHead:
        lr, steps, adapt = float(ctx.config["inner_lr"]), int(ctx.config["inner_steps"]), adapt_option(ctx.config)
        return head_meta_train(ctx, lambda ps: torch.optim.Adam(ps, lr=float(ctx.config["meta_lr"])),
                               lambda p, xs, ys, xq, yq: fomaml_loss(p, xs, ys, xq, yq, lr, steps, adapt))

    def fit(self, ctx: FitContext) -> Fitted:
        return head_fit(ctx, meta_state(ctx, "fomaml"))

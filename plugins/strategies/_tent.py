"""The ``tent`` strategy's implementation (registered in :mod:`bench_plugins.strategies.tent`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.adaptation import TargetBatches, class_coefficients, require_target
from bench.encoders import Encoder, count_parameters
from bench.errors import UserError
from bench.probe import fit_logistic_info, l2_normalise
from bench.strategies import FitContext, Fitted
from bench.training import Classifier, head_and_backbone_groups, predict_fn, reestimate_batchnorm, train

NORM_LAYERS = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm)


def norm_layers(module: nn.Module) -> list[nn.Module]:
    """The backbone's normalisation layers that have affine parameters."""
    return [m for m in module.modules() if isinstance(m, NORM_LAYERS) and getattr(m, "weight", None) is not None]


def configure_for_tent(backbone: nn.Module) -> list[nn.Parameter]:
    """Freeze everything but normalisation affine parameters; returns those parameters."""
    for p in backbone.parameters():
        p.requires_grad_(False)
    params = []
    for m in norm_layers(backbone):
        for p in (m.weight, m.bias):
            if p is not None:
                p.requires_grad_(True)
                params.append(p)
    return params


def entropy(logits: torch.Tensor) -> torch.Tensor:
    logp = torch.log_softmax(logits, dim=1)
    return -(logp.exp() * logp).sum(dim=1)


def mean_entropy(model: nn.Module, inputs: Iterable[torch.Tensor]) -> float:
    """Mean prediction entropy over fixed input batches, in the model's current mode, no update."""
    with torch.no_grad():
        return float(torch.cat([entropy(model(x)) for x in inputs]).mean())


class NormalisedLinear(nn.Module):
    """A linear head on L2-normalised features, set to ``weight [K, D]`` and ``bias [K]``."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray) -> None:
        super().__init__()
        self.linear = nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            self.linear.weight.copy_(torch.from_numpy(weight))
            self.linear.bias.copy_(torch.from_numpy(bias))

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.linear(F.normalize(f, dim=1))


def probe_head(ctx: FitContext, encoder: Encoder, info: dict[str, Any] | None = None) -> NormalisedLinear:
    """A linear head on L2-normalised features (its iteration count and convergence go into
    ``info`` when given). Unit norm on purpose here, unlike the linear probe: the head stays fixed
    while BatchNorm statistics move to the target domain, which changes feature norms; a head on
    raw or globally scaled features collapses to one class there (docs/protocol.md)."""
    x = l2_normalise(ctx.features(ctx.labelled))
    y = np.asarray(ctx.labelled.labels)
    clf, fit_info = fit_logistic_info(x, y, float(ctx.config["C"]), 2000, ctx.seed)
    if info is not None:
        info.update(fit_info)
    weight = np.zeros((ctx.num_classes, x.shape[1]), dtype=np.float32)
    bias = np.full(ctx.num_classes, -1e4, dtype=np.float32)  # classes absent from the budget
    coef, intercept = class_coefficients(clf)
    weight[clf.classes_] = coef
    bias[clf.classes_] = intercept
    return NormalisedLinear(weight, bias)


class Tent:
    def fit(self, ctx: FitContext) -> Fitted:
        target = require_target(ctx, "tent")
        cfg = ctx.config
        encoder = ctx.load_encoder(pretrained=True)
        model = Classifier(encoder.module, encoder.feature_dim, ctx.num_classes)
        info: dict[str, Any] = {"source": cfg["source"]}
        if cfg["source"] == "linear-probe":
            if len(np.unique(ctx.labelled.labels)) < 2:
                raise UserError("tent with source=linear-probe needs at least two classes in the budget")
            model.head = probe_head(ctx, encoder, info)
        elif cfg["source"] == "finetune":
            groups = head_and_backbone_groups(model, float(cfg["lr"]), float(cfg["head_lr_mult"]))
            info["source_training"] = train(model, groups, encoder, ctx.labelled, cfg, ctx.seed, ctx.device,
                                            progress=ctx.progress)
        else:
            raise UserError(f"tent: source {cfg['source']!r} is not one of 'linear-probe', 'finetune' "
                            f"(--set tent.source=...)")
        model.to(ctx.device)
        for p in model.head.parameters():
            p.requires_grad_(False)
        params = configure_for_tent(model.backbone)
        if not params:
            raise UserError(f"tent: encoder {encoder.name!r} has no BatchNorm/GroupNorm/LayerNorm affine parameters")
        trainable, total = count_parameters(model)
        batches = TargetBatches(target, encoder, int(cfg["tent_batch_size"]), ctx.seed, ctx.device)
        opt = torch.optim.Adam(params, lr=float(cfg["tent_lr"]))
        model.train()  # BatchNorm normalises by each target batch's statistics
        # A fixed probe of target batches, scored in the same mode as the loss before and after
        # adaptation (entropies of successive training batches differ by which images they hold).
        probe = TargetBatches(target, encoder, int(cfg["tent_batch_size"]), ctx.seed + 1, ctx.device)
        probe_inputs = [probe.next() for _ in range(max(1, int(cfg["entropy_probe_batches"])))]
        info["entropy_before"] = round(mean_entropy(model, probe_inputs), 5)
        entropies = []
        steps = int(cfg["tent_steps"])
        for step in range(steps):
            loss = entropy(model(batches.next())).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            entropies.append(float(loss.detach()))
            if step % 10 == 0 or step == steps - 1:
                ctx.progress(f"tent step {step + 1}/{steps} entropy {entropies[-1]:.3f}")
        info["entropy_after"] = round(mean_entropy(model, probe_inputs), 5)
        # then cumulative BatchNorm statistics over target batches, for eval-mode prediction
        n_stats = int(cfg["stat_batches"])
        info["stat_batches"] = reestimate_batchnorm(model, (batches.next() for _ in range(n_stats)))
        model.eval()
        if entropies:
            info["entropy_first"] = round(float(np.mean(entropies[:5])), 5)
            info["entropy_last"] = round(float(np.mean(entropies[-5:])), 5)
        adapted = encoder.with_module(model.backbone)
        return Fitted(predict=predict_fn(model, encoder, ctx.device), trainable_params=trainable,
                      total_params=total, encoder=adapted, info=info)

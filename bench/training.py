"""The supervised training recipe every classifier strategy shares (scratch, finetune, LoRA, adapters, ...).

:func:`train` runs on the one optimisation loop, :func:`bench.loop.run_steps` (which also serves
domain adaptation, the continual strategies and Tent), with its batch source and loss as hooks.

Step-based, not epoch-based: with 10 images an "epoch" is one step, so a cell trains for
``max(epochs * ceil(n / batch), min_steps)`` steps (capped by ``max_steps``), batch
``min(batch_size, n)``, AdamW with per-group learning rates, linear warm-up then cosine decay.
Scratch and fine-tuning use the same schedule, so their comparison is paired and fair.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.accel import autocast, is_oom, maybe_compile, run_info, to_device, use_channels_last, with_oom_backoff
from bench.encoders import Encoder, count_parameters, encode, preprocess
from bench.loop import cosine_lambda, prepare, run_steps, set_batchnorm_eval, step_done
from bench.recipes import RECIPE_DEFAULTS
from bench.strategies import Fitted
from bench.tasks import Split

__all__ = ["RECIPE_DEFAULTS", "Classifier", "augment", "autocast", "finetune_groups", "fit_classifier",
           "head_and_backbone_groups", "is_oom", "layer_decay_groups", "maybe_compile", "num_steps", "predict_fn",
           "recalibrate_batchnorm", "reestimate_batchnorm", "run_steps", "step_done", "to_device", "train",
           "use_channels_last", "with_oom_backoff"]


def num_steps(n: int, config: dict[str, Any]) -> int:
    batch = min(int(config["batch_size"]), n)
    steps = max(int(config["epochs"]) * math.ceil(n / batch), int(config["min_steps"]))
    if config.get("max_steps"):
        steps = min(steps, int(config["max_steps"]))
    return steps


class Classifier(nn.Module):
    """Backbone features -> linear head."""

    def __init__(self, backbone: nn.Module, feature_dim: int, num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(feature_dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def augment(x: torch.Tensor, kind: str | None, gen: torch.Generator, encoder: Encoder) -> torch.Tensor:
    """Augment a preprocessed batch as if in pixel space, before normalisation.

    ``shift``: translate each image by up to 1/16 of its size; the uncovered border is black in
    pixel space (0 before the encoder's mean/std, i.e. ``-mean / std`` after), the background of
    digit-like images and the usual padding of random crops. ``none``: unchanged.
    """
    if kind in ("none", "", None):
        return x
    if kind == "shift":
        b, c, h, w = x.shape
        pad = max(1, h // 16)
        fill = -torch.tensor(encoder.mean, dtype=x.dtype) / torch.tensor(encoder.std, dtype=x.dtype)
        padded = fill.view(1, c, 1, 1).expand(b, c, h + 2 * pad, w + 2 * pad).clone().to(x.device)
        padded[:, :, pad : pad + h, pad : pad + w] = x
        dx = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
        dy = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
        return torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(b)])
    raise ValueError(f"unknown augmentation {kind!r}; use 'shift' or 'none'")


def train(
    model: nn.Module,
    param_groups: list[dict[str, Any]],
    encoder: Encoder,
    split: Split,
    config: dict[str, Any],
    seed: int,
    device: str = "cpu",
    extra_loss: Callable[[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor, int], torch.Tensor] | None = None,
    sample_weights: np.ndarray | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train ``model`` (images -> logits) on the labelled ``split``.

    ``param_groups`` are AdamW groups, each with its own ``lr`` (e.g. head at ``head_lr_mult``
    times the backbone's). ``extra_loss(model, x, y, logits, step)`` adds a term (DANN, CORAL,
    L2-SP, EWC). ``sample_weights`` reweights the loss per item (importance weighting).
    Returns training info (steps, final loss).
    """
    n = len(split)
    steps = num_steps(n, config)
    batch = min(int(config["batch_size"]), n)
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    groups = [g for g in param_groups if any(p.requires_grad for p in g["params"])]
    for g in groups:
        g["params"] = [p for p in g["params"] if p.requires_grad]
        g.setdefault("initial_lr", g["lr"])
    opt = torch.optim.AdamW(groups, lr=float(config["lr"]), weight_decay=float(config["weight_decay"]))
    warmup = int(round(steps * float(config["warmup_frac"])))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, cosine_lambda(steps, warmup))
    labels = torch.as_tensor(np.asarray(split.labels), dtype=torch.long)
    weights = None if sample_weights is None else torch.as_tensor(sample_weights, dtype=torch.float32)
    # Tiny budgets: preprocess the labelled set once; large ones: per batch.
    cached = preprocess(split.images(range(n)), encoder) if n <= 2048 else None
    fwd, channels_last = prepare(model, device)  # fwd shares model's parameters
    order = torch.randperm(n, generator=gen)
    cursor = 0

    def draw(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        nonlocal order, cursor
        model.train()
        if config.get("freeze_bn", True):
            set_batchnorm_eval(model)
        if cursor + batch > n:
            order, cursor = torch.randperm(n, generator=gen), 0
        idx = order[cursor : cursor + batch]
        cursor += batch
        x = cached[idx] if cached is not None else preprocess(split.images(idx.tolist()), encoder)
        return idx, augment(x, config.get("augment", "none"), gen, encoder)

    def loss_of(data: tuple[torch.Tensor, torch.Tensor], step: int, part: slice) -> torch.Tensor:
        idx, x = data
        xs, ys = to_device(x[part], device, channels_last), labels[idx[part]].to(device)
        logits = fwd(xs)
        if weights is not None:
            per_item = F.cross_entropy(logits.float(), ys, reduction="none")
            loss = (per_item * weights[idx[part]].to(device)).mean()
        else:
            loss = F.cross_entropy(logits.float(), ys)
        if extra_loss is not None:
            loss = loss + extra_loss(model, xs, ys, logits, step)
        return loss

    result = run_steps([opt], steps, draw, loss_of, device=device, scheduler=sched, progress=progress, items=batch)
    loss_value, micro = result.final_loss, result.micro
    recalibrated = False
    if not config.get("freeze_bn", True):
        recalibrated = recalibrate_batchnorm(model, cached if cached is not None else split, encoder, device)
    model.eval()
    info = {"steps": steps, "batch_size": batch, "final_loss": round(loss_value, 5), "bn_recalibrated": recalibrated}
    return info | run_info(fwd is not model, micro, batch)


@torch.no_grad()
def reestimate_batchnorm(model: nn.Module, batches: Iterable[torch.Tensor]) -> int:
    """Replace BatchNorm running statistics by their cumulative average over ``batches`` (model
    inputs, on the model's device), taken in train mode with the current weights; returns how many
    batches were used (0, and nothing read or changed, when the model has no BatchNorm).

    Exponential running averages mix statistics of earlier, very different weights (or of another
    domain); one cumulative pass with the final weights removes the mismatch.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not bns:
        return 0
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    model.train()
    used = 0
    for x in batches:
        model(x)
        used += 1
    for m, mom in zip(bns, saved):
        m.momentum = mom
    return used


def recalibrate_batchnorm(model: nn.Module, data: torch.Tensor | Split, encoder: Encoder, device: str) -> bool:
    """Re-estimate BatchNorm running statistics of the final weights on the labelled set.

    With BatchNorm training and few steps, eval-mode predictions can collapse to one class while
    train-mode ones are fine (numbers in docs/tasks.md, "scratch"); see :func:`reestimate_batchnorm`.
    """
    n = len(data)
    # near-equal chunks of at most 256: the cumulative average weights every chunk the same
    chunk = -(-n // -(-n // 256)) if n else 1

    def chunks() -> Iterator[torch.Tensor]:
        for start in range(0, n, chunk):
            idx = list(range(start, min(start + chunk, n)))
            x = data[idx] if isinstance(data, torch.Tensor) else preprocess(data.images(idx), encoder)
            yield x.to(device)

    return reestimate_batchnorm(model, chunks()) > 0


def predict_fn(model: nn.Module, encoder: Encoder, device: str = "cpu",
               batch_size: int = 256) -> Callable[[Split], np.ndarray]:
    """A ``predict(split) -> class indices`` function for an images -> logits model."""

    def predict(split: Split) -> np.ndarray:
        logits = encode(encoder, split.images, len(split), device=device, batch_size=batch_size, module=model)
        return logits.argmax(axis=1)

    return predict


def head_and_backbone_groups(
    model: Classifier, lr: float, head_lr_mult: float, backbone_params: Iterable[nn.Parameter] | None = None
) -> list[dict[str, Any]]:
    """AdamW groups: the backbone at ``lr``, the new head at ``lr * head_lr_mult``."""
    backbone = list(backbone_params) if backbone_params is not None else list(model.backbone.parameters())
    return [
        {"params": backbone, "lr": lr, "name": "backbone"},
        {"params": list(model.head.parameters()), "lr": lr * head_lr_mult, "name": "head"},
    ]


def finetune_groups(model: Classifier, encoder: Encoder, config: dict[str, Any]) -> list[dict[str, Any]]:
    """The fine-tuning parameter groups a config asks for: layer-wise decay when ``layer_decay``
    is set, else backbone at ``lr`` and head at ``lr * head_lr_mult``."""
    lr, mult = float(config["lr"]), float(config["head_lr_mult"])
    decay = config.get("layer_decay")
    if decay:
        return layer_decay_groups(model, encoder, lr, mult, float(decay))
    return head_and_backbone_groups(model, lr, mult)


def layer_decay_groups(model: Classifier, encoder: Encoder, lr: float, head_lr_mult: float,
                       decay: float) -> list[dict[str, Any]]:
    """Layer-wise lr decay from the encoder's ordered ``layer_groups``: group ``i`` of ``n``
    (input side first) trains at ``lr * decay**(n - 1 - i)``; parameters in no group (if any) get the
    smallest rate; the head gets ``lr * head_lr_mult``."""
    named = dict(model.backbone.named_parameters())
    groups: list[dict[str, Any]] = []
    assigned: set[str] = set()
    n = len(encoder.layer_groups)
    for i, prefixes in enumerate(encoder.layer_groups):
        names = [k for k in named if k not in assigned and any(k == p or k.startswith(p + ".") for p in prefixes)]
        assigned.update(names)
        if names:
            groups.append({"params": [named[k] for k in names], "lr": lr * decay ** (n - 1 - i), "name": f"layer{i}"})
    rest = [named[k] for k in named if k not in assigned]
    if rest:
        groups.insert(0, {"params": rest, "lr": lr * decay ** max(n, 1), "name": "unassigned"})
    groups.append({"params": list(model.head.parameters()), "lr": lr * head_lr_mult, "name": "head"})
    return groups


def fit_classifier(ctx: Any, encoder: Encoder, model: Classifier, param_groups: list[dict[str, Any]],
                   **train_kwargs: Any) -> Fitted:
    """Train ``model`` on ``ctx.labelled`` with ``ctx.config`` and wrap it as a :class:`Fitted`
    (parameter counts taken after freezing decisions, before training)."""
    trainable, total = count_parameters(model)
    info = train(model, param_groups, encoder, ctx.labelled, ctx.config, ctx.seed, ctx.device,
                 progress=ctx.progress, **train_kwargs)
    adapted = encoder.with_module(model.backbone)
    return Fitted(predict=predict_fn(model, encoder, ctx.device), trainable_params=trainable,
                  total_params=total, encoder=adapted, info=info)

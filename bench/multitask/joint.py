"""Joint training of one shared encoder and a head per task, on the one loop (:func:`bench.loop.run_steps`).

The fine-tuning recipe (:mod:`bench.training`), applied to T tasks at once:

- steps: the single-task rule for each task's budget, the largest of them
  (``max_i max(epochs * ceil(n_i / batch), min_steps)``, capped by ``max_steps``: the record says
  when the cap cut a task's rule short);
- every step draws a batch of ``min(batch_size, n_i)`` items from *every* task (its own seeded
  order, as :func:`bench.training.train` draws), one forward of the shared encoder over all of them;
- AdamW, the encoder at ``lr`` and every head at ``lr * head_lr_mult``, BatchNorm statistics frozen,
  warm-up then cosine decay; the weighting's own parameters (:meth:`Weighting.parameters`) train
  with Adam at ``weight_lr``, constant;
- the step's objective is the weighting's :meth:`~bench.multitask.spec.Weighting.combine` of the
  T cross-entropy losses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.accel import run_info, to_device
from bench.encoders import Encoder, preprocess
from bench.loop import cosine_lambda, prepare, run_steps, set_batchnorm_eval
from bench.multitask.spec import Weighting
from bench.tasks import Split
from bench.training import augment, num_steps, predict_fn

#: How many task-weight snapshots the record keeps (evenly spaced steps, the last included).
TRAJECTORY_POINTS = 10


class JointModel(nn.Module):
    """A shared backbone and one linear head per task."""

    def __init__(self, backbone: nn.Module, feature_dim: int, num_classes: Sequence[int]) -> None:
        super().__init__()
        self.backbone = backbone
        self.heads = nn.ModuleList(nn.Linear(feature_dim, k) for k in num_classes)

    def forward(self, x: torch.Tensor, task: int = 0) -> torch.Tensor:
        return self.heads[task](self.backbone(x))

    def task_model(self, task: int) -> nn.Module:
        """Images -> task ``task``'s logits (shares this model's parameters)."""
        return nn.Sequential(self.backbone, self.heads[task])


def last_shared_weight(backbone: nn.Module) -> torch.Tensor:
    """The shared encoder's last trainable weight matrix or kernel (GradNorm's layer): the last
    parameter, in registration order, with two or more dimensions."""
    weights = [p for p in backbone.parameters() if p.requires_grad and p.ndim >= 2]
    if not weights:
        raise ValueError("the shared encoder has no trainable weight matrix")
    return weights[-1]


def joint_steps(sizes: Sequence[int], config: dict[str, Any]) -> tuple[int, bool]:
    """The joint run's steps (the largest single-task rule) and whether ``max_steps`` capped it."""
    steps = max(num_steps(n, config) for n in sizes)
    uncapped = max(num_steps(n, {**config, "max_steps": None}) for n in sizes)
    return steps, uncapped > steps


def train_joint(model: JointModel, encoder: Encoder, splits: Sequence[Split], weighting: Weighting,
                config: dict[str, Any], seed: int, device: str = "cpu",
                progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train ``model`` on the labelled ``splits`` (one per task, in head order); returns training
    info: steps, whether they were capped, final per-task losses and the task-weight trajectory."""
    sizes = [len(s) for s in splits]
    steps, capped = joint_steps(sizes, config)
    batches = [min(int(config["batch_size"]), n) for n in sizes]
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    lr, mult = float(config["lr"]), float(config["head_lr_mult"])
    shared = [p for p in model.backbone.parameters() if p.requires_grad]
    groups = [{"params": shared, "lr": lr, "initial_lr": lr, "name": "backbone"}]
    groups += [{"params": list(h.parameters()), "lr": lr * mult, "initial_lr": lr * mult, "name": f"head{i}"}
               for i, h in enumerate(model.heads)]
    opt = torch.optim.AdamW(groups, lr=lr, weight_decay=float(config["weight_decay"]))
    warmup = int(round(steps * float(config["warmup_frac"])))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, cosine_lambda(steps, warmup))
    optimizers: list[torch.optim.Optimizer] = [opt]
    own = list(weighting.parameters())
    if own:
        optimizers.append(torch.optim.Adam(own, lr=float(config["weight_lr"])))
    model.to(device)
    fwd, channels_last = prepare(model.backbone, device)  # fwd shares the backbone's parameters
    last = last_shared_weight(model.backbone)
    labels = [torch.as_tensor(np.asarray(s.labels), dtype=torch.long) for s in splits]
    cached = [preprocess(s.images(range(len(s))), encoder) if len(s) <= 2048 else None for s in splits]
    orders = [torch.randperm(n, generator=gen) for n in sizes]
    cursors = [0] * len(splits)
    task_losses: list[float] = [float("nan")] * len(splits)
    every = max(1, steps // TRAJECTORY_POINTS)
    trajectory: list[dict[str, Any]] = [{"step": 0, "weights": _rounded(weighting.weights())}]

    def draw(step: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        model.train()
        if config.get("freeze_bn", True):
            set_batchnorm_eval(model)
        out = []
        for t, split in enumerate(splits):
            if cursors[t] + batches[t] > sizes[t]:
                orders[t], cursors[t] = torch.randperm(sizes[t], generator=gen), 0
            idx = orders[t][cursors[t]: cursors[t] + batches[t]]
            cursors[t] += batches[t]
            pre = cached[t]
            x = pre[idx] if pre is not None else preprocess(split.images(idx.tolist()), encoder)
            out.append((idx, augment(x, config.get("augment", "none"), gen, encoder)))
        return out

    def loss_of(batch: list[tuple[torch.Tensor, torch.Tensor]], step: int, part: slice) -> torch.Tensor:
        feats = fwd(to_device(torch.cat([x for _, x in batch]), device, channels_last))
        losses, start = [], 0
        for t, (idx, x) in enumerate(batch):
            logits = model.heads[t](feats[start: start + len(x)])
            start += len(x)
            losses.append(F.cross_entropy(logits.float(), labels[t][idx].to(device)))
        for t, value in enumerate(losses):
            task_losses[t] = float(value.detach())
        return weighting.combine(losses, shared, last)

    def after_step(step: int) -> None:
        weighting.after_step()
        if (step + 1) % every == 0 or step == steps - 1:
            trajectory.append({"step": step + 1, "weights": _rounded(weighting.weights())})

    result = run_steps(optimizers, steps, draw, loss_of, device=device, scheduler=sched, after_step=after_step,
                       progress=progress)
    model.eval()
    info = {"steps": steps, "capped": capped, "batch_sizes": batches, "final_loss": round(result.final_loss, 5),
            "task_losses": [round(v, 5) for v in task_losses],
            "task_weights": _rounded(weighting.weights()), "weight_trajectory": trajectory}
    return info | run_info(fwd is not model.backbone, sum(batches), sum(batches))


def predict_task(model: JointModel, encoder: Encoder, task: int, device: str) -> Callable[[Split], np.ndarray]:
    """``predict(split) -> class indices`` of task ``task``'s head."""
    return predict_fn(model.task_model(task), encoder, device)


def _rounded(values: Sequence[float]) -> list[float]:
    return [round(float(v), 6) for v in values]

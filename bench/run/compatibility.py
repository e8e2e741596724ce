"""What one cell of the grid needs, torch-free: whether strategy, encoder and task fit, the input
resolution, and the ``--weights`` file of its encoder."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench.specs import EncoderMeta, StrategySpec
from bench.tasks import TaskData

#: Smallest input side ``--resolution auto`` gives a flexible-resolution encoder on tiny images.
AUTO_MIN_RESOLUTION = 64


def incompatibility(strategy: StrategySpec, encoder_meta: Mapping[str, Any], encoder: str, task: TaskData | None,
                    config: dict[str, Any] | None = None) -> str | None:
    """Why ``strategy`` (with ``config``) cannot run with this encoder/task, or None."""
    meta = EncoderMeta.of(encoder_meta)
    trainable = meta.trainable
    needs = list(strategy.requires)
    if (config or {}).get("head_init") == "zero-shot":
        needs.append("text_tower")
    for need in needs:
        if need == "trainable" and not trainable:
            return f"{strategy.name} trains the encoder, and {encoder} has no trainable parameters"
        if need == "pretrained" and not trainable:
            return f"{strategy.name} needs pre-trained weights, and {encoder} has none"
        if need == "vit" and not meta.is_vit:
            return f"{strategy.name} needs a ViT encoder; {encoder} is not one"
        if need == "text_tower" and not meta.has_text_tower:
            return f"{strategy.name} needs an encoder with a text tower (CLIP-like); {encoder} has none"
        if need == "unlabelled_target" and task is not None and task.target_train is None:
            return f"{strategy.name} needs unlabelled target-domain data; task {task.name} is not a shifted task"
    return None



def native_size(task: TaskData) -> int | None:
    """The largest side among the first image of each split (tasks that mix sources, such as
    ``mnist5k->digits`` with 28 and 8 px images, declare no single native size)."""
    sides = [max(split.images([0])[0].shape[:2]) for split in task.splits().values() if len(split)]
    return max(sides) if sides else None


def resolution_for(resolution: int | str, meta: Mapping[str, Any], task: TaskData) -> int | None:
    """``--resolution N`` for every encoder; ``auto``: the encoder's own input size, except that
    flexible-resolution encoders (CNNs) on tasks of small images get the smallest multiple of 32
    that holds the native size, at least 64, instead of being blown up to 224 (on CPUs 224 px
    costs ~12x the compute of 64 px; measured: ImageNet EfficientNet-Lite0 features at 32 px
    lose most of their transfer, at 64 px they keep most of it)."""
    if resolution != "auto":
        return int(resolution)
    meta = EncoderMeta.of(meta)
    native = task.native_size or native_size(task)
    if meta.flexible_resolution and native:
        size = max(AUTO_MIN_RESOLUTION, -(-native // 32) * 32)  # ceil to a multiple of 32
        return min(size, int(meta.input_size or size))
    return None


def weights_for(weights: Mapping[str, str], encoder: str) -> str | None:
    """The ``--weights`` file for ``NAME:VARIANT`` (given for the full name or the bare name)."""
    return weights.get(encoder) or weights.get(encoder.split(":")[0])

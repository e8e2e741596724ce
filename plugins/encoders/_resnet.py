"""Loader of the ``resnet`` family (registered in :mod:`bench_plugins.encoders.resnet`): timm's
ResNets through the shared timm builder, torchvision's ResNet-50 through the core weight helpers."""

from __future__ import annotations

from typing import Any

import torch
import torchvision

from bench.encoders import Encoder
from bench.specs import EncoderRequest
from bench.timm_encoder import display_name, pick_variant, timm_encoder
from bench.weights import Resolved, load_checkpoint, load_into, resolve_source
from bench_plugins.encoders.resnet import DEFAULT_VARIANT, TIMM_VARIANTS, TV_WEIGHTS_TAG, VARIANTS, weights_source

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _layer_groups(model: Any) -> list[list[str]]:
    return [["conv1", "bn1"], ["layer1"], ["layer2"], ["layer3"], ["layer4"]]


def _stages(model: Any) -> list[str]:
    return ["layer1", "layer2", "layer3", "layer4"]


def _lora_targets(model: Any) -> list[str]:
    """LoRA on the block convolutions (peft wraps ``nn.Conv2d``): conv1/conv2, plus conv3 in
    bottleneck ResNets (50 and deeper)."""
    return ["conv1", "conv2"] + (["conv3"] if hasattr(model.layer1[0], "conv3") else [])


def load(request: EncoderRequest) -> Encoder:
    display = display_name("resnet", request)
    if (request.variant or DEFAULT_VARIANT) == "tv-resnet50":
        return _load_torchvision(request, display)
    _, (arch, _meta) = pick_variant("resnet", TIMM_VARIANTS, request, DEFAULT_VARIANT, known=VARIANTS)
    return timm_encoder(
        "resnet", arch, request, input_size=224, is_vit=False, pretraining_data=("imagenet-1k",),
        license="apache-2.0", layer_groups_fn=_layer_groups, lora_targets=_lora_targets,
        adapter_targets_fn=_stages, display_name=display, source=weights_source(request),
    )


def _load_torchvision(request: EncoderRequest, display: str) -> Encoder:
    """torchvision's ResNet-50 with ``weights="DEFAULT"`` (IMAGENET1K_V2), resolved through our
    caches so that offline runs fail fast instead of hanging in ``load_state_dict_from_url``."""
    resolved = weights = None
    if request.pretrained:
        src = weights_source(request)
        assert src is not None
        resolved = Resolved(request.weights, "file") if request.weights else resolve_source(src)
        weights = request.weights or TV_WEIGHTS_TAG
    model = torchvision.models.resnet50(weights=None)
    if resolved is not None:
        load_into(model, load_checkpoint(resolved.path), source=f"{resolved.path!r} for encoder {display!r}",
                  ignore=("fc.",))
    model.fc = torch.nn.Identity()  # pooled 2048-d features
    return Encoder(
        name=display,
        module=model,
        feature_dim=2048,
        input_size=int(request.resolution or 224),
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        interpolation="bilinear",  # the weights' own transforms: resize 232 bilinear, crop 224
        variant=request.variant,
        pretrained=bool(request.pretrained),
        pretraining_data=("imagenet-1k",) if request.pretrained else (),
        weights=weights,
        license="bsd-3-clause",
        layer_groups=_layer_groups(model),
        lora_targets=_lora_targets(model),
        adapter_targets=_stages(model),
        is_vit=False,
        extra={"arch": "torchvision.models.resnet50", "library": "torchvision"},
        weights_source=resolved.record() if resolved is not None else None,
    )

"""Loader of the ``dinov2`` family (registered in :mod:`bench_plugins.encoders.dinov2`): a timm DINOv2 ViT
through the core builder (timm's checkpoint filter also reads Meta's original ``*_pretrain.pth``)."""

from __future__ import annotations

from bench.encoders import Encoder
from bench.specs import EncoderRequest
from bench.timm_encoder import pick_variant, timm_vit_encoder
from bench_plugins.encoders.dinov2 import DEFAULT_VARIANT, INPUT_SIZE, TIMM_VARIANTS, weights_source


def load(request: EncoderRequest) -> Encoder:
    _, (arch, _meta) = pick_variant("dinov2", TIMM_VARIANTS, request, DEFAULT_VARIANT)
    return timm_vit_encoder("dinov2", arch, request, input_size=INPUT_SIZE, pretraining_data=("lvd-142m",),
                            source=weights_source(request))

"""Loader of the ``vit`` family (registered in :mod:`bench_plugins.encoders.vit`): timm ViTs via the core builder."""

from __future__ import annotations

from bench.encoders import Encoder
from bench.specs import EncoderRequest
from bench.timm_encoder import pick_variant, timm_vit_encoder
from bench_plugins.encoders.vit import DEFAULT_VARIANT, INPUT_SIZE, TIMM_VARIANTS, weights_source


def load(request: EncoderRequest) -> Encoder:
    _, (arch, meta) = pick_variant("vit", TIMM_VARIANTS, request, DEFAULT_VARIANT)
    return timm_vit_encoder("vit", arch, request, input_size=INPUT_SIZE, pretraining_data=meta["pretraining_data"],
                            source=weights_source(request))

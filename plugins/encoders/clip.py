"""CLIP image-text models from open_clip, with the text tower for zero-shot classification.

Default ``clip`` = ``clip:ViT-B-32/laion2b_s34b_b79k``. Any open_clip ``MODEL/PRETRAINED`` pair is
a variant (``clip:ViT-L-14/openai``, ``clip:ViT-B-16/datacomp_xl_s13b_b90k``); ``bench list
encoders`` shows the common ones. Features are the *projected* image embedding (the space the
text embeddings live in), not L2-normalised; ``encode_text`` returns L2-normalised text
embeddings in the same space.

Weights: ``--weights clip=PATH`` takes an open_clip checkpoint (a state dict of the whole model,
image and text towers, as ``open_clip_model.safetensors`` / ``open_clip_pytorch_model.bin`` or
an open_clip training checkpoint); otherwise the Hugging Face cache, then a download. OpenAI's
original TorchScript ``.pt`` archives cannot be read with ``weights_only=True``: the ``openai``
tags resolve to open_clip's re-saved copies on the Hugging Face hub instead.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from pathlib import Path
from typing import Any

import bench
from bench.specs import EncoderMeta, EncoderSpec

DEFAULT_VARIANT = "ViT-B-32/laion2b_s34b_b79k"

#: Declared pretraining data per open_clip tag prefix (longest prefix wins).
TAG_DATA = {
    "openai": "openai-wit-400m",
    "laion400m": "laion-400m",
    "laion2b": "laion-2b",
    "laion5b": "laion-5b",
    "laion_aesthetic": "laion-aesthetic",
    "datacomp_xl": "datacomp-1b",
    "datacomp_l": "datacomp-l",
    "datacomp_m": "datacomp-m",
    "datacomp_s": "datacomp-s",
    "commonpool": "commonpool",
    "metaclip_400m": "metaclip-400m",
    "metaclip_fullcc": "metaclip-2.5b",
    "metaclip": "metaclip",
    "dfn2b": "dfn-2b",
    "dfn5b": "dfn-5b",
    "webli": "webli",
    "yfcc15m": "yfcc-15m",
    "cc12m": "cc-12m",
    "mergedc": "merged-1b",
}

# Architectures: (visual params, text params, embed dim, patch size or None for ResNets).
_ARCH = {
    "ViT-B-32": (87_849_216, 63_428_097, 512, 32),
    "ViT-B-16": (86_192_640, 63_428_097, 512, 16),
    "ViT-L-14": (303_966_208, 123_650_305, 768, 14),
    "ViT-H-14": (632_076_800, 354_032_641, 1024, 14),
    "RN50": (38_316_896, 63_690_241, 1024, None),
}
_LISTED = [
    "ViT-B-32/laion2b_s34b_b79k", "ViT-B-32/openai", "ViT-B-32/laion400m_e32", "ViT-B-32/datacomp_xl_s13b_b90k",
    "ViT-B-16/openai", "ViT-B-16/laion2b_s34b_b88k", "ViT-B-16/datacomp_xl_s13b_b90k",
    "ViT-L-14/openai", "ViT-L-14/laion2b_s32b_b82k", "ViT-L-14/datacomp_xl_s13b_b90k",
    "ViT-H-14/laion2b_s32b_b79k", "RN50/openai",
]


def pretraining_data_of(tag: str | None) -> list[str]:
    """What an open_clip pretrained tag was trained on (``laion2b_s34b_b79k`` -> ``laion-2b``)."""
    if not tag:
        return []
    for prefix in sorted(TAG_DATA, key=len, reverse=True):
        if tag.startswith(prefix):
            return [TAG_DATA[prefix]]
    return [f"open_clip:{tag}"]


def parse_variant(variant: str | None) -> tuple[str, str | None]:
    model, _, tag = (variant or DEFAULT_VARIANT).partition("/")
    return model, (tag or None)


def _listed_metadata(variant: str) -> dict[str, Any]:
    model, tag = parse_variant(variant)
    visual, text, dim, patch = _ARCH[model]
    return {
        "params": visual,
        "text_params": text,
        "feature_dim": dim,
        "patch_size": patch,
        "is_vit": patch is not None,
        "pretraining_data": pretraining_data_of(tag),
        "weights": f"open_clip {variant}",
    }


VARIANTS = {v: _listed_metadata(v) for v in _LISTED}


def _config_metadata(model: str) -> dict[str, Any]:
    """Feature dim / patch size of an unlisted open_clip model, read from open_clip's bundled JSON
    config without importing open_clip (``bench list`` stays fast)."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(next(iter(spec.submodule_search_locations))) / "model_configs" / f"{model}.json"
    try:
        cfg = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    vision = cfg.get("vision_cfg", {})
    patch = vision.get("patch_size") if not isinstance(vision.get("layers"), list) else None
    out: dict[str, Any] = {"feature_dim": cfg.get("embed_dim"), "patch_size": patch, "is_vit": patch is not None}
    if isinstance(vision.get("image_size"), int):
        out["input_size"] = vision["image_size"]
    return {k: v for k, v in out.items() if v is not None or k == "patch_size"}


class OpenClipSpec(EncoderSpec):
    """An encoder spec whose unlisted variants (any open_clip ``MODEL/TAG``) still get honest
    metadata: pretraining data from the tag, dimensions from open_clip's config file."""

    def variant_metadata(self, variant: str | None) -> EncoderMeta:
        merged = super().variant_metadata(variant)
        if variant is None or variant in self.variants:
            return merged
        model, tag = parse_variant(variant)
        meta = {k: v for k, v in merged.items() if k not in ("params", "text_params")}  # unknown unbuilt
        meta.update(_config_metadata(model))
        meta["pretraining_data"] = pretraining_data_of(tag)
        meta["weights"] = f"open_clip {variant}" if tag else None
        return EncoderMeta.of(meta, f"encoder {self.name!r} variant {variant!r}")


@bench.hookimpl
def bench_register_encoders():
    return [
        OpenClipSpec(
            name="clip",
            description="CLIP (open_clip) image tower + text tower for zero-shot; any MODEL/PRETRAINED tag as variant",
            loader="bench_plugins.encoders._clip:load",
            weights_resolver="bench_plugins.encoders._clip:weights_source",
            pretraining_data=tuple(pretraining_data_of(parse_variant(DEFAULT_VARIANT)[1])),
            variants=VARIANTS,
            default_variant=DEFAULT_VARIANT,
            metadata={
                **VARIANTS[DEFAULT_VARIANT],
                "input_size": 224,
                "has_text_tower": True,
                "flexible_resolution": False,
                "open_variants": True,
                "license": "mit",
            },
        )
    ]

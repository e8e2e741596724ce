"""Vision Transformers from timm (AugReg weights: ImageNet-21k pre-training, ImageNet-1k fine-tune).

Default ``vit`` = ``vit:vitb16`` = timm ``vit_base_patch16_224.augreg2_in21k_ft_in1k``. Features
are the final-norm CLS token (768-d for ViT-B). ``--resolution N`` builds the model at N (a
multiple of the patch size) and resamples the checkpoint's position embeddings.
"""

from __future__ import annotations

import bench
from bench.specs import EncoderRequest, EncoderSpec
from bench.weights import WeightSource, timm_hub_source

IN21K_FT_IN1K = ["imagenet-21k", "imagenet-1k"]

#: variant -> (timm name with tag, metadata overrides). Parameter counts exclude the classifier.
TIMM_VARIANTS = {
    "vitti16": ("vit_tiny_patch16_224.augreg_in21k_ft_in1k",
                {"params": 5_524_416, "feature_dim": 192, "pretraining_data": IN21K_FT_IN1K}),
    "vits16": ("vit_small_patch16_224.augreg_in21k_ft_in1k",
               {"params": 21_665_664, "feature_dim": 384, "pretraining_data": IN21K_FT_IN1K}),
    "vitb16": ("vit_base_patch16_224.augreg2_in21k_ft_in1k",
               {"params": 85_798_656, "feature_dim": 768, "pretraining_data": IN21K_FT_IN1K}),
    "vitb16-in21k": ("vit_base_patch16_224.augreg_in21k",
                     {"params": 85_798_656, "feature_dim": 768, "pretraining_data": ["imagenet-21k"]}),
    "vitl16": ("vit_large_patch16_224.augreg_in21k_ft_in1k",
               {"params": 303_301_632, "feature_dim": 1024, "pretraining_data": IN21K_FT_IN1K}),
}
VARIANTS = {k: {**meta, "weights": f"timm/{arch}"} for k, (arch, meta) in TIMM_VARIANTS.items()}
DEFAULT_VARIANT = "vitb16"
INPUT_SIZE = 224


def weights_source(request: EncoderRequest) -> WeightSource | None:
    """Where a variant's weights live: timm's hub repository (timm's other URLs are .npz files from
    big_vision, which the hub copies supersede), torch-free."""
    variant = request.variant or DEFAULT_VARIANT
    if variant not in TIMM_VARIANTS:
        return None  # the loader names the known variants
    return timm_hub_source(f"vit:{request.variant}" if request.variant else "vit", TIMM_VARIANTS[variant][0])


@bench.hookimpl
def bench_register_encoders():
    return [
        EncoderSpec(
            name="vit",
            description="ViT (timm AugReg: ImageNet-21k pre-trained, ImageNet-1k fine-tuned); "
            "vitti16/vits16/vitb16/vitl16",
            loader="bench_plugins.encoders._vit:load",
            weights_resolver="bench_plugins.encoders.vit:weights_source",
            pretraining_data=tuple(IN21K_FT_IN1K),
            variants=VARIANTS,
            default_variant=DEFAULT_VARIANT,
            metadata={
                **VARIANTS[DEFAULT_VARIANT],
                "input_size": INPUT_SIZE,
                "is_vit": True,
                "patch_size": 16,
                "has_text_tower": False,
                "flexible_resolution": False,
                "license": "apache-2.0",
            },
        )
    ]

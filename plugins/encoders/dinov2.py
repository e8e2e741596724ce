"""DINOv2 self-supervised ViTs (LVD-142M) from timm: ``vit_{small,base,large,giant}_patch14_dinov2``.

Default ``dinov2`` = ``dinov2:vits14``. Features are the final-norm CLS token, as timm gives it
with ``num_classes=0`` (384-d for ViT-S/14).

Input size: the weights' config says 518 (the short high-resolution phase at the end of DINOv2's
training), but the DINOv2 paper's linear and k-NN evaluations use 224 and 518 costs 5.4x the
tokens, so the default here is 224; ``--resolution N`` (a multiple of 14) picks another size and
the position embeddings are resampled from the checkpoint.
"""

from __future__ import annotations

import bench
from bench.specs import EncoderRequest, EncoderSpec
from bench.weights import WeightSource, timm_hub_source

#: variant -> (timm name with tag, metadata overrides). Parameter counts exclude any classifier.
TIMM_VARIANTS = {
    "vits14": ("vit_small_patch14_dinov2.lvd142m", {"params": 22_056_192, "feature_dim": 384}),
    "vitb14": ("vit_base_patch14_dinov2.lvd142m", {"params": 86_579_712, "feature_dim": 768}),
    "vitl14": ("vit_large_patch14_dinov2.lvd142m", {"params": 304_367_616, "feature_dim": 1024}),
    "vitg14": ("vit_giant_patch14_dinov2.lvd142m", {"params": 1_136_479_232, "feature_dim": 1536}),
}
VARIANTS = {k: {**meta, "weights": f"timm/{arch}"} for k, (arch, meta) in TIMM_VARIANTS.items()}
DEFAULT_VARIANT = "vits14"
INPUT_SIZE = 224
#: Meta's own release of each variant's backbone (timm's fallback URL when the hub is not used).
META_URL = "https://dl.fbaipublicfiles.com/dinov2/dinov2_{v}/dinov2_{v}_pretrain.pth"


def weights_source(request: EncoderRequest) -> WeightSource | None:
    """Where a variant's weights live: timm's hub repository, then Meta's URL (torch-free)."""
    variant = request.variant or DEFAULT_VARIANT
    if variant not in TIMM_VARIANTS:
        return None  # the loader names the known variants
    display = f"dinov2:{request.variant}" if request.variant else "dinov2"
    return timm_hub_source(display, TIMM_VARIANTS[variant][0], urls=[META_URL.format(v=variant)])


@bench.hookimpl
def bench_register_encoders():
    return [
        EncoderSpec(
            name="dinov2",
            description="DINOv2 self-supervised ViT (LVD-142M), CLS token; vits14/vitb14/vitl14/vitg14",
            loader="bench_plugins.encoders._dinov2:load",
            weights_resolver="bench_plugins.encoders.dinov2:weights_source",
            pretraining_data=("lvd-142m",),
            variants=VARIANTS,
            default_variant=DEFAULT_VARIANT,
            metadata={
                **VARIANTS[DEFAULT_VARIANT],
                "input_size": INPUT_SIZE,
                "is_vit": True,
                "patch_size": 14,
                "has_text_tower": False,
                "flexible_resolution": False,
                "license": "apache-2.0",
            },
        )
    ]

"""ResNets with ImageNet-1k weights: timm's ``resnet18/34/50/101`` (the ``a1_in1k`` "ResNet strikes
back" weights) and torchvision's ``resnet50(weights="DEFAULT")`` as ``resnet:tv-resnet50``.

Features are the globally average-pooled last stage (512-d for resnet18/34, 2048-d otherwise).
CNNs take any input size, so tiny images can stay small (``flexible_resolution``).
"""

from __future__ import annotations

import bench
from bench.specs import EncoderRequest, EncoderSpec
from bench.weights import WeightSource, timm_hub_source

#: variant -> (timm name with tag, metadata). Parameter counts exclude the ImageNet classifier.
TIMM_VARIANTS = {
    "resnet18": ("resnet18.a1_in1k", {"params": 11_176_512, "feature_dim": 512, "weights": "timm/resnet18.a1_in1k"}),
    "resnet34": ("resnet34.a1_in1k", {"params": 21_284_672, "feature_dim": 512, "weights": "timm/resnet34.a1_in1k"}),
    "resnet50": ("resnet50.a1_in1k", {"params": 23_508_032, "feature_dim": 2048, "weights": "timm/resnet50.a1_in1k"}),
    "resnet101": ("resnet101.a1h_in1k",
                  {"params": 42_500_160, "feature_dim": 2048, "weights": "timm/resnet101.a1h_in1k"}),
}
#: timm's own release URLs of the same weights (its fallback when the hub is not used).
TIMM_URLS = {
    "resnet18": "https://github.com/huggingface/pytorch-image-models/releases/download/v0.1-rsb-weights/"
                "resnet18_a1_0-d63eafa0.pth",
    "resnet34": "https://github.com/huggingface/pytorch-image-models/releases/download/v0.1-rsb-weights/"
                "resnet34_a1_0-46f8f793.pth",
    "resnet50": "https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-rsb-weights/"
                "resnet50_a1_0-14fe96d1.pth",
    "resnet101": "https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-rsb-weights/"
                 "resnet101_a1h-36d3f2aa.pth",
}
TV_WEIGHTS_TAG = "torchvision ResNet50_Weights.IMAGENET1K_V2"
#: ``torchvision.models.ResNet50_Weights.DEFAULT.url``
TV_URL = "https://download.pytorch.org/models/resnet50-11ad3fa6.pth"
VARIANTS = {
    **{k: meta for k, (_, meta) in TIMM_VARIANTS.items()},
    "tv-resnet50": {"params": 23_508_032, "feature_dim": 2048, "weights": TV_WEIGHTS_TAG, "license": "bsd-3-clause"},
}
DEFAULT_VARIANT = "resnet50"


def weights_source(request: EncoderRequest) -> WeightSource | None:
    """Where a variant's weights live (torch-free): timm's hub repository then its release URL, or
    torchvision's URL for ``tv-resnet50``."""
    variant = request.variant or DEFAULT_VARIANT
    display = f"resnet:{request.variant}" if request.variant else "resnet"
    if variant == "tv-resnet50":
        return WeightSource(encoder=display, tag=TV_WEIGHTS_TAG, urls=[TV_URL])
    if variant not in TIMM_VARIANTS:
        return None  # the loader names the known variants
    return timm_hub_source(display, TIMM_VARIANTS[variant][0], urls=[TIMM_URLS[variant]])


@bench.hookimpl
def bench_register_encoders():
    return [
        EncoderSpec(
            name="resnet",
            description="ResNet (timm a1_in1k weights; resnet18/34/50/101, or torchvision's tv-resnet50), ImageNet-1k",
            loader="bench_plugins.encoders._resnet:load",
            weights_resolver="bench_plugins.encoders.resnet:weights_source",
            pretraining_data=("imagenet-1k",),
            variants=VARIANTS,
            default_variant=DEFAULT_VARIANT,
            metadata={
                **VARIANTS[DEFAULT_VARIANT],
                "input_size": 224,
                "is_vit": False,
                "patch_size": None,
                "has_text_tower": False,
                "flexible_resolution": True,
                "license": "apache-2.0",
            },
        )
    ]


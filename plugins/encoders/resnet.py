"""ResNets with ImageNet-1k weights: timm's ``resnet18/34/50/101`` (the ``a1_in1k`` "ResNet strikes
back" weights) and torchvision's ``resnet50(weights="DEFAULT")`` as ``resnet:tv-resnet50``.

Features are the globally average-pooled last stage (512-d for resnet18/34, 2048-d otherwise).
CNNs take any input size, so tiny images can stay small (``flexible_resolution``).
"""

from __future__ import annotations

import bench
from bench.specs import EncoderSpec

#: variant -> (timm name with tag, metadata). Parameter counts exclude the ImageNet classifier.
TIMM_VARIANTS = {
    "resnet18": ("resnet18.a1_in1k", {"params": 11_176_512, "feature_dim": 512, "weights": "timm/resnet18.a1_in1k"}),
    "resnet34": ("resnet34.a1_in1k", {"params": 21_284_672, "feature_dim": 512, "weights": "timm/resnet34.a1_in1k"}),
    "resnet50": ("resnet50.a1_in1k", {"params": 23_508_032, "feature_dim": 2048, "weights": "timm/resnet50.a1_in1k"}),
    "resnet101": ("resnet101.a1h_in1k",
                  {"params": 42_500_160, "feature_dim": 2048, "weights": "timm/resnet101.a1h_in1k"}),
}
TV_WEIGHTS_TAG = "torchvision ResNet50_Weights.IMAGENET1K_V2"
VARIANTS = {
    **{k: meta for k, (_, meta) in TIMM_VARIANTS.items()},
    "tv-resnet50": {"params": 23_508_032, "feature_dim": 2048, "weights": TV_WEIGHTS_TAG, "license": "bsd-3-clause"},
}
DEFAULT_VARIANT = "resnet50"


@bench.hookimpl
def bench_register_encoders():
    return [
        EncoderSpec(
            name="resnet",
            description="ResNet (timm a1_in1k weights; resnet18/34/50/101, or torchvision's tv-resnet50), ImageNet-1k",
            loader="bench_plugins.encoders.resnet_model:load",
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


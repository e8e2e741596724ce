"""ResNets with ImageNet-1k weights: timm's ``resnet18/34/50/101`` (the ``a1_in1k`` "ResNet strikes
back" weights) and torchvision's ``resnet50(weights="DEFAULT")`` as ``resnet:tv-resnet50``.

Features are the globally average-pooled last stage (512-d for resnet18/34, 2048-d otherwise).
CNNs take any input size, so tiny images can stay small (``flexible_resolution``).
"""

from __future__ import annotations

import bench
from bench.specs import EncoderRequest, EncoderSpec

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: variant -> (timm name with tag, metadata). Parameter counts exclude the ImageNet classifier.
TIMM_VARIANTS = {
    "resnet18": ("resnet18.a1_in1k", {"params": 11_176_512, "feature_dim": 512, "weights": "timm/resnet18.a1_in1k"}),
    "resnet34": ("resnet34.a1_in1k", {"params": 21_284_672, "feature_dim": 512, "weights": "timm/resnet34.a1_in1k"}),
    "resnet50": ("resnet50.a1_in1k", {"params": 23_508_032, "feature_dim": 2048, "weights": "timm/resnet50.a1_in1k"}),
    "resnet101": ("resnet101.a1h_in1k", {"params": 42_500_160, "feature_dim": 2048, "weights": "timm/resnet101.a1h_in1k"}),
}
TV_WEIGHTS_TAG = "torchvision ResNet50_Weights.IMAGENET1K_V2"
VARIANTS = {
    **{k: meta for k, (_, meta) in TIMM_VARIANTS.items()},
    "tv-resnet50": {"params": 23_508_032, "feature_dim": 2048, "weights": TV_WEIGHTS_TAG, "license": "bsd-3-clause",
                    "interpolation": "bilinear"},
}
DEFAULT_VARIANT = "resnet50"


@bench.hookimpl
def bench_register_encoders():
    return [
        EncoderSpec(
            name="resnet",
            description="ResNet (timm a1_in1k weights; resnet18/34/50/101, or torchvision's tv-resnet50), ImageNet-1k",
            loader=load,
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
                "interpolation": "bicubic",
                "family": "cnn",
            },
        )
    ]


def _layer_groups(model) -> list[list[str]]:
    return [["conv1", "bn1"], ["layer1"], ["layer2"], ["layer3"], ["layer4"]]


def _stages(model) -> list[str]:
    return ["layer1", "layer2", "layer3", "layer4"]


def _lora_targets(model) -> list[str]:
    """LoRA on the block convolutions (peft wraps ``nn.Conv2d``): conv1/conv2, plus conv3 in
    bottleneck ResNets (50 and deeper)."""
    return ["conv1", "conv2"] + (["conv3"] if hasattr(model.layer1[0], "conv3") else [])


def load(request: EncoderRequest):
    from ._hub import display_name, pick_variant, timm_encoder

    display = display_name("resnet", request)
    if (request.variant or DEFAULT_VARIANT) == "tv-resnet50":
        return _load_torchvision(request, display)
    _, (arch, _meta) = pick_variant("resnet", TIMM_VARIANTS, request, DEFAULT_VARIANT, known=VARIANTS)
    return timm_encoder(
        "resnet", arch, request, input_size=224, is_vit=False, pretraining_data=("imagenet-1k",),
        license="apache-2.0", layer_groups_fn=_layer_groups, lora_targets=_lora_targets,
        adapter_targets_fn=_stages, display_name=display,
    )


def _load_torchvision(request: EncoderRequest, display: str):
    """torchvision's ResNet-50 with ``weights="DEFAULT"`` (IMAGENET1K_V2), resolved through our
    caches so that offline runs fail fast instead of hanging in ``load_state_dict_from_url``."""
    import torch
    import torchvision

    from bench.encoders import Encoder
    from bench.weights import load_checkpoint, load_into

    from ._hub import WeightSource, resolve

    path = weights = None
    if request.pretrained:
        url = torchvision.models.ResNet50_Weights.DEFAULT.url
        path = request.weights or resolve(WeightSource(encoder=display, tag=TV_WEIGHTS_TAG, urls=[url]))
        weights = request.weights or TV_WEIGHTS_TAG
    model = torchvision.models.resnet50(weights=None)
    if path is not None:
        load_into(model, load_checkpoint(path), source=f"{path!r} for encoder {display!r}", ignore=("fc.",))
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
    )

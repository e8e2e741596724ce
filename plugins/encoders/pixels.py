"""The raw-input baseline: the image itself, resized and flattened, is the feature vector.

No learned encoder, so strategies that train or need pre-trained weights are skipped for it;
feature strategies (linear probe, kNN, ...) on pixels are the floor every encoder must beat.
"""

from __future__ import annotations

import bench
from bench.specs import EncoderRequest, EncoderSpec

DEFAULT_SIZE = 16  # for tasks of mixed image sizes


@bench.hookimpl
def bench_register_encoders():
    return [
        EncoderSpec(
            name="pixels",
            description="raw-pixel baseline: the grey image at its native size (or --resolution), flattened (no learned encoder)",
            loader=load,
            pretraining_data=(),
            metadata={"params": 0, "feature_dim": DEFAULT_SIZE * DEFAULT_SIZE, "input_size": DEFAULT_SIZE,
                      "trainable": False, "license": "n/a", "family": "baseline"},
        )
    ]


def _module():
    import torch
    from torch import nn

    class Pixels(nn.Module):
        """[B, 3, S, S] -> [B, S*S]: mean over channels (the preprocessing repeats grey), flattened."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.mean(dim=1).flatten(1)

    return Pixels()


def load(request: EncoderRequest):
    from bench.encoders import Encoder

    size = request.resolution or request.native_size or DEFAULT_SIZE
    return Encoder(
        name="pixels",
        module=_module(),
        feature_dim=size * size,
        input_size=size,
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        interpolation="bilinear",
        pretrained=False,
        weights=None,
        license="n/a",
    )

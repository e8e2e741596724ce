"""Loader of the ``pixels`` baseline (registered in :mod:`bench_plugins.encoders.pixels`)."""

from __future__ import annotations

import torch
from torch import nn

from bench.encoders import Encoder
from bench.specs import EncoderRequest
from bench_plugins.encoders.pixels import DEFAULT_SIZE


class Pixels(nn.Module):
    """[B, 3, S, S] -> [B, S*S]: mean over channels (the preprocessing repeats grey), flattened."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=1).flatten(1)


def load(request: EncoderRequest) -> Encoder:
    size = request.resolution or request.native_size or DEFAULT_SIZE
    return Encoder(
        name="pixels",
        module=Pixels(),
        feature_dim=size * size,
        input_size=size,
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        interpolation="bilinear",
        pretrained=False,
        weights=None,
        license="n/a",
    )

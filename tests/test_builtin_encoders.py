"""The offline built-in encoders: real ImageNet weights for EfficientNet-Lite0, raw pixels."""

from __future__ import annotations

import numpy as np
import torch

from bench.encoders import encode, preprocess
from bench.specs import EncoderRequest
from bench_plugins.encoders import _efficientnet, _pixels

TEMPLE_LIKE = {442, 497, 698, 832, 663}  # bell cote, church, palace, stupa, monastery


def test_efficientnet_lite0_weights_are_real_imagenet_weights():
    """Pooled features through the packaged ImageNet classifier put a temple-like class in the
    top 5 for scikit-learn's photo of a Chinese temple (random weights would not)."""
    from sklearn.datasets import load_sample_image

    enc = _efficientnet.load(EncoderRequest(name="efficientnet-lite0", resolution=224))
    assert enc.feature_dim == 1280 and enc.mean == (0.5, 0.5, 0.5) and enc.pretraining_data == ("imagenet-1k",)
    sd = _efficientnet.packaged_state_dict()
    weight, bias = list(sd.values())[-2:]  # the ImageNet classifier, last in the packaged state dict
    assert tuple(weight.shape) == (1000, 1280)
    image = np.ascontiguousarray(load_sample_image("china.jpg"))
    feats = encode(enc, lambda pos: [image for _ in pos], 1)
    logits = torch.from_numpy(feats) @ weight.T + bias
    top5 = set(logits.topk(5).indices[0].tolist())
    assert top5 & TEMPLE_LIKE, top5


def test_efficientnet_random_init_differs_and_resolution_is_honoured():
    enc = _efficientnet.load(EncoderRequest(name="efficientnet-lite0", pretrained=False, resolution=64))
    assert enc.input_size == 64 and enc.weights is None and not enc.pretrained
    x = preprocess([np.zeros((28, 28, 1), np.uint8)], enc)
    assert tuple(x.shape) == (1, 3, 64, 64) and torch.allclose(x, torch.full_like(x, -1.0))
    # layer groups cover every parameter exactly once, input side first
    names = [n for n, _ in enc.module.named_parameters()]
    owners = [[i for i, g in enumerate(enc.layer_groups) if any(n == p or n.startswith(p + ".") for p in g)]
              for n in names]
    assert all(len(o) == 1 for o in owners)
    assert owners[0] == [0] and owners[-1] == [len(enc.layer_groups) - 1]


def test_pixels_features_are_the_normalised_image():
    enc = _pixels.load(EncoderRequest(name="pixels", native_size=8))
    img = np.arange(64, dtype=np.uint8).reshape(8, 8, 1) * 4
    f = encode(enc, lambda pos: [img for _ in pos], 1)
    assert f.shape == (1, 64)
    np.testing.assert_allclose(f[0], (img.reshape(-1) / 255.0 - 0.5) / 0.5, atol=1e-6)
    assert not enc.trainable

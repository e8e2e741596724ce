"""Zero-shot classification and ``--head-init zero-shot``: the prompt -> class wiring is proven with
a text tower whose class embeddings are known, not only shown to run."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from torch import nn

from bench.adaptation import TEMPLATES
from bench.encoders import Encoder, encode
from bench.errors import UserError
from bench.specs import EncoderRequest
from bench.strategies import FitContext
from bench.tasks import ArraySplit, TaskData
from bench.training import RECIPE_DEFAULTS
from bench_plugins.strategies.finetune import Finetune
from bench_plugins.strategies.linear_probe import LinearProbe
from bench_plugins.strategies.zero_shot import ZeroShot

NAMES = ["cat", "dog", "car", "ship"]


class FirstChannelPixels(nn.Module):
    """[B, 3, 2, 2] -> [B, 4]: the image's four pixels are its feature vector."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 0].flatten(1)


def known_text_encoder(perm: list[int], seen: list[str] | None = None):
    """encode_text mapping any prompt that names class j to (a positive multiple of) basis vector
    e_{perm[j]}; it fails on prompts naming no known class."""

    def encode_text(prompts: list[str]) -> torch.Tensor:
        out = torch.zeros(len(prompts), 4)
        for i, p in enumerate(prompts):
            hits = [j for j, n in enumerate(NAMES) if f" {n}." in p or f" {n} " in p]
            assert len(hits) == 1, f"prompt {p!r} does not name exactly one class"
            out[i, perm[hits[0]]] = 1.0 + 0.1 * (i % 3)  # unnormalised on purpose
            if seen is not None:
                seen.append(p)
        return out / out.norm(dim=1, keepdim=True)

    return encode_text


def fake_encoder(perm, seen=None) -> Encoder:
    return Encoder(name="fake-clip", module=FirstChannelPixels(), feature_dim=4, input_size=2, mean=(0.0, 0.0, 0.0),
                   std=(1.0, 1.0, 1.0), interpolation="nearest", encode_text=known_text_encoder(perm, seen),
                   extra={"logit_scale": 100.0, "text_params": 7})


def images_for(latents: np.ndarray, seed: int = 0) -> np.ndarray:
    """2x2 grey images whose feature is (nearly) basis vector e_latent."""
    rng = np.random.default_rng(seed)
    imgs = rng.integers(0, 40, size=(len(latents), 2, 2)).astype(np.uint8)
    flat = imgs.reshape(len(latents), 4)
    flat[np.arange(len(latents)), latents] = 220
    return flat.reshape(len(latents), 2, 2)


def splits(labels_from_perm=None) -> tuple[ArraySplit, ArraySplit]:
    """The toy task's (train, test); with ``labels_from_perm`` the labels follow that class order."""
    latents = np.tile(np.arange(4), 6)
    inv = np.argsort(labels_from_perm) if labels_from_perm is not None else latents
    labels = inv[latents] if labels_from_perm is not None else latents
    train = ArraySplit([f"tr{i}" for i in range(len(latents))], images_for(latents, 0), labels)
    test = ArraySplit([f"te{i}" for i in range(len(latents))], images_for(latents, 1), labels)
    return train, test


def make_ctx(encoder: Encoder, config: dict, classes=None, extra=None, labels_from_perm=None):
    train, test = splits(labels_from_perm)
    task = TaskData(name="toy", classes=list(classes or NAMES), train=train, test=test, extra=dict(extra or {}))
    return FitContext(task_name=task.name, classes=list(task.classes), extra=task.extra,
                      labelled=train, unlabelled_target=None, config=dict(config), seed=0, device="cpu",
                      load_encoder=lambda pretrained=True: copy.deepcopy(encoder),
                      features=lambda split: encode(encoder, split.images, len(split)))


@pytest.mark.parametrize("perm", [[0, 1, 2, 3], [2, 0, 3, 1]])
def test_zero_shot_predictions_follow_the_class_text_embeddings(perm):
    enc = fake_encoder(perm)
    fitted = ZeroShot().fit(make_ctx(enc, {"templates": "ensemble"}))
    latents = np.tile(np.arange(4), 6)
    # an image whose feature is e_m belongs to the class whose text embedding is e_m
    expected = np.argsort(perm)[latents]
    np.testing.assert_array_equal(fitted.predict(splits()[1]), expected)
    assert fitted.trainable_params == 0 and fitted.total_params == 7


def test_zero_shot_uses_the_tasks_prompt_names_and_every_template():
    seen: list[str] = []
    enc = fake_encoder([0, 1, 2, 3], seen)
    # class names "0".."3" are not in the fake vocabulary: only the prompt names can work
    ctx = make_ctx(enc, {"templates": "ensemble"}, classes=["0", "1", "2", "3"], extra={"prompt_names": NAMES})
    fitted = ZeroShot().fit(ctx)
    np.testing.assert_array_equal(fitted.predict(splits()[1]), np.tile(np.arange(4), 6))
    assert sorted(seen) == sorted(t.format(n) for n in NAMES for t in TEMPLATES)
    assert fitted.info["prompt_names"] == NAMES and fitted.info["templates"] == len(TEMPLATES)


def test_zero_shot_on_an_encoder_without_text_tower_says_so():
    enc = fake_encoder([0, 1, 2, 3])
    enc.encode_text = None
    with pytest.raises(ValueError, match="text tower"):
        ZeroShot().fit(make_ctx(enc, {"templates": "ensemble"}))


def test_linear_probe_zero_shot_head_starts_at_zero_shot_predictions():
    perm = [3, 1, 0, 2]
    enc = fake_encoder(perm)
    zs = ZeroShot().fit(make_ctx(enc, {"templates": "ensemble"}))
    # labels deliberately contradict the text embeddings, so any fitting step would move away from them
    config = {"C": 10.0, "tune": False, "max_iter": 0, "head_init": "zero-shot", "templates": "ensemble"}
    ctx = make_ctx(enc, config, labels_from_perm=[0, 1, 2, 3])
    untrained = LinearProbe().fit(ctx)
    test = splits(labels_from_perm=[0, 1, 2, 3])[1]
    np.testing.assert_array_equal(untrained.predict(test), zs.predict(test))
    assert untrained.info["head_init"] == "zero-shot"
    # the toy's zero-shot margins are extreme (cosine 1 vs 0, logit scale 100): a weak penalty (large C)
    # lets the labels win, and the prior-centred probe learns them (the identity mapping)
    trained = LinearProbe().fit(make_ctx(enc, {**config, "C": 1e4, "max_iter": 500}, labels_from_perm=[0, 1, 2, 3]))
    assert (trained.predict(test) == test.labels).mean() == 1.0


def test_finetune_zero_shot_head_initial_predictions_equal_zero_shot():
    perm = [1, 3, 0, 2]
    enc = fake_encoder(perm)
    zs = ZeroShot().fit(make_ctx(enc, {"templates": "ensemble"}))
    config = {**RECIPE_DEFAULTS, "epochs": 0, "min_steps": 0, "max_steps": 0, "layer_decay": None,
              "head_init": "zero-shot", "templates": "ensemble"}
    ctx = make_ctx(enc, config)
    fitted = Finetune().fit(ctx)
    assert fitted.info["steps"] == 0 and fitted.info["head_init"] == "zero-shot"
    test = splits()[1]
    np.testing.assert_array_equal(fitted.predict(test), zs.predict(test))


def test_head_init_rejects_an_unknown_value():
    enc = fake_encoder([0, 1, 2, 3])
    with pytest.raises(UserError, match="head_init='text'"):
        LinearProbe().fit(make_ctx(enc, {"C": 1.0, "tune": False, "max_iter": 10, "head_init": "text"}))


def test_zero_shot_on_tiny_open_clip_matches_open_clip_similarities(tmp_path):
    import open_clip

    from bench_plugins.encoders import _clip

    cfg = {"embed_dim": 16,
           "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
           "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 16, "heads": 2, "layers": 1}}
    (tmp_path / "bench-zs-tiny.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(tmp_path / "bench-zs-tiny.json")
    torch.manual_seed(0)
    model = open_clip.create_model("bench-zs-tiny", pretrained=None).eval()
    torch.save(model.state_dict(), tmp_path / "tiny.pt")  # open_clip's checkpoint layout
    enc = _clip.load(EncoderRequest(name="clip", variant="bench-zs-tiny", weights=str(tmp_path / "tiny.pt")))
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, size=(12, 32, 32, 3)).astype(np.uint8)
    split = ArraySplit([str(i) for i in range(12)], imgs, np.arange(12) % 4)
    task = TaskData(name="toy", classes=NAMES, train=split, test=split)
    ctx = FitContext(task_name=task.name, classes=list(task.classes), extra=task.extra,
                     labelled=split, unlabelled_target=None, config={"templates": "single"}, seed=0,
                     device="cpu", load_encoder=lambda pretrained=True: enc,
                     features=lambda s: encode(enc, s.images, len(s)))
    pred = ZeroShot().fit(ctx).predict(split)
    # the same computation straight from open_clip: the encoder's text tower is open_clip's own
    tok = open_clip.get_tokenizer("bench-zs-tiny")
    text = enc.encode_text([f"a photo of a {n}." for n in NAMES])
    from bench.encoders import preprocess

    with torch.no_grad():
        img = model.encode_image(preprocess(list(imgs), enc), normalize=True)
        ref_text = model.encode_text(tok([f"a photo of a {n}." for n in NAMES]), normalize=True)
    torch.testing.assert_close(text, ref_text)
    np.testing.assert_array_equal(pred, (img @ ref_text.T).argmax(1).numpy())

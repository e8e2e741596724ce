"""Weights resolution: --weights files reproduce features bit for bit, caches are used, mismatching
checkpoints and missing weights are clear user errors (fast, offline)."""

from __future__ import annotations

import json
import time

import pytest
import torch
from safetensors.torch import save_file

from bench import weights
from bench.errors import UserError
from bench.specs import EncoderRequest
from bench_plugins.encoders import clip_model, resnet_model, timm_models

TIMM_CASES = [  # (plugin, family, variant, resolution, file suffix)
    # resnet18's round trip is the Hugging Face cache test below
    (timm_models.load_vit, "vit", "vitti16", 32, ".pt"),
    (timm_models.load_dinov2, "dinov2", "vits14", 28, ".safetensors"),
]


@pytest.fixture(autouse=True)
def offline_empty_caches(tmp_path, monkeypatch):
    """No network, and caches that hold nothing unless a test puts it there."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))


def save(module, path):
    sd = {k: v.contiguous() for k, v in module.state_dict().items()}
    save_file(sd, str(path)) if str(path).endswith(".safetensors") else torch.save(sd, path)


@pytest.mark.parametrize("plugin,family,variant,res,suffix", TIMM_CASES)
def test_weights_file_reproduces_features_bit_for_bit(tmp_path, plugin, family, variant, res, suffix):
    torch.manual_seed(0)
    first = plugin(EncoderRequest(name=family, variant=variant, pretrained=False, resolution=res))
    path = tmp_path / f"w{suffix}"
    save(first.module, path)
    torch.manual_seed(1)  # a different random init underneath: only the file can make them equal
    second = plugin(EncoderRequest(name=family, variant=variant, weights=str(path), resolution=res))
    x = torch.randn(3, 3, res, res)
    with torch.no_grad():
        assert torch.equal(first.module.eval()(x), second.module.eval()(x))
    assert second.weights == str(path) and second.pretrained


def test_torchvision_resnet50_weights_file_loads_with_its_classifier_dropped(tmp_path):
    import torchvision

    torch.manual_seed(0)
    full = torchvision.models.resnet50(weights=None).eval()  # a torchvision state dict, fc included
    torch.save(full.state_dict(), tmp_path / "tv.pth")
    enc = resnet_model.load(EncoderRequest(name="resnet", variant="tv-resnet50", weights=str(tmp_path / "tv.pth"),
                                     resolution=32))
    x = torch.randn(2, 3, 32, 32)
    full.fc = torch.nn.Identity()
    with torch.no_grad():
        assert torch.equal(enc.module.eval()(x), full(x))


def test_vit_checkpoint_at_224_loads_into_a_32_pixel_model_by_resampling_position_embeddings(tmp_path):
    import timm

    src = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=5)  # with a classifier
    torch.save(src.state_dict(), tmp_path / "vit224.pth")
    enc = timm_models.load_vit(EncoderRequest(name="vit", variant="vitti16", weights=str(tmp_path / "vit224.pth"),
                                              resolution=32))
    assert enc.module.pos_embed.shape == (1, 1 + 4, 192)
    assert torch.equal(enc.module.blocks[0].attn.qkv.weight, src.blocks[0].attn.qkv.weight)


def tiny_clip(tmp_path, name="bench-weights-tiny"):
    import open_clip

    cfg = {"embed_dim": 16,
           "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
           "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 16, "heads": 2, "layers": 1}}
    (tmp_path / f"{name}.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(tmp_path / f"{name}.json")
    return name


def test_open_clip_checkpoint_reproduces_image_and_text_embeddings(tmp_path):
    import open_clip

    name = tiny_clip(tmp_path)
    torch.manual_seed(0)
    model = open_clip.create_model(name, pretrained=None).eval()
    save(model, tmp_path / "clip.safetensors")
    enc = clip_model.load(EncoderRequest(name="clip", variant=name, weights=str(tmp_path / "clip.safetensors")))
    x = torch.randn(2, 3, 32, 32)
    prompts = ["a photo of a cat.", "a photo of a dog."]
    with torch.no_grad():
        assert torch.equal(enc.module.eval()(x), model.encode_image(x))
        ref = model.encode_text(open_clip.get_tokenizer(name)(prompts), normalize=True)
    assert torch.equal(enc.encode_text(prompts), ref)
    assert enc.feature_dim == 16 and enc.extra["text_params"] > 0


def test_weights_found_in_the_hugging_face_cache_are_used_offline(tmp_path):
    import huggingface_hub.constants

    torch.manual_seed(0)
    ref = resnet_model.load(EncoderRequest(name="resnet", variant="resnet18", pretrained=False, resolution=32))
    snap = tmp_path / "hf" / "models--timm--resnet18.a1_in1k" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (tmp_path / "hf" / "models--timm--resnet18.a1_in1k" / "refs").mkdir()
    (tmp_path / "hf" / "models--timm--resnet18.a1_in1k" / "refs" / "main").write_text("abc123")
    save(ref.module, snap / "model.safetensors")
    assert huggingface_hub.constants.HF_HUB_CACHE == str(tmp_path / "hf")
    enc = resnet_model.load(EncoderRequest(name="resnet", variant="resnet18", resolution=32))
    assert enc.weights == "timm/resnet18.a1_in1k"
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(enc.module.eval()(x), ref.module.eval()(x))


def test_checkpoint_of_another_architecture_lists_missing_and_unexpected_keys(tmp_path):
    torch.manual_seed(0)
    small = resnet_model.load(EncoderRequest(name="resnet", variant="resnet18", pretrained=False, resolution=32))
    save(small.module, tmp_path / "r18.safetensors")
    with pytest.raises(UserError) as err:
        resnet_model.load(EncoderRequest(name="resnet", variant="resnet50", weights=str(tmp_path / "r18.safetensors")))
    msg = str(err.value)
    assert "does not fit" in msg and "missing (first: " in msg and "layer1.0.conv3.weight" in msg
    assert "shape mismatch" in msg and "resnet:resnet50" in msg


@pytest.mark.parametrize("plugin,family,variant,tag", [
    (resnet_model.load, "resnet", None, "timm/resnet50.a1_in1k"),
    (resnet_model.load, "resnet", "tv-resnet50", "IMAGENET1K_V2"),
    (timm_models.load_vit, "vit", None, "timm/vit_base_patch16_224.augreg2_in21k_ft_in1k"),
    (timm_models.load_dinov2, "dinov2", "vitb14", "timm/vit_base_patch14_dinov2.lvd142m"),
    (clip_model.load, "clip", None, "ViT-B-32/laion2b_s34b_b79k"),
    (clip_model.load, "clip", "ViT-L-14/openai", "ViT-L-14/openai"),
])
def test_missing_weights_offline_fail_fast_naming_encoder_tag_and_flag(plugin, family, variant, tag):
    start = time.perf_counter()
    with pytest.raises(UserError) as err:
        plugin(EncoderRequest(name=family, variant=variant))
    elapsed = time.perf_counter() - start
    msg = str(err.value)
    assert elapsed < 5.0, f"took {elapsed:.1f} s"
    assert f"{family}:{variant}" if variant else f"'{family}'" in msg
    assert tag in msg and f"--weights {family}=" in msg and "network is off" in msg


def test_missing_weights_with_unreachable_hub_fail_fast_without_offline_flag(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("BENCH_OFFLINE", raising=False)
    monkeypatch.setattr(weights, "reachable", lambda host, port=443, timeout=3.0: False)
    start = time.perf_counter()
    with pytest.raises(UserError, match="huggingface.co cannot be reached.*--weights dinov2="):
        timm_models.load_dinov2(EncoderRequest(name="dinov2"))
    assert time.perf_counter() - start < 5.0


def test_connectivity_check_gives_up_on_a_server_that_accepts_but_never_answers():
    import socket

    with socket.socket() as server:  # accepts TCP connections (backlog) and never speaks TLS/HTTP
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        start = time.perf_counter()
        assert weights.reachable("127.0.0.1", server.getsockname()[1], timeout=0.5) is False
        assert time.perf_counter() - start < 1.5


def test_missing_weights_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        timm_models.load_vit(EncoderRequest(name="vit", variant="vitti16", weights=str(tmp_path / "nope.pt"),
                                            resolution=32))

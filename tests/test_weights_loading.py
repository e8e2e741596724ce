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
from bench_plugins.encoders import _clip, _dinov2, _resnet, _vit

TIMM_CASES = [  # (plugin, family, variant, resolution, file suffix)
    # resnet18's round trip is the Hugging Face cache test below
    (_vit.load, "vit", "vitti16", 32, ".pt"),
    (_dinov2.load, "dinov2", "vits14", 28, ".safetensors"),
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
    enc = _resnet.load(EncoderRequest(name="resnet", variant="tv-resnet50", weights=str(tmp_path / "tv.pth"),
                                     resolution=32))
    x = torch.randn(2, 3, 32, 32)
    full.fc = torch.nn.Identity()
    with torch.no_grad():
        assert torch.equal(enc.module.eval()(x), full(x))


def test_vit_checkpoint_at_224_loads_into_a_32_pixel_model_by_resampling_position_embeddings(tmp_path):
    import timm

    src = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=5)  # with a classifier
    torch.save(src.state_dict(), tmp_path / "vit224.pth")
    enc = _vit.load(EncoderRequest(name="vit", variant="vitti16", weights=str(tmp_path / "vit224.pth"),
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
    enc = _clip.load(EncoderRequest(name="clip", variant=name, weights=str(tmp_path / "clip.safetensors")))
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
    ref = _resnet.load(EncoderRequest(name="resnet", variant="resnet18", pretrained=False, resolution=32))
    snap = tmp_path / "hf" / "models--timm--resnet18.a1_in1k" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (tmp_path / "hf" / "models--timm--resnet18.a1_in1k" / "refs").mkdir()
    (tmp_path / "hf" / "models--timm--resnet18.a1_in1k" / "refs" / "main").write_text("abc123")
    save(ref.module, snap / "model.safetensors")
    assert huggingface_hub.constants.HF_HUB_CACHE == str(tmp_path / "hf")
    enc = _resnet.load(EncoderRequest(name="resnet", variant="resnet18", resolution=32))
    assert enc.weights == "timm/resnet18.a1_in1k"
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(enc.module.eval()(x), ref.module.eval()(x))


def test_checkpoint_of_another_architecture_lists_missing_and_unexpected_keys(tmp_path):
    torch.manual_seed(0)
    small = _resnet.load(EncoderRequest(name="resnet", variant="resnet18", pretrained=False, resolution=32))
    save(small.module, tmp_path / "r18.safetensors")
    with pytest.raises(UserError) as err:
        _resnet.load(EncoderRequest(name="resnet", variant="resnet50", weights=str(tmp_path / "r18.safetensors")))
    msg = str(err.value)
    assert "does not fit" in msg and "missing (first: " in msg and "layer1.0.conv3.weight" in msg
    assert "shape mismatch" in msg and "resnet:resnet50" in msg


@pytest.mark.parametrize("plugin,family,variant,wanted", [
    (_resnet.load, "resnet", None, "timm/resnet50.a1_in1k/model.safetensors"),
    (_resnet.load, "resnet", "tv-resnet50", "https://download.pytorch.org/models/resnet50-11ad3fa6.pth"),
    (_vit.load, "vit", None, "timm/vit_base_patch16_224.augreg2_in21k_ft_in1k/model.safetensors"),
    (_dinov2.load, "dinov2", "vitb14", "timm/vit_base_patch14_dinov2.lvd142m/model.safetensors"),
    (_clip.load, "clip", None, "laion/CLIP-ViT-B-32-laion2B-s34B-b79K/open_clip_model.safetensors"),
    (_clip.load, "clip", "ViT-L-14/openai", "timm/vit_large_patch14_clip_224.openai/open_clip_model.safetensors"),
])
def test_missing_weights_offline_fail_fast_naming_encoder_file_and_ways_out(plugin, family, variant, wanted):
    start = time.perf_counter()
    with pytest.raises(UserError) as err:
        plugin(EncoderRequest(name=family, variant=variant))
    elapsed = time.perf_counter() - start
    msg = str(err.value)
    assert elapsed < 5.0, f"took {elapsed:.1f} s"
    assert "\n" not in msg
    assert (f"'{family}:{variant}'" if variant else f"'{family}'") in msg
    assert wanted in msg and f"--weights {family}=" in msg and "network is off" in msg and "HF_ENDPOINT" in msg
    if "/" in wanted and not wanted.startswith("http"):
        repo, _, file = wanted.rpartition("/")
        assert f"hf download {repo} {file}" in msg


@pytest.mark.parametrize("value,offline", [("1", True), ("ON", True), ("yes", True), ("True", True),
                                           ("0", False), ("False", False), ("off", False), ("", False)])
def test_offline_follows_huggingface_hubs_own_rule(monkeypatch, value, offline):
    import huggingface_hub.constants

    monkeypatch.delenv("BENCH_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    assert weights.hub_offline() is offline is huggingface_hub.constants._is_true(value or None)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", value)
    assert weights.hub_offline() is offline
    monkeypatch.delenv("TRANSFORMERS_OFFLINE")
    monkeypatch.setenv("BENCH_OFFLINE", value)
    assert weights.hub_offline() is offline


def test_the_probe_goes_to_the_endpoint_huggingface_hub_uses(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("BENCH_OFFLINE", raising=False)
    probed = []
    monkeypatch.setattr(weights, "probe", lambda url, timeout=3.0: probed.append(url) or (False, "refused"))
    monkeypatch.setenv("HF_ENDPOINT", "http://mirror.invalid:8080/")
    with pytest.raises(UserError) as err:
        _dinov2.load(EncoderRequest(name="dinov2"))
    # the mirror alone: Meta's URL is not tried while a mirror is set
    assert probed == ["http://mirror.invalid:8080"]
    assert "http://mirror.invalid:8080 cannot be reached (refused)" in str(err.value)
    monkeypatch.delenv("HF_ENDPOINT")
    probed.clear()
    with pytest.raises(UserError, match="https://huggingface.co cannot be reached.*--weights dinov2="):
        _dinov2.load(EncoderRequest(name="dinov2"))
    assert probed == ["https://huggingface.co", _dinov2_url()]


def _dinov2_url():
    from bench_plugins.encoders.dinov2 import META_URL

    return META_URL.format(v="vits14")


def test_missing_weights_with_unreachable_hub_fail_fast_without_offline_flag(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("BENCH_OFFLINE", raising=False)
    monkeypatch.setattr(weights, "probe", lambda url, timeout=3.0: (False, "no answer within 3 s"))
    start = time.perf_counter()
    with pytest.raises(UserError, match="huggingface.co cannot be reached.*--weights dinov2="):
        _dinov2.load(EncoderRequest(name="dinov2"))
    assert time.perf_counter() - start < 5.0


@pytest.mark.parametrize("family,variants", [("dinov2", ["vits14", "vitb14", "vitl14", "vitg14"]),
                                              ("vit", ["vitti16", "vits16", "vitb16", "vitb16-in21k", "vitl16"]),
                                              ("resnet", ["resnet18", "resnet34", "resnet50", "resnet101"])])
def test_torch_free_resolvers_name_what_timms_pretrained_config_names(family, variants):
    from bench.plugins import load_plugins
    from bench.specs import resolve_loader
    from bench.timm_encoder import timm_source

    spec, _ = load_plugins().encoders.resolve(family)
    for variant in variants:
        mine = resolve_loader(spec.weights_resolver)(EncoderRequest(name=family, variant=variant))
        arch = mine.tag.removeprefix("timm/")
        timms = timm_source(mine.encoder, arch)
        assert list(mine.hf) == list(timms.hf), variant
        loadable = [u for u in timms.urls if u.endswith((".pth", ".bin", ".safetensors"))]
        assert list(mine.urls) == loadable, variant


def test_torchvision_resnet_url_is_torchvisions_own():
    import torchvision

    from bench_plugins.encoders.resnet import TV_URL

    assert TV_URL == torchvision.models.ResNet50_Weights.DEFAULT.url


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
        _vit.load(EncoderRequest(name="vit", variant="vitti16", weights=str(tmp_path / "nope.pt"),
                                            resolution=32))

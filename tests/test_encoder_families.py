"""The resnet, vit, clip and dinov2 families: cheap specs, [B, D] features with the declared D,
usable layer groups / LoRA targets, honest resolution errors, and a tiny grid through the harness."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from bench.errors import UserError
from bench.plugins import load_plugins
from bench.specs import EncoderRequest
from bench_plugins.encoders import _clip, _dinov2, _resnet, _vit

TINY_CLIP = {"embed_dim": 16,
             "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
             "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 16, "heads": 2, "layers": 1}}


@pytest.fixture
def tiny_clip(tmp_path):
    import open_clip

    path = tmp_path / "bench-family-tiny.json"
    path.write_text(json.dumps(TINY_CLIP))
    open_clip.add_model_config(path)
    return "bench-family-tiny"


def test_listing_the_families_imports_no_model_library():
    code = ("import sys, json; from bench.plugins import load_plugins; p = load_plugins(); "
            "print(json.dumps({'heavy': [m for m in ('timm', 'open_clip', 'torchvision') if m in sys.modules], "
            "'names': p.encoders.names()}))")
    out = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert out["heavy"] == []
    assert {"resnet", "vit", "clip", "dinov2"} <= set(out["names"])


def test_specs_declare_pretraining_data_and_sizes_per_variant():
    reg = load_plugins().encoders
    expect = {
        "resnet": (["imagenet-1k"], 2048), "resnet:resnet18": (["imagenet-1k"], 512),
        "vit": (["imagenet-21k", "imagenet-1k"], 768), "vit:vitb16-in21k": (["imagenet-21k"], 768),
        "dinov2": (["lvd-142m"], 384), "dinov2:vitg14": (["lvd-142m"], 1536),
        "clip": (["laion-2b"], 512), "clip:ViT-L-14/openai": (["openai-wit-400m"], 768),
        # an unlisted open_clip variant: data from its tag, dimension from open_clip's config file
        "clip:ViT-B-16-quickgelu/metaclip_400m": (["metaclip-400m"], 512),
    }
    for name, (data, dim) in expect.items():
        spec, variant = reg.resolve(name)
        meta = spec.variant_metadata(variant)
        assert (list(meta["pretraining_data"]), meta["feature_dim"]) == (data, dim), name
        assert meta.get("weights") and meta.get("license"), name
    assert reg.resolve("clip")[0].variant_metadata(None)["has_text_tower"] is True
    assert reg.resolve("dinov2")[0].variant_metadata("vitl14")["is_vit"] is True


@pytest.mark.parametrize("plugin,family,variant,res", [
    (_resnet.load, "resnet", "resnet18", 32),
    (_vit.load, "vit", "vitti16", 32),
    (_dinov2.load, "dinov2", "vits14", 28),
    (_clip.load, "clip", None, 32),
])
def test_random_init_family_gives_pooled_features_of_the_declared_dim(plugin, family, variant, res, request):
    if family == "clip":
        variant = request.getfixturevalue("tiny_clip")
    enc = plugin(EncoderRequest(name=family, variant=variant, pretrained=False, resolution=res))
    spec, _ = load_plugins().encoders.resolve(f"{family}:{variant}")
    declared = TINY_CLIP["embed_dim"] if family == "clip" else spec.variant_metadata(variant)["feature_dim"]
    with torch.no_grad():
        out = enc.module.eval()(torch.randn(2, 3, res, res))
    assert out.shape == (2, declared) == (2, enc.feature_dim)
    assert enc.input_size == res and not enc.pretrained and enc.weights is None and enc.pretraining_data == ()
    # every parameter sits in exactly one layer group, groups ordered input side first
    names = [n for n, _ in enc.module.named_parameters()]
    hits = [[i for i, g in enumerate(enc.layer_groups) if any(n == p or n.startswith(p + ".") for p in g)]
            for n in names]
    assert all(len(h) == 1 for h in hits)
    assert hits[0] == [0] and hits[-1] == [len(enc.layer_groups) - 1]
    modules = [n for n, _ in enc.module.named_modules()]
    for target in enc.lora_targets:
        assert any(m == target or m.endswith("." + target) for m in modules), target
    assert set(enc.adapter_targets) <= set(modules)
    assert enc.is_vit == (family in ("vit", "dinov2", "clip"))
    assert (enc.encode_text is not None) == (family == "clip")


def test_vit_resolution_must_be_a_multiple_of_the_patch_size():
    with pytest.raises(UserError, match="not a multiple of its patch size 14; use --resolution 28 or 42"):
        _dinov2.load(EncoderRequest(name="dinov2", pretrained=False, resolution=32))


def test_linear_probe_finetune_and_zero_shot_run_in_a_tiny_grid(tmp_path, tiny_clip, monkeypatch):
    import open_clip
    from safetensors.torch import save_file

    from bench.run.plan import RunConfig
    from bench.run.runner import Runner

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    torch.manual_seed(0)
    r18 = _resnet.load(EncoderRequest(name="resnet", variant="resnet18", pretrained=False, resolution=32))
    save_file({k: v.contiguous() for k, v in r18.module.state_dict().items()}, str(tmp_path / "r18.safetensors"))
    torch.save(open_clip.create_model(tiny_clip, pretrained=None).state_dict(), tmp_path / "clip.pt")
    cfg = RunConfig(
        encoders=["resnet:resnet18", f"clip:{tiny_clip}"], strategies=["linear-probe", "finetune", "zero-shot"],
        tasks=["digits"], budgets="1", seeds=1, out=tmp_path / "run", device="cpu", resolution=32,
        weights={"resnet": str(tmp_path / "r18.safetensors"), "clip": str(tmp_path / "clip.pt")},
        options=[(None, "epochs", 1), (None, "min_steps", 2), (None, "max_steps", 2)], progress=False,
    )
    records = Runner(cfg, load_plugins(), log=lambda msg: None).run()
    by = {(r["encoder"], r["strategy"]): r for r in records}
    assert len(by) == 6
    for (enc, strat), rec in by.items():
        if enc.startswith("resnet") and strat == "zero-shot":
            assert rec["status"] == "skipped" and "text tower" in rec["error"]
            continue
        assert rec["status"] == "ok", (enc, strat, rec["error"])
        assert 0.0 <= rec["metrics"]["accuracy"] <= 1.0
        assert rec["total_params"] > 0
    assert by[("resnet:resnet18", "finetune")]["trainable_params"] == 11_176_512 + 512 * 10 + 10
    assert by[(f"clip:{tiny_clip}", "zero-shot")]["trainable_params"] == 0

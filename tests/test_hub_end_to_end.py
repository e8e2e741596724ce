"""``bench run --encoders clip,dinov2`` end to end against a hub on 127.0.0.1 (tests/hub_emulator.py).

The emulator serves files built here from the real model classes with random values, in the
layout of the real hub repositories: open_clip's whole ``ViT-B-32`` as
``open_clip_model.safetensors`` + ``open_clip_config.json`` (laion/CLIP-ViT-B-32-laion2B-s34B-b79K),
and timm's own hub export (``timm.models.save_for_hf``: ``model.safetensors`` or
``pytorch_model.bin`` + ``config.json``) of ``vit_small_patch14_dinov2.lvd142m`` and
``resnet18.a1_in1k``. Real sizes (ViT-B/32, the smallest real open_clip ViT, has 151M
parameters), so the grids run on a 20-image subset of ``digits`` with one zero-shot template,
each family at its lowest resolution (``--resolution clip=32,dinov2=28``: the only side ViT-B/32
and ViT-S/14 share is 224, where ``clip,dinov2`` took over 20 minutes on this project's 2-core
machine). The design card's ``--encoders clip,dinov2`` runs as one run, online then offline; the
four families together are run to the point where each must have its weights (the failure tests).
"""

from __future__ import annotations

import dataclasses
import json
import time

import numpy as np
import pytest
import torch
from hub_emulator import Hub

import bench
from bench.cli import main
from bench.plugins import load_plugins

CLIP_REPO = "laion/CLIP-ViT-B-32-laion2B-s34B-b79K"
DINO_ARCH = "vit_small_patch14_dinov2.lvd142m"
DINO_REPO = f"timm/{DINO_ARCH}"
R18_REPO = "timm/resnet18.a1_in1k"
#: dinov2:vitb14's repository, served with a v1.0 tag only: ``main`` is a bad revision there.
DINO_B_REPO = "timm/vit_base_patch14_dinov2.lvd142m"


class MiniDigits:
    """digits-mini: 1 train and 1 test image of each digit from the built-in ``digits``."""

    @staticmethod
    @bench.hookimpl
    def bench_register_tasks():
        from bench.specs import TaskSpec

        def load(request):
            full = request.resolve("digits")

            def first(split, k):
                return split.subset([int(i) for c in range(10) for i in np.flatnonzero(split.labels == c)[:k]])

            return dataclasses.replace(full, train=first(full.train, 1), test=first(full.test, 1))

        return [TaskSpec(name="digits-mini", description="20 images of digits", loader=load,
                         dataset=("uci-digits",), native_size=8)]


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    import open_clip
    import timm
    from safetensors.torch import save_file
    from timm.models import save_for_hf

    root = tmp_path_factory.mktemp("hub-files")
    torch.manual_seed(0)
    clip = open_clip.create_model("ViT-B-32", pretrained=None)
    (root / "clip").mkdir()
    state = {k: v.contiguous() for k, v in clip.state_dict().items()}
    save_file(state, str(root / "clip" / "open_clip_model.safetensors"))
    pcfg = open_clip.get_pretrained_cfg("ViT-B-32", "laion2b_s34b_b79k")
    preprocess = {k: pcfg[k] for k in ("mean", "std", "interpolation", "resize_mode")}
    (root / "clip" / "open_clip_config.json").write_text(json.dumps(
        {"model_cfg": open_clip.get_model_config("ViT-B-32"), "preprocess_cfg": preprocess}))
    save_for_hf(timm.create_model(DINO_ARCH, pretrained=False), str(root / "dino"), safe_serialization=True)
    save_for_hf(timm.create_model("resnet18.a1_in1k", pretrained=False), str(root / "r18"))  # .bin only
    with Hub() as h:
        h.add(CLIP_REPO, {f: root / "clip" / f for f in ("open_clip_model.safetensors", "open_clip_config.json")})
        h.add(DINO_REPO, {f: root / "dino" / f for f in ("model.safetensors", "config.json")})
        h.add(R18_REPO, {f: root / "r18" / f for f in ("pytorch_model.bin", "config.json")})
        h.add(DINO_B_REPO, {"config.json": root / "dino" / "config.json"}, revisions=("v1.0",))
        h.served = root  # type: ignore[attr-defined]
        yield h


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("hf-cache")


def use_hub(monkeypatch, endpoint, cache, offline=False):
    """HF_ENDPOINT at the emulator, a private hub cache, and huggingface_hub's offline switch."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setenv("HF_HOME", str(cache))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", offline)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1" if offline else "0")
    monkeypatch.delenv("BENCH_OFFLINE", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(cache / "torch"))
    monkeypatch.setattr("bench.plugins.load_plugins", lambda: load_plugins(extra=[("mini", MiniDigits)]))


def bench_run(capsys, out, encoders, *extra, resolution=224):
    start = time.perf_counter()
    rc = main(["run", "--encoders", encoders, "--strategies", "linear-probe,zero-shot", "--tasks", "digits-mini",
               "--budgets", "1", "--seeds", "1", "--resolution", str(resolution), "--device", "cpu", "--no-progress",
               "--no-contamination", "--set", "zero-shot.templates=single", "--out", str(out), *extra])
    err = capsys.readouterr().err
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()] \
        if (out / "results.jsonl").exists() else []
    return rc, err, records, time.perf_counter() - start


FAMILIES = {"clip": (CLIP_REPO, "open_clip_model.safetensors", 32), "dinov2": (DINO_REPO, "model.safetensors", 28)}


def test_the_design_cards_command_runs_from_the_hub_then_offline_from_the_cache(hub, monkeypatch, capsys, tmp_path):
    """``bench run --encoders clip,dinov2`` in one run, each family at its own side (``--resolution
    clip=32,dinov2=28``: ViT-B/32 and ViT-S/14 share no side below 224), through the mirror, then offline."""
    import open_clip
    from timm.models import get_pretrained_cfg

    cache = tmp_path / "hf-cache"  # its own: an earlier test's downloads would hide the fetch
    use_hub(monkeypatch, hub.endpoint, cache)
    sides = ",".join(f"{name}={side}" for name, (_, _, side) in FAMILIES.items())
    rc, err, online, took = bench_run(capsys, tmp_path / "online", "clip,dinov2", resolution=sides)
    assert rc == 0, err
    by = {(r["encoder"], r["strategy"]): r for r in online}
    assert {k: r["status"] for k, r in by.items()} == {
        ("clip", "linear-probe"): "ok", ("clip", "zero-shot"): "ok",
        ("dinov2", "linear-probe"): "ok", ("dinov2", "zero-shot"): "skipped"}
    for encoder, (repo, file, resolution) in FAMILIES.items():
        # both fetched up front (the failure tests below show it is before any cell); the cells then found
        # the file in the cache, and say where it came from
        assert f"weights for {encoder}: fetching {repo}/{file}" in err
        probe = by[(encoder, "linear-probe")]
        assert probe["encoder_info"]["weights_source"] == {
            "origin": "cache", "repo": repo, "file": file, "revision": hub.repos[repo].revisions["main"],
            "endpoint": hub.endpoint, "url": None}
        assert ("HEAD", f"/{repo}/resolve/main/{file}") in hub.requests  # the bytes come from the "CDN" (/lfs/)
        assert ("GET", f"/lfs/{hub.repos[repo].sha256[file]}") in hub.requests
        # the preprocessing the encoder reports is the library's own pretrained config, at its own side
        want = (open_clip.get_pretrained_cfg("ViT-B-32", "laion2b_s34b_b79k") if encoder == "clip"
                else get_pretrained_cfg(DINO_ARCH).to_dict())
        summary = probe["config_summary"]
        assert summary["encoder.mean"] == pytest.approx(list(want["mean"]))
        assert summary["encoder.std"] == pytest.approx(list(want["std"]))
        assert summary["encoder.interpolation"] == want["interpolation"] == "bicubic"
        assert summary["encoder.input_size"] == probe["encoder_info"]["resolution"] == resolution
    served = json.loads((hub.served / "clip" / "open_clip_config.json").read_text())["preprocess_cfg"]
    assert served["mean"] == pytest.approx(by[("clip", "linear-probe")]["config_summary"]["encoder.mean"])
    # a CPU estimate for the large one (CLIP's 88M-parameter image tower), none for ViT-S/14
    assert "estimate: clip on the CPU encodes" in err and "estimate: dinov2" not in err

    # the same grid offline: from the cache, no request to the hub, the same cells and numbers
    seen = len(hub.requests)
    use_hub(monkeypatch, hub.endpoint, cache, offline=True)
    rc, err, offline, _ = bench_run(capsys, tmp_path / "offline", "clip,dinov2", resolution=sides)
    assert rc == 0, err
    assert len(hub.requests) == seen and len(offline) == len(online) == 4
    for rec in offline:
        first = by[(rec["encoder"], rec["strategy"])]
        assert (rec["cell_id"], rec["metrics"], rec["encoder_info"]) == (
            first["cell_id"], first["metrics"], first["encoder_info"]), rec["strategy"]


def test_a_missing_safetensors_falls_back_to_the_bin(hub, tmp_path, monkeypatch):
    from bench.specs import EncoderRequest
    from bench.weights import load_checkpoint
    from bench_plugins.encoders import _resnet

    use_hub(monkeypatch, hub.endpoint, tmp_path / "hf")
    enc = _resnet.load(EncoderRequest(name="resnet", variant="resnet18", resolution=32))
    assert enc.weights_source["file"] == "pytorch_model.bin" and enc.weights_source["repo"] == R18_REPO
    asked = [p for m, p in hub.requests if m == "HEAD" and p.startswith(f"/{R18_REPO}/")]
    assert asked[-2:] == [f"/{R18_REPO}/resolve/main/model.safetensors", f"/{R18_REPO}/resolve/main/pytorch_model.bin"]
    served = load_checkpoint(hub.served / "r18" / "pytorch_model.bin")
    assert torch.equal(enc.module.conv1.weight, served["conv1.weight"])


@pytest.mark.parametrize("encoder,wanted,answer", [
    ("vit", "timm/vit_base_patch16_224.augreg2_in21k_ft_in1k/model.safetensors", "HTTP 404 RepoNotFound"),
    ("dinov2:vitb14", f"{DINO_B_REPO}/model.safetensors", "HTTP 404 RevisionNotFound (Invalid rev id: main)"),
])
def test_missing_repository_or_revision_is_one_line_within_seconds_before_any_cell(
        hub, tmp_path, monkeypatch, capsys, encoder, wanted, answer):
    use_hub(monkeypatch, hub.endpoint, tmp_path / "hf")
    rc, err, records, took = bench_run(capsys, tmp_path / "run", encoder)
    base = encoder.split(":")[0]
    repo, _, file = wanted.rpartition("/")
    assert rc == 2 and records == [] and took < 10, (err, took)
    [line] = [x for x in err.strip().splitlines() if x.startswith("bench: error:")]
    assert err.strip().endswith(line)
    assert line.startswith(f"bench: error: encoder '{encoder}': weights {wanted} ")
    assert f"{hub.endpoint} answered {repo}: {answer}" in line
    assert f"--weights {base}=" in line and "HF_ENDPOINT" in line and f"hf download {repo} {file}" in line


def test_all_four_families_fail_within_seconds_naming_every_file_to_fetch(hub, shared_cache, tmp_path, monkeypatch,
                                                                           capsys):
    use_hub(monkeypatch, hub.endpoint, shared_cache)
    rc, err, records, took = bench_run(capsys, tmp_path / "run", "clip,dinov2,vit,resnet")
    [line] = [x for x in err.strip().splitlines() if x.startswith("bench: error:")]
    assert rc == 2 and records == [] and took < 30, (err, took)
    assert line.startswith("bench: error: 2 encoders lack weights: encoder 'vit': ")
    assert "hf download timm/vit_base_patch16_224.augreg2_in21k_ft_in1k model.safetensors" in line
    assert "| encoder 'resnet': " in line and "hf download timm/resnet50.a1_in1k model.safetensors" in line
    # a mirror is set: the non-hub URLs (timm's GitHub release of resnet50) are not tried
    assert "github.com" not in line

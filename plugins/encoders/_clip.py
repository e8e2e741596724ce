"""Loader of the ``clip`` family (registered in :mod:`bench_plugins.encoders.clip`): an open_clip
model's image tower as the backbone, its text tower as ``encode_text`` for zero-shot.

See the registration module for the variants and what ``--weights clip=PATH`` accepts.
"""

from __future__ import annotations

import logging
from typing import Any

import open_clip
import torch
from open_clip.convert import convert_state_dict
from open_clip.model import convert_to_custom_text_state_dict, resize_pos_embed, resize_text_pos_embed

from bench.encoders import Encoder, check_patch_multiple
from bench.errors import UserError
from bench.specs import EncoderRequest
from bench.weights import Resolved, WeightSource, load_checkpoint, load_into, resolve_source
from bench_plugins.encoders.clip import parse_variant, pretraining_data_of


def _hf_files(hf_hub: str) -> list[tuple[str, str]]:
    """open_clip's ``hf_hub`` field (``org/repo/`` or ``org/repo/file``) -> (repo, file) candidates."""
    parts = [p for p in hf_hub.split("/") if p]
    if len(parts) < 2:
        return []
    repo = "/".join(parts[:2])
    if len(parts) > 2:
        name = "/".join(parts[2:])
        stem = name.rsplit(".", 1)[0]
        return [(repo, stem + ".safetensors"), (repo, name)] if not name.endswith(".safetensors") else [(repo, name)]
    return [(repo, "open_clip_model.safetensors"), (repo, "open_clip_pytorch_model.bin")]


def _to_open_clip_layout(model: Any, sd: dict) -> dict:
    """Third-party layouts -> open_clip's, and position embeddings resampled to this model's size."""
    sd = convert_state_dict(model, dict(sd))
    if "positional_embedding" in sd and not hasattr(model, "positional_embedding"):
        sd = convert_to_custom_text_state_dict(sd)
    resize_pos_embed(sd, model)
    resize_text_pos_embed(sd, model)
    return sd


def _visual_layout(visual: Any) -> tuple[list[list[str]], list[str], list[str], bool, int | None]:
    """(layer groups, LoRA targets, adapter targets, is_vit, patch size) of an open_clip image tower."""
    own = [k.split(".")[0] for k, _ in visual.named_parameters()]
    if hasattr(visual, "transformer") and hasattr(visual.transformer, "resblocks"):
        n = len(visual.transformer.resblocks)
        stem = [p for p in ("conv1", "class_embedding", "positional_embedding", "ln_pre") if p in own]
        tail = [p for p in ("attn_pool", "ln_post", "proj") if p in own]
        blocks = [f"transformer.resblocks.{i}" for i in range(n)]
        patch = visual.conv1.kernel_size[0]
        # nn.MultiheadAttention uses its projection weights directly (out_proj's forward is never
        # called), so LoRA must wrap the attention module as a whole (peft supports it).
        return [stem, *[[b] for b in blocks], tail], ["attn"], blocks, True, int(patch)
    if hasattr(visual, "layer4") and hasattr(visual, "attnpool"):  # ModifiedResNet
        stem = [p for p in ("conv1", "bn1", "conv2", "bn2", "conv3", "bn3") if p in own]
        stages = ["layer1", "layer2", "layer3", "layer4"]
        return [stem, *[[s] for s in stages], ["attnpool"]], ["conv1", "conv2", "conv3"], stages, False, None
    # timm-backed towers and others: one group per top-level child, in definition order
    children = [name for name, m in visual.named_children() if any(True for _ in m.parameters())]
    return [[c] for c in children], [], [], False, None


def _check_size(name: str, model_name: str, size: int | None) -> None:
    if size is None:
        return
    vision = (open_clip.get_model_config(model_name) or {}).get("vision_cfg", {})
    if isinstance(vision.get("layers"), (list, tuple)):  # ModifiedResNet: attention pool over a /32 grid
        if size % 32:
            raise UserError(f"encoder {name!r}: input size {size} must be a multiple of 32 for this ResNet; "
                            f"use --resolution {max(32, size // 32 * 32)}")
    elif vision.get("timm_model_name"):
        raise UserError(f"encoder {name!r}: a timm-backed open_clip image tower keeps its own input size; "
                        "drop --resolution")
    else:
        check_patch_multiple(name, size, vision.get("patch_size"))


def _checked(request: EncoderRequest) -> tuple[str, str | None, str, dict[str, Any]]:
    """(model, tag, display name, open_clip's pretrained config) of a request; unknown names are user errors."""
    model_name, tag = parse_variant(request.variant)
    display = f"clip:{request.variant}" if request.variant else "clip"
    if model_name not in open_clip.list_models():
        raise UserError(f"unknown open_clip model {model_name!r} in encoder {display!r}; "
                        "see open_clip.list_models(), e.g. clip:ViT-B-16/openai")
    pcfg = open_clip.get_pretrained_cfg(model_name, tag) if tag else {}
    if request.pretrained and not request.weights:
        if not tag or not pcfg:
            known = ", ".join(open_clip.list_pretrained_tags_by_model(model_name)) or "none"
            raise UserError(f"encoder {display!r}: {'no' if not tag else 'unknown'} pretrained tag for {model_name} "
                            f"(known: {known}); use clip:{model_name}/TAG or --weights clip=PATH")
    return model_name, tag, display, dict(pcfg)


def weights_source(request: EncoderRequest) -> WeightSource:
    """Where a ``MODEL/TAG``'s whole-model checkpoint lives, from open_clip's pretrained table (the
    one resolver that imports its library: open_clip's table is code): the hub repository's
    ``open_clip_model.safetensors`` then ``open_clip_pytorch_model.bin``, then open_clip's URL
    (not OpenAI's TorchScript archives, which ``weights_only=True`` cannot read)."""
    model_name, tag, display, pcfg = _checked(request)
    urls = [pcfg["url"]] if pcfg.get("url") and "openaipublic" not in pcfg["url"] else []
    return WeightSource(encoder=display, tag=f"{model_name}/{tag}", hf=_hf_files(pcfg.get("hf_hub", "")),
                        urls=urls, url_dirs=("~/.cache/clip",))


def _text_tower(model: Any) -> torch.nn.Module:
    """Everything of an open_clip model but its image tower, sharing its tensors (fingerprinted)."""
    text = torch.nn.Module()
    for name, child in model.named_children():
        if name != "visual":
            text.add_module(name, child)
    for name, p in model.named_parameters(recurse=False):
        text.register_parameter(name, p)
    for name, b in model.named_buffers(recurse=False):
        text.register_buffer(name, b)
    return text


def load(request: EncoderRequest) -> Encoder:
    model_name, tag, display, pcfg = _checked(request)
    _check_size(display, model_name, request.resolution)
    resolved = weights = None
    if request.pretrained:  # find the weights first: offline and uncached fails before any model is built
        if request.weights:
            resolved, weights = Resolved(request.weights, "file"), request.weights
        else:
            resolved, weights = resolve_source(weights_source(request)), f"open_clip {model_name}/{tag}"
    kwargs: dict[str, Any] = {}
    if request.resolution:
        kwargs["force_image_size"] = int(request.resolution)
    if pcfg.get("quick_gelu"):
        kwargs["force_quick_gelu"] = True
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)  # open_clip warns "initialized randomly": we load weights next
    try:
        model = open_clip.create_model(model_name, pretrained=None, **kwargs)
    finally:
        logging.disable(previous)
    if resolved is not None:
        sd = _to_open_clip_layout(model, load_checkpoint(resolved.path))
        load_into(model, sd, source=f"{resolved.path!r} for encoder {display!r} (expects an open_clip checkpoint)")
    model.eval().to(request.device)
    tokenizer = open_clip.get_tokenizer(model_name)

    @torch.no_grad()
    def encode_text(texts: list[str]) -> torch.Tensor:
        """L2-normalised text embeddings ``[N, D]`` (float32, on the CPU)."""
        device = next(model.parameters()).device
        chunks = [model.encode_text(tokenizer(texts[i:i + 256]).to(device), normalize=True).float().cpu()
                  for i in range(0, len(texts), 256)]
        return torch.cat(chunks) if chunks else torch.zeros((0, feature_dim))

    visual = model.visual
    groups, lora, adapters, is_vit, patch = _visual_layout(visual)
    size = visual.image_size if hasattr(visual, "image_size") else (request.resolution or 224)
    size = int(size[0] if isinstance(size, (tuple, list)) else size)
    text_params = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("visual."))
    mean = pcfg.get("mean") or getattr(visual, "image_mean", None) or open_clip.OPENAI_DATASET_MEAN
    std = pcfg.get("std") or getattr(visual, "image_std", None) or open_clip.OPENAI_DATASET_STD
    feature_dim = int(open_clip.get_model_config(model_name)["embed_dim"])
    return Encoder(
        name=display,
        module=visual,
        feature_dim=feature_dim,
        input_size=size,
        mean=tuple(float(v) for v in mean),
        std=tuple(float(v) for v in std),
        interpolation=str(pcfg.get("interpolation", "bicubic")),
        variant=request.variant,
        pretrained=bool(request.pretrained),
        pretraining_data=tuple(pretraining_data_of(tag)) if request.pretrained else (),
        weights=weights,
        license="mit",
        layer_groups=groups,
        lora_targets=lora,
        adapter_targets=adapters,
        is_vit=is_vit,
        patch_size=patch,
        encode_text=encode_text,
        text_module=_text_tower(model),
        weights_source=resolved.record() if resolved is not None else None,
        extra={"library": "open_clip", "model": model_name, "pretrained_tag": tag,
               "logit_scale": float(model.logit_scale.detach().exp()), "text_params": int(text_params)},
    )

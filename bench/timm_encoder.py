"""Wrap a timm model as a :class:`bench.encoders.Encoder`: the public builder for timm-based encoder plugins.

The built-in ``vit``, ``dinov2`` and ``resnet`` families use it, and a third-party plugin can too;
each family keeps its own variant table in its plugin. timm is imported only when a function
here runs, so a registration module may import this one.

- :func:`timm_source`: where timm keeps a tagged architecture's weights (hub repo, files, URL).
- :func:`timm_encoder`: build the model, load its weights (``--weights``, caches, hub), wrap it.
- :func:`timm_vit_encoder` with :func:`vit_layer_groups` / :func:`vit_blocks`: the same for ViTs.
- :func:`pick_variant`, :func:`display_name`: a family's variant lookup and its display name.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

from bench.encoders import Encoder, check_patch_multiple
from bench.errors import UserError
from bench.specs import EncoderRequest
from bench.weights import TIMM_HF_FILES, Resolved, WeightSource, load_checkpoint, load_into, resolve_source

#: LoRA on the attention projections of timm ViTs (``blocks.N.attn.qkv`` / ``.attn.proj``); the
#: ``attn.`` prefix keeps ``patch_embed.proj`` (a convolution) out.
VIT_LORA_TARGETS = ("attn.qkv", "attn.proj")


def timm_source(encoder: str, arch: str) -> WeightSource:
    """Where timm keeps ``arch``'s weights, read from its pretrained config (no model is built)."""
    from timm.models import get_pretrained_cfg

    pretrained = get_pretrained_cfg(arch)
    if pretrained is None:
        raise UserError(f"encoder {encoder!r}: timm has no pretrained config for {arch!r}")
    cfg = pretrained.to_dict()
    cfg.setdefault("architecture", arch.split(".")[0])
    hf_id = cfg.get("hf_hub_id")
    hf_files = [cfg["hf_hub_filename"]] if cfg.get("hf_hub_filename") else list(TIMM_HF_FILES)
    tag = hf_id or f"{cfg.get('architecture')}.{cfg.get('tag')}"
    return WeightSource(encoder=encoder, tag=tag, hf=[(hf_id, f) for f in hf_files] if hf_id else [],
                        urls=[cfg["url"]] if cfg.get("url") else [])


def _rgb(values: Sequence[float]) -> tuple[float, float, float]:
    r, g, b = (float(v) for v in values)
    return r, g, b


def _checkpoint_filter(model: Any) -> Callable[[dict], dict]:
    """The model family's own checkpoint filter (pos-embed resampling, DINOv2/npz conversions)."""
    module = importlib.import_module(type(model).__module__)
    fn = getattr(module, "checkpoint_filter_fn", None)
    return (lambda sd: fn(sd, model)) if fn is not None else (lambda sd: sd)


def timm_encoder(
    family: str,
    arch: str,
    request: EncoderRequest,
    *,
    input_size: int,
    is_vit: bool,
    pretraining_data: Sequence[str],
    license: str,
    layer_groups_fn: Callable[[Any], list[list[str]]],
    lora_targets: Sequence[str] | Callable[[Any], list[str]],
    adapter_targets_fn: Callable[[Any], list[str]],
    display_name: str | None = None,
    source: WeightSource | None = None,
) -> Encoder:
    """Build a timm model as a ``[B, 3, S, S] -> [B, D]`` :class:`bench.encoders.Encoder`.

    ``arch`` is a timm name with its pretrained tag (``resnet50.a1_in1k``). The classifier is
    removed (``num_classes=0``); ViTs are built at ``request.resolution`` (or ``input_size``)
    and a checkpoint's position embeddings are resampled by the family's own filter. ``source``
    says where the weights are (default: :func:`timm_source`, from timm's pretrained config).
    """
    import timm

    name = display_name or family
    size = int(request.resolution or input_size)
    kwargs: dict[str, Any] = {"num_classes": 0}
    if is_vit:
        kwargs["img_size"] = size
    resolved = weights = None
    if request.pretrained:  # find the weights first: offline and uncached fails before any model is built
        src = source or timm_source(name, arch)
        resolved = Resolved(request.weights, "file") if request.weights else resolve_source(src)
        weights = request.weights or src.tag
    model: Any = timm.create_model(arch, pretrained=False, **kwargs)
    patch = None
    if is_vit:
        patch = int(model.patch_embed.patch_size[0])
        check_patch_multiple(name, size, patch)
    if resolved is not None:
        sd = _checkpoint_filter(model)(load_checkpoint(resolved.path))
        classifier = model.pretrained_cfg.get("classifier") or "head"
        load_into(model, sd, source=f"{resolved.path!r} for encoder {name!r}", ignore=(f"{classifier}.",))
    cfg = model.pretrained_cfg
    return Encoder(
        name=name,
        module=model,
        feature_dim=int(model.num_features),
        input_size=size,
        mean=_rgb(cfg.get("mean", (0.485, 0.456, 0.406))),
        std=_rgb(cfg.get("std", (0.229, 0.224, 0.225))),
        interpolation=str(cfg.get("interpolation", "bicubic")),
        variant=request.variant,
        pretrained=bool(request.pretrained),
        pretraining_data=tuple(pretraining_data) if request.pretrained else (),
        weights=weights,
        license=license,
        layer_groups=layer_groups_fn(model),
        lora_targets=list(lora_targets(model) if callable(lora_targets) else lora_targets),
        adapter_targets=adapter_targets_fn(model),
        is_vit=is_vit,
        patch_size=patch,
        extra={"arch": arch, "library": "timm"},
        weights_source=resolved.record() if resolved is not None else None,
    )


def pick_variant(family: str, table: dict[str, Any], request: EncoderRequest, default: str,
                 known: Any = None) -> tuple[str, Any]:
    """``(variant, table[variant])`` for the request (the default when none is given); an unknown
    variant is a user error listing the known ones."""
    variant = request.variant or default
    if variant not in table:
        raise UserError(f"unknown {family} variant {variant!r}; known: {', '.join(sorted(known or table))}")
    return variant, table[variant]


def display_name(family: str, request: EncoderRequest) -> str:
    """``family:variant`` as the user typed it, or the bare family name."""
    return f"{family}:{request.variant}" if request.variant else family


def vit_layer_groups(model: Any) -> list[list[str]]:
    """timm ViT: embeddings (patch, cls/register tokens, position), each block, final norms."""
    own = {k.split(".")[0] for k, _ in model.named_parameters()}
    stem = [p for p in ("patch_embed", "cls_token", "reg_token", "pos_embed", "norm_pre") if p in own]
    tail = [p for p in ("norm", "fc_norm", "attn_pool") if p in own]
    return [stem, *[[f"blocks.{i}"] for i in range(len(model.blocks))], tail]


def vit_blocks(model: Any) -> list[str]:
    """A timm ViT's blocks by name (where adapters go)."""
    return [f"blocks.{i}" for i in range(len(model.blocks))]


def timm_vit_encoder(family: str, arch: str, request: EncoderRequest, input_size: int,
                     pretraining_data: Sequence[str], source: WeightSource | None = None) -> Encoder:
    """A timm ViT (the ``vit`` and ``dinov2`` families): CLS features, per-block layer groups,
    LoRA on attention, adapters after blocks."""
    return timm_encoder(
        family, arch, request, input_size=input_size, is_vit=True, pretraining_data=pretraining_data,
        license="apache-2.0", layer_groups_fn=vit_layer_groups, lora_targets=VIT_LORA_TARGETS,
        adapter_targets_fn=vit_blocks, display_name=display_name(family, request), source=source,
    )

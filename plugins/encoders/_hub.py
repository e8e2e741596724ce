"""Where an encoder's weights come from, shared by the resnet, vit, clip and dinov2 plugins.

Order: ``--weights NAME=PATH`` (the caller checks it first) > the local caches (the Hugging Face
hub cache, the torch hub cache, open_clip's ``~/.cache/clip``) > a download when online.

Hub clients retry for about 50 seconds before admitting there is no network, so this module
never hands an uncached file to them blind: with ``HF_HUB_OFFLINE``/``BENCH_OFFLINE`` set, or
when a 3-second connection check to the host fails, it raises a :class:`UserError` at once,
naming the encoder, the weights tag and the ``--weights`` flag.

Also here: :func:`timm_encoder`, the one loader behind the three timm-based families.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import UserError
from bench.weights import hub_offline

#: Seconds the connectivity check may take before the network counts as absent.
CONNECT_TIMEOUT_S = 3.0
#: timm's file names on the Hugging Face hub, safest format first.
TIMM_HF_FILES = ("model.safetensors", "pytorch_model.bin")
#: Checkpoint formats ``bench.weights.load_checkpoint`` reads (``weights_only=True``).
LOADABLE_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")


@dataclass(frozen=True)
class WeightSource:
    """Where one set of weights lives: Hugging Face files and/or plain URLs (torch hub cache)."""

    encoder: str  # what the user typed, e.g. "dinov2:vitb14" (used in messages)
    tag: str  # e.g. "timm/vit_base_patch14_dinov2.lvd142m"
    hf: Sequence[tuple[str, str]] = ()  # (repo id, file name), preferred first
    urls: Sequence[str] = ()
    #: Extra folders that may already hold a URL's file (open_clip caches in ~/.cache/clip).
    url_dirs: Sequence[str] = field(default_factory=tuple)


def missing_message(src: WeightSource, why: str) -> str:
    base = src.encoder.split(":")[0]
    return (
        f"encoder {src.encoder!r}: weights {src.tag!r} are not in the local caches and {why}; "
        f"pass a local checkpoint with --weights NAME=PATH (here: --weights {base}=/path/to/weights.safetensors), "
        "or run once with network access to fill the cache"
    )


def _torch_hub_checkpoints() -> Path:
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def find_cached(src: WeightSource) -> str | None:
    """A local file holding ``src``'s weights, or None. Never touches the network."""
    if src.hf:
        from huggingface_hub import try_to_load_from_cache

        for repo, filename in src.hf:
            hit = try_to_load_from_cache(repo_id=repo, filename=filename)
            if isinstance(hit, str) and os.path.isfile(hit):
                return hit
    for url in src.urls:
        name = os.path.basename(url.split("?")[0])
        if not name.endswith(LOADABLE_SUFFIXES):
            continue
        for folder in (_torch_hub_checkpoints(), *map(Path, src.url_dirs)):
            candidate = Path(folder).expanduser() / name
            if candidate.is_file():
                return str(candidate)
    return None


def reachable(host: str, port: int = 443, timeout: float = CONNECT_TIMEOUT_S) -> bool:
    """Whether ``https://host:port/`` answers an HTTP request within ``timeout`` seconds.

    A bare TCP connect is not enough (sandboxes and proxies accept connections they cannot
    serve), so this needs a TLS handshake and an HTTP status (any status counts). It runs in a
    daemon thread, so a hanging resolver cannot hold the caller longer than ``timeout``.
    """
    import urllib.error
    import urllib.request

    ok: list[bool] = []

    def attempt() -> None:
        try:
            urllib.request.urlopen(urllib.request.Request(f"https://{host}:{port}/", method="HEAD"),
                                   timeout=timeout).close()
            ok.append(True)
        except urllib.error.HTTPError:
            ok.append(True)  # the server answered
        except Exception:
            pass

    t = threading.Thread(target=attempt, daemon=True)
    t.start()
    t.join(timeout)
    return bool(ok)


def _host(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0]


def resolve(src: WeightSource) -> str:
    """Path of a local file with ``src``'s weights: cached, else downloaded; fails fast offline."""
    cached = find_cached(src)
    if cached is not None:
        return cached
    if hub_offline():
        raise UserError(missing_message(src, "the network is off (HF_HUB_OFFLINE or BENCH_OFFLINE is set)"))
    host = "huggingface.co" if src.hf else _host(next(iter(src.urls), "https://huggingface.co"))
    if not reachable(host):
        raise UserError(missing_message(src, f"{host} cannot be reached (no network?)"))
    errors = []
    if src.hf:
        from huggingface_hub import hf_hub_download

        for repo, filename in src.hf:
            try:
                return hf_hub_download(repo_id=repo, filename=filename)
            except Exception as exc:  # try the next file name / source
                errors.append(f"{repo}/{filename}: {type(exc).__name__}")
    for url in src.urls:
        name = os.path.basename(url.split("?")[0])
        if not name.endswith(LOADABLE_SUFFIXES):
            continue
        import torch

        target = _torch_hub_checkpoints() / name
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            torch.hub.download_url_to_file(url, str(target), progress=True)
            return str(target)
        except Exception as exc:
            errors.append(f"{url}: {type(exc).__name__}")
    raise UserError(missing_message(src, f"the download failed ({'; '.join(errors) or 'no loadable source'})"))


# -- timm-based families (resnet, vit, dinov2) ---------------------------------------------------


def _timm_sources(encoder: str, arch: str) -> WeightSource:
    """Where timm keeps ``arch``'s weights, read from its pretrained config (no model is built)."""
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(arch).to_dict()
    cfg.setdefault("architecture", arch.split(".")[0])
    hf_id = cfg.get("hf_hub_id")
    hf_files = [cfg["hf_hub_filename"]] if cfg.get("hf_hub_filename") else list(TIMM_HF_FILES)
    tag = hf_id or f"{cfg.get('architecture')}.{cfg.get('tag')}"
    return WeightSource(
        encoder=encoder,
        tag=tag,
        hf=[(hf_id, f) for f in hf_files] if hf_id else [],
        urls=[cfg["url"]] if cfg.get("url") else [],
    )


def _timm_filter(model: Any):
    """The model family's own checkpoint filter (pos-embed resampling, DINOv2/npz conversions)."""
    import importlib

    module = importlib.import_module(type(model).__module__)
    fn = getattr(module, "checkpoint_filter_fn", None)
    return (lambda sd: fn(sd, model)) if fn is not None else (lambda sd: sd)


def check_patch_multiple(encoder: str, size: int, patch: int | None) -> None:
    if patch and size % patch:
        lower, upper = size // patch * patch, -(-size // patch) * patch
        hint = f"--resolution {upper}" if lower == 0 else f"--resolution {lower} or {upper}"
        raise UserError(f"encoder {encoder!r}: input size {size} is not a multiple of its patch size {patch}; use {hint}")


def timm_encoder(
    family: str,
    arch: str,
    request: Any,
    *,
    input_size: int,
    is_vit: bool,
    pretraining_data: Sequence[str],
    license: str,
    layer_groups_fn,
    lora_targets: Sequence[str] | Any,
    adapter_targets_fn,
    display_name: str | None = None,
) -> Any:
    """Build a timm model as a ``[B, 3, S, S] -> [B, D]`` :class:`bench.encoders.Encoder`.

    ``arch`` is a timm name with its pretrained tag (``resnet50.a1_in1k``). The classifier is
    removed (``num_classes=0``); ViTs are built at ``request.resolution`` (or ``input_size``)
    and a checkpoint's position embeddings are resampled by the family's own filter.
    """
    import timm

    from bench.encoders import Encoder
    from bench.weights import load_checkpoint, load_into

    name = display_name or family
    size = int(request.resolution or input_size)
    kwargs: dict[str, Any] = {"num_classes": 0}
    if is_vit:
        kwargs["img_size"] = size
    path = weights = None
    if request.pretrained:  # find the weights first: offline and uncached fails before any model is built
        src = _timm_sources(name, arch)
        path = request.weights or resolve(src)
        weights = request.weights or src.tag
    model = timm.create_model(arch, pretrained=False, **kwargs)
    patch = None
    if is_vit:
        patch = int(model.patch_embed.patch_size[0])
        check_patch_multiple(name, size, patch)
    if path is not None:
        sd = _timm_filter(model)(load_checkpoint(path))
        classifier = model.pretrained_cfg.get("classifier") or "head"
        load_into(model, sd, source=f"{path!r} for encoder {name!r}", ignore=(f"{classifier}.",))
    cfg = model.pretrained_cfg
    return Encoder(
        name=name,
        module=model,
        feature_dim=int(model.num_features),
        input_size=size,
        mean=tuple(float(v) for v in cfg.get("mean", (0.485, 0.456, 0.406))),
        std=tuple(float(v) for v in cfg.get("std", (0.229, 0.224, 0.225))),
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
    )


def pick_variant(family: str, table: dict[str, Any], request: Any, default: str, known: Any = None) -> tuple[str, Any]:
    """``(variant, table[variant])`` for the request (the default when none is given); an unknown
    variant is a user error listing the known ones."""
    from bench.errors import UserError

    variant = request.variant or default
    if variant not in table:
        raise UserError(f"unknown {family} variant {variant!r}; known: {', '.join(sorted(known or table))}")
    return variant, table[variant]


def display_name(family: str, request: Any) -> str:
    return f"{family}:{request.variant}" if request.variant else family


def timm_vit_encoder(family: str, arch: str, request: Any, input_size: int, pretraining_data: Any) -> Any:
    """A timm ViT (the ``vit`` and ``dinov2`` families): CLS features, per-block layer groups,
    LoRA on attention, adapters after blocks."""
    return timm_encoder(
        family, arch, request, input_size=input_size, is_vit=True, pretraining_data=pretraining_data,
        license="apache-2.0", layer_groups_fn=vit_layer_groups, lora_targets=VIT_LORA_TARGETS,
        adapter_targets_fn=vit_blocks, display_name=display_name(family, request),
    )


def vit_layer_groups(model: Any) -> list[list[str]]:
    """timm ViT: embeddings (patch, cls/register tokens, position), each block, final norms."""
    own = {k.split(".")[0] for k, _ in model.named_parameters()}
    stem = [p for p in ("patch_embed", "cls_token", "reg_token", "pos_embed", "norm_pre") if p in own]
    tail = [p for p in ("norm", "fc_norm", "attn_pool") if p in own]
    return [stem, *[[f"blocks.{i}"] for i in range(len(model.blocks))], tail]


def vit_blocks(model: Any) -> list[str]:
    return [f"blocks.{i}" for i in range(len(model.blocks))]


#: LoRA on the attention projections of timm ViTs (``blocks.N.attn.qkv`` / ``.attn.proj``); the
#: ``attn.`` prefix keeps ``patch_embed.proj`` (a convolution) out.
VIT_LORA_TARGETS = ("attn.qkv", "attn.proj")

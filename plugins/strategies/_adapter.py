"""The ``adapter`` strategy's implementation (registered in :mod:`bench_plugins.strategies.adapter`)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from bench.adaptation import fit_frozen_backbone
from bench.encoders import Encoder
from bench.errors import UserError
from bench.strategies import FitContext, Fitted
from bench_plugins.strategies.adapter import STYLES


class Bottleneck(nn.Module):
    """``up(act(down(x)))`` over the last axis (tokens) or the channel axis (``conv=True``)."""

    def __init__(self, channels: int, hidden: int, conv: bool) -> None:
        super().__init__()
        self.down: nn.Module
        self.up: nn.Conv2d | nn.Linear
        if conv:
            self.down, self.up = nn.Conv2d(channels, hidden, 1), nn.Conv2d(hidden, channels, 1)
        else:
            self.down, self.up = nn.Linear(channels, hidden), nn.Linear(hidden, channels)
        self.act = nn.GELU()
        nn.init.zeros_(self.up.weight)  # start from the pre-trained function
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.act(self.down(x)))


class After(nn.Module):
    """``y = inner(x); y + adapter(y)`` (sequential, residual). For modules that return a
    tuple (``nn.MultiheadAttention``: output, weights) the adapter acts on the first item."""

    def __init__(self, inner: nn.Module, adapter: nn.Module) -> None:
        super().__init__()
        self.inner, self.adapter = inner, adapter

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        y = self.inner(*args, **kwargs)
        if isinstance(y, tuple):
            return (y[0] + self.adapter(y[0]), *y[1:])
        return y + self.adapter(y)


class Parallel(nn.Module):
    """``inner(x) + scale * adapter(x)`` (AdaptFormer)."""

    def __init__(self, inner: nn.Module, adapter: nn.Module, scale: float) -> None:
        super().__init__()
        self.inner, self.adapter, self.scale = inner, adapter, scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x) + self.scale * self.adapter(x)


def _output_widths(module: nn.Module, names: list[str], input_size: int) -> dict[str, tuple[int, int]]:
    """Channel (CNN) or embedding (ViT) width of each named sub-module's output, from one dummy pass."""
    widths: dict[str, tuple[int, int]] = {}
    hooks = []
    subs = dict(module.named_modules())
    for name in names:
        def hook(_m: nn.Module, _inp: Any, out: Any, name: str = name) -> None:
            out = out[0] if isinstance(out, tuple) else out
            widths[name] = (out.shape[1], out.ndim) if out.ndim == 4 else (out.shape[-1], out.ndim)
        hooks.append(subs[name].register_forward_hook(hook))
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            module(torch.zeros(1, 3, input_size, input_size))
    finally:
        for h in hooks:
            h.remove()
        module.train(was_training)
    return widths


def _set_submodule(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, attr = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, attr, new)


def add_adapters(encoder: Encoder, style: str = "houlsby", reduction: int = 8, scale: float = 0.1) -> int:
    """Freeze ``encoder.module`` and insert zero-initialised adapters in place; returns how many."""
    if style not in STYLES:
        raise UserError(f"adapter: unknown adapter_style {style!r}; use one of {', '.join(STYLES)}")
    if int(reduction) < 1:
        raise UserError(f"adapter: adapter_reduction must be >= 1, got {reduction}")
    if not encoder.adapter_targets:
        raise UserError(f"adapter: encoder {encoder.name!r} declares no adapter_targets; "
                        f"use lora, bitfit or finetune")
    module = encoder.module
    subs = dict(module.named_modules())
    missing = [t for t in encoder.adapter_targets if t not in subs]
    if missing:
        raise UserError(f"adapter: encoder {encoder.name!r} has no sub-module(s) {missing} named in adapter_targets")
    for p in module.parameters():
        p.requires_grad_(False)
    # ViT blocks: adapters on their attention / MLP sub-layers; anything else: on its output.
    sites = []
    for t in encoder.adapter_targets:
        block = subs[t]
        if hasattr(block, "attn") and hasattr(block, "mlp"):
            if style == "houlsby":
                sites += [(f"{t}.attn", "after"), (f"{t}.mlp", "after")]
            else:
                sites.append((f"{t}.mlp", "parallel"))
        else:
            sites.append((t, "after"))
    widths = _output_widths(module, [s for s, _ in sites], encoder.input_size)
    for name, how in sites:
        width, ndim = widths[name]
        adapter = Bottleneck(width, max(1, width // int(reduction)), conv=ndim == 4)
        inner = module.get_submodule(name)
        wrapped = After(inner, adapter) if how == "after" else Parallel(inner, adapter, float(scale))
        _set_submodule(module, name, wrapped)
    return len(sites)


class AdapterStrategy:
    def fit(self, ctx: FitContext) -> Fitted:
        encoder = ctx.load_encoder(pretrained=True)
        torch.manual_seed(ctx.seed)  # adapters' down-projections are randomly initialised
        n = add_adapters(encoder, str(ctx.config["adapter_style"]), int(ctx.config["adapter_reduction"]),
                         float(ctx.config["adapter_scale"]))
        fitted = fit_frozen_backbone(ctx, encoder, encoder.module)
        fitted.info["adapters"] = n
        return fitted

"""``adapter``: bottleneck adapters in a frozen backbone; only the adapters and the head train.

- ViTs (each of the encoder's ``adapter_targets`` is a transformer block with ``attn`` and
  ``mlp``): ``adapter_style = "houlsby"`` (Houlsby et al. 2019) puts a residual bottleneck
  ``y + up(act(down(y)))`` on the output of the attention and of the MLP sub-layers, before each
  block's residual sum; ``"adaptformer"`` (Chen et al. 2022) adds a scaled bottleneck parallel
  to the MLP, on the MLP's (normalised) input: ``mlp(h) + s * up(act(down(h)))``.
- CNNs (any other target module, e.g. a stage): a residual 1x1-convolution bottleneck on the
  module's output feature map.

The bottleneck width is ``channels // adapter_reduction`` (at least 1). The up-projection starts
at zero, so before the first step the network computes exactly the pre-trained function. The
backbone is frozen, its BatchNorm statistics too.
"""

from __future__ import annotations

import bench
from bench.specs import StrategySpec
from bench_plugins.strategies.bitfit import PEFT_DEFAULTS

STYLES = ("houlsby", "adaptformer")


@bench.hookimpl
def bench_register_strategies():
    return [
        StrategySpec(
            name="adapter",
            description="bottleneck adapters (Houlsby/AdaptFormer for ViTs, 1x1-conv for CNNs), zero-init, backbone frozen",
            loader=lambda: AdapterStrategy(),
            kind="train",
            requires=("pretrained", "trainable"),
            defaults={**PEFT_DEFAULTS, "adapter_style": "houlsby", "adapter_reduction": 8, "adapter_scale": 0.1},
        )
    ]


def _modules():
    from torch import nn

    class Bottleneck(nn.Module):
        """``up(act(down(x)))`` over the last axis (tokens) or the channel axis (``conv=True``)."""

        def __init__(self, channels: int, hidden: int, conv: bool) -> None:
            super().__init__()
            if conv:
                self.down, self.up = nn.Conv2d(channels, hidden, 1), nn.Conv2d(hidden, channels, 1)
            else:
                self.down, self.up = nn.Linear(channels, hidden), nn.Linear(hidden, channels)
            self.act = nn.GELU()
            nn.init.zeros_(self.up.weight)  # start from the pre-trained function
            nn.init.zeros_(self.up.bias)

        def forward(self, x):
            return self.up(self.act(self.down(x)))

    class After(nn.Module):
        """``y = inner(x); y + adapter(y)`` (sequential, residual). For modules that return a
        tuple (``nn.MultiheadAttention``: output, weights) the adapter acts on the first item."""

        def __init__(self, inner: nn.Module, adapter: nn.Module) -> None:
            super().__init__()
            self.inner, self.adapter = inner, adapter

        def forward(self, *args, **kwargs):
            y = self.inner(*args, **kwargs)
            if isinstance(y, tuple):
                return (y[0] + self.adapter(y[0]), *y[1:])
            return y + self.adapter(y)

    class Parallel(nn.Module):
        """``inner(x) + scale * adapter(x)`` (AdaptFormer)."""

        def __init__(self, inner: nn.Module, adapter: nn.Module, scale: float) -> None:
            super().__init__()
            self.inner, self.adapter, self.scale = inner, adapter, scale

        def forward(self, x):
            return self.inner(x) + self.scale * self.adapter(x)

    return Bottleneck, After, Parallel


def _output_widths(module, names, input_size):
    """Channel (CNN) or embedding (ViT) width of each named sub-module's output, from one dummy pass."""
    import torch

    widths, hooks = {}, []
    subs = dict(module.named_modules())
    for name in names:
        def hook(_m, _inp, out, name=name):
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


def _set_submodule(root, name, new):
    parent_name, _, attr = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, attr, new)


def add_adapters(encoder, style: str = "houlsby", reduction: int = 8, scale: float = 0.1) -> int:
    """Freeze ``encoder.module`` and insert zero-initialised adapters in place; returns how many."""
    from bench.errors import UserError

    if style not in STYLES:
        raise UserError(f"adapter: unknown adapter_style {style!r}; use one of {', '.join(STYLES)}")
    if int(reduction) < 1:
        raise UserError(f"adapter: adapter_reduction must be >= 1, got {reduction}")
    if not encoder.adapter_targets:
        raise UserError(f"adapter: encoder {encoder.name!r} declares no adapter_targets; use lora, bitfit or finetune")
    module = encoder.module
    subs = dict(module.named_modules())
    missing = [t for t in encoder.adapter_targets if t not in subs]
    if missing:
        raise UserError(f"adapter: encoder {encoder.name!r} has no sub-module(s) {missing} named in adapter_targets")
    for p in module.parameters():
        p.requires_grad_(False)
    Bottleneck, After, Parallel = _modules()
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
        _set_submodule(module, name, After(inner, adapter) if how == "after" else Parallel(inner, adapter, float(scale)))
    return len(sites)


class AdapterStrategy:
    def fit(self, ctx):
        from bench_plugins.strategies.bitfit import fit_frozen_backbone

        encoder = ctx.load_encoder(pretrained=True)
        import torch

        torch.manual_seed(ctx.seed)  # adapters' down-projections are randomly initialised
        n = add_adapters(encoder, str(ctx.config["adapter_style"]), int(ctx.config["adapter_reduction"]),
                         float(ctx.config["adapter_scale"]))
        fitted = fit_frozen_backbone(ctx, encoder, encoder.module)
        fitted.info["adapters"] = n
        return fitted

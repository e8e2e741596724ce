"""``vpt``: visual prompt tuning (Jia et al. 2022) for timm ``VisionTransformer`` encoders.

``vpt_tokens`` (N) learnable prompt tokens join the patch tokens; ``vpt_mode = "shallow"``
inserts them once, before the first block, ``"deep"`` gives every block its own N prompts
(the previous block's prompt outputs are dropped). Prompts carry no position embedding, so they
are appended after the patch tokens (equivalent to VPT's placement after the class token: without
position embeddings attention is order-free) and removed before the final norm and pooling.
The backbone is frozen; prompts (and gates) and the new head train.

Zero-initialised start (``vpt_gate = true``, the default). A plain prompt token changes the
output even when its vector is zero (after LayerNorm it still yields a key and a value), so
"zero prompts" would not give the base model. Instead, in every block the real tokens' attention
is split as in LLaMA-Adapter's zero-init attention (Zhang et al. 2023):
``softmax(q K_real) V_real + tanh(g_h) * softmax(q K_prompt) V_prompt`` with one gate ``g`` per
head, initialised to 0. At initialisation this is exactly the pre-trained attention, so VPT
(shallow or deep) starts from the base model's outputs; the gates receive gradient from the first
step and open as the prompts become useful. Prompts are Xavier-uniform as in VPT (zero prompts
would get no gradient while the gates are closed). ``vpt_gate = false`` gives the original VPT
(one joint softmax over real and prompt tokens).
"""

from __future__ import annotations

import math

import bench
from bench.specs import StrategySpec
from bench_plugins.strategies.bitfit import PEFT_DEFAULTS

MODES = ("shallow", "deep")


@bench.hookimpl
def bench_register_strategies():
    return [
        StrategySpec(
            name="vpt",
            description="visual prompt tuning (shallow/deep, gated zero-init) for timm ViTs; backbone frozen",
            loader=lambda: VPT(),
            kind="train",
            requires=("pretrained", "trainable", "vit"),
            defaults={**PEFT_DEFAULTS, "vpt_mode": "deep", "vpt_tokens": 10, "vpt_gate": True},
        )
    ]


def _modules():
    import torch
    from torch import nn

    class PromptedAttention(nn.Module):
        """A timm ``Attention`` over ``[real tokens, N prompts]`` (prompts last), gated or joint."""

        def __init__(self, attn: nn.Module, num_prompts: int, gated: bool) -> None:
            super().__init__()
            self.attn, self.num_prompts = attn, num_prompts
            self.gate = nn.Parameter(torch.zeros(attn.num_heads)) if gated else None

        def forward(self, x, attn_mask=None, is_causal=False):
            if attn_mask is not None or is_causal:
                raise ValueError("vpt: attention masks are not supported with prompts")
            a, n_p = self.attn, self.num_prompts
            B, N, C = x.shape
            out_gate = a.gate(x).sigmoid() if getattr(a, "gate", None) is not None else None
            qkv = a.qkv(x).reshape(B, N, 3, a.num_heads, a.head_dim).permute(2, 0, 3, 1, 4)
            q, k, v = qkv.unbind(0)
            q, k = a.q_norm(q), a.k_norm(k)
            scores = (q * a.scale) @ k.transpose(-2, -1)
            if self.gate is None:
                y = a.attn_drop(scores.softmax(dim=-1)) @ v
            else:
                real = a.attn_drop(scores[..., : N - n_p].softmax(dim=-1)) @ v[:, :, : N - n_p]
                prompt = a.attn_drop(scores[..., N - n_p :].softmax(dim=-1)) @ v[:, :, N - n_p :]
                y = real + torch.tanh(self.gate).view(1, -1, 1, 1) * prompt
            y = y.transpose(1, 2).reshape(B, N, getattr(a, "attn_dim", C))
            y = a.norm(y) if hasattr(a, "norm") else y
            if out_gate is not None:
                y = y * out_gate
            return a.proj_drop(a.proj(y))

    class PromptedViT(nn.Module):
        """A frozen timm ViT with prompt tokens; maps images to the ViT's pooled features."""

        def __init__(self, vit: nn.Module, num_prompts: int, mode: str, gated: bool, patch_size: int) -> None:
            super().__init__()
            self.vit, self.num_prompts, self.mode = vit, num_prompts, mode
            dim = vit.embed_dim
            layers = len(vit.blocks) if mode == "deep" else 1
            # VPT's Xavier-uniform init over (patch pixels, dim). Not zero even when gated: zero
            # prompts give zero keys/values in a network with zero biases, and then neither the
            # gates nor the prompts would ever receive a gradient.
            bound = math.sqrt(6.0 / float(3 * patch_size * patch_size + dim))
            self.prompts = nn.Parameter(torch.empty(layers, num_prompts, dim).uniform_(-bound, bound))
            for blk in vit.blocks:
                blk.attn = PromptedAttention(blk.attn, num_prompts, gated)

        def forward(self, x):
            v, n_p = self.vit, self.num_prompts
            x = v.norm_pre(v.patch_drop(v._pos_embed(v.patch_embed(x))))
            batch = x.shape[0]
            for i, blk in enumerate(v.blocks):
                if i == 0 or self.mode == "deep":
                    kept = x if i == 0 else x[:, :-n_p]
                    x = torch.cat([kept, self.prompts[i if self.mode == "deep" else 0].expand(batch, -1, -1)], dim=1)
                x = blk(x)
            return v.forward_head(v.norm(x[:, :-n_p]))

    return PromptedAttention, PromptedViT


def add_prompts(encoder, num_prompts: int = 10, mode: str = "deep", gated: bool = True):
    """Freeze the encoder's timm ViT and wrap it with prompts; returns the prompted module."""
    from bench.errors import UserError

    try:
        from timm.models.vision_transformer import Attention, VisionTransformer
    except ImportError:  # pragma: no cover - timm is a dependency
        raise UserError("vpt needs timm's VisionTransformer") from None
    if mode not in MODES:
        raise UserError(f"vpt: unknown vpt_mode {mode!r}; use 'shallow' or 'deep'")
    if int(num_prompts) < 1:
        raise UserError(f"vpt: vpt_tokens must be a positive integer, got {num_prompts}")
    vit = encoder.module
    if not isinstance(vit, VisionTransformer) or not all(type(b.attn) is Attention for b in vit.blocks):
        raise UserError(f"vpt supports timm VisionTransformer encoders with standard attention; "
                        f"encoder {encoder.name!r} is a {type(vit).__name__}: use lora or adapter")
    if getattr(vit, "attn_pool", None) is not None or getattr(vit, "global_pool", "") == "map":
        raise UserError(f"vpt: encoder {encoder.name!r} pools with attention (map); not supported, use lora")
    for p in vit.parameters():
        p.requires_grad_(False)
    _, PromptedViT = _modules()
    patch = encoder.patch_size or vit.patch_embed.patch_size[0]
    return PromptedViT(vit, int(num_prompts), mode, bool(gated), int(patch))


class VPT:
    def fit(self, ctx):
        import torch

        from bench_plugins.strategies.bitfit import fit_frozen_backbone

        encoder = ctx.load_encoder(pretrained=True)
        torch.manual_seed(ctx.seed)
        prompted = add_prompts(encoder, int(ctx.config["vpt_tokens"]), str(ctx.config["vpt_mode"]),
                               bool(ctx.config["vpt_gate"]))
        fitted = fit_frozen_backbone(ctx, encoder, prompted)
        fitted.info.update(vpt_mode=prompted.mode, vpt_tokens=prompted.num_prompts)
        return fitted

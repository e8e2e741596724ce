"""The ``vpt`` strategy's implementation (registered in :mod:`bench_plugins.strategies.vpt`)."""

from __future__ import annotations

import math

import torch
from timm.models.vision_transformer import Attention, VisionTransformer
from torch import nn

from bench.adaptation import fit_frozen_backbone
from bench.encoders import Encoder
from bench.errors import UserError
from bench.strategies import FitContext, Fitted
from bench_plugins.strategies.vpt import MODES


class PromptedAttention(nn.Module):
    """A timm ``Attention`` over ``[real tokens, N prompts]`` (prompts last), gated or joint."""

    def __init__(self, attn: nn.Module, num_prompts: int, gated: bool) -> None:
        super().__init__()
        self.attn, self.num_prompts = attn, num_prompts
        self.gate = nn.Parameter(torch.zeros(attn.num_heads)) if gated else None

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, is_causal: bool = False) -> torch.Tensor:
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v, n_p = self.vit, self.num_prompts
        x = v.norm_pre(v.patch_drop(v._pos_embed(v.patch_embed(x))))
        batch = x.shape[0]
        for i, blk in enumerate(v.blocks):
            if i == 0 or self.mode == "deep":
                kept = x if i == 0 else x[:, :-n_p]
                x = torch.cat([kept, self.prompts[i if self.mode == "deep" else 0].expand(batch, -1, -1)], dim=1)
            x = blk(x)
        return v.forward_head(v.norm(x[:, :-n_p]))


def add_prompts(encoder: Encoder, num_prompts: int = 10, mode: str = "deep", gated: bool = True) -> PromptedViT:
    """Freeze the encoder's timm ViT and wrap it with prompts; returns the prompted module."""
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
    patch = encoder.patch_size or vit.patch_embed.patch_size[0]
    return PromptedViT(vit, int(num_prompts), mode, bool(gated), int(patch))


class VPT:
    def fit(self, ctx: FitContext) -> Fitted:
        encoder = ctx.load_encoder(pretrained=True)
        torch.manual_seed(ctx.seed)
        prompted = add_prompts(encoder, int(ctx.config["vpt_tokens"]), str(ctx.config["vpt_mode"]),
                               bool(ctx.config["vpt_gate"]))
        fitted = fit_frozen_backbone(ctx, encoder, prompted)
        fitted.info.update(vpt_mode=prompted.mode, vpt_tokens=prompted.num_prompts)
        return fitted

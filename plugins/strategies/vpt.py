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

import bench
from bench.recipes import PEFT_DEFAULTS
from bench.specs import StrategySpec
from bench_plugins.strategies import lazy_exports

MODES = ("shallow", "deep")


@bench.hookimpl
def bench_register_strategies():
    return [
        StrategySpec(
            name="vpt",
            description="visual prompt tuning (shallow/deep, gated zero-init) for timm ViTs; backbone frozen",
            loader="bench_plugins.strategies._vpt:VPT",
            kind="train",
            requires=("pretrained", "trainable", "vit"),
            defaults={**PEFT_DEFAULTS, "vpt_mode": "deep", "vpt_tokens": 10, "vpt_gate": True},
        )
    ]


__getattr__ = lazy_exports(__name__, "bench_plugins.strategies._vpt",
                           ["VPT", "PromptedAttention", "PromptedViT", "add_prompts"])

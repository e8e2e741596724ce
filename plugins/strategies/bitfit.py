"""``bitfit``: only the backbone's bias terms (and the new head) train (Ben Zaken et al. 2022).

Every other backbone parameter is frozen. In networks whose convolutions have no bias (most CNNs
with BatchNorm) the trainable biases are the BatchNorm shifts; their running statistics stay
frozen as in every fine-tuning recipe here. PEFT methods train few parameters, so the default
learning rate is higher than full fine-tuning's.
"""

from __future__ import annotations

import bench
from bench.recipes import RECIPE_DEFAULTS
from bench.specs import StrategySpec

#: Shared by the parameter-efficient strategies (bitfit, lora, adapter, vpt).
PEFT_DEFAULTS = {**RECIPE_DEFAULTS, "lr": 3e-3, "head_lr_mult": 3.0}


@bench.hookimpl
def bench_register_strategies():
    return [
        StrategySpec(
            name="bitfit",
            description="BitFit: only the backbone's biases and the new head train",
            loader=lambda: BitFit(),
            kind="train",
            requires=("pretrained", "trainable"),
            defaults=dict(PEFT_DEFAULTS),
        )
    ]


def fit_frozen_backbone(ctx, encoder, backbone):
    """Train a new head on ``backbone`` (whose parameters say themselves whether they train) with
    the shared loop; the head at ``head_lr_mult`` times the backbone's learning rate."""
    from bench.training import Classifier, fit_classifier, head_and_backbone_groups

    model = Classifier(backbone, encoder.feature_dim, ctx.task.num_classes)
    trainable = [p for p in model.backbone.parameters() if p.requires_grad]
    groups = head_and_backbone_groups(model, float(ctx.config["lr"]), float(ctx.config["head_lr_mult"]), trainable)
    return fit_classifier(ctx, encoder, model, groups)


def mark_biases_trainable(module) -> int:
    """Freeze everything but parameters named ``*bias``; returns how many values train."""
    n = 0
    for name, p in module.named_parameters():
        is_bias = name == "bias" or name.endswith(".bias")
        p.requires_grad_(is_bias)
        n += p.numel() if is_bias else 0
    return n


class BitFit:
    def fit(self, ctx):
        from bench.errors import UserError

        encoder = ctx.load_encoder(pretrained=True)
        if mark_biases_trainable(encoder.module) == 0:
            raise UserError(f"bitfit: encoder {encoder.name!r} has no bias parameters to train; use lora or adapter")
        return fit_frozen_backbone(ctx, encoder, encoder.module)

"""``scratch``: the encoder's architecture with random initialisation, trained on the budget only.

The baseline every head-start is measured against. It uses the same step schedule as
``finetune`` (see :mod:`bench.training`), but BatchNorm trains normally (random-init running
statistics mean nothing) and the head has no separate learning rate.
"""

from __future__ import annotations

import bench
from bench.recipes import RECIPE_DEFAULTS
from bench.specs import StrategySpec


@bench.hookimpl
def bench_register_strategies():
    return [
        StrategySpec(
            name="scratch",
            description="same architecture, random init, trained on the labelled budget only",
            loader=lambda: Scratch(),
            kind="train",
            requires=("trainable",),
            defaults={**RECIPE_DEFAULTS, "lr": 3e-3, "head_lr_mult": 1.0, "freeze_bn": False},
        )
    ]


class Scratch:
    def fit(self, ctx):
        from bench.training import Classifier, fit_classifier, head_and_backbone_groups

        encoder = ctx.load_encoder(pretrained=False)
        model = Classifier(encoder.module, encoder.feature_dim, ctx.task.num_classes)
        groups = head_and_backbone_groups(model, float(ctx.config["lr"]), float(ctx.config["head_lr_mult"]))
        return fit_classifier(ctx, encoder, model, groups)

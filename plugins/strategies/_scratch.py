"""The ``scratch`` strategy's implementation (registered in :mod:`bench_plugins.strategies.scratch`)."""

from __future__ import annotations

from bench.strategies import FitContext, Fitted
from bench.training import Classifier, fit_classifier, head_and_backbone_groups


class Scratch:
    def fit(self, ctx: FitContext) -> Fitted:
        encoder = ctx.load_encoder(pretrained=False)
        model = Classifier(encoder.module, encoder.feature_dim, ctx.num_classes)
        groups = head_and_backbone_groups(model, float(ctx.config["lr"]), float(ctx.config["head_lr_mult"]))
        return fit_classifier(ctx, encoder, model, groups)

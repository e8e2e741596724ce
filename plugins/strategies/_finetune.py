"""The ``finetune`` strategy's implementation (registered in :mod:`bench_plugins.strategies.finetune`)."""

from __future__ import annotations

from bench.adaptation import init_head_from_text, wants_zero_shot_head
from bench.strategies import FitContext, Fitted
from bench.training import Classifier, finetune_groups, fit_classifier


class Finetune:
    def fit(self, ctx: FitContext) -> Fitted:
        encoder = ctx.load_encoder(pretrained=True)
        model = Classifier(encoder.module, encoder.feature_dim, ctx.num_classes)
        head_info = init_head_from_text(ctx, encoder, model.head) if wants_zero_shot_head(ctx.config) else {}
        fitted = fit_classifier(ctx, encoder, model, finetune_groups(model, encoder, ctx.config))
        fitted.info.update(head_info)
        return fitted

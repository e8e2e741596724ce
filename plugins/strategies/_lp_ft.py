"""The ``lp-ft`` strategy's implementation (registered in :mod:`bench_plugins.strategies.lp_ft`)."""

from __future__ import annotations

from bench.adaptation import init_head_from_probe
from bench.strategies import FitContext, Fitted
from bench.training import Classifier, finetune_groups, fit_classifier


class LPFT:
    def fit(self, ctx: FitContext) -> Fitted:
        encoder = ctx.load_encoder(pretrained=True)
        model = Classifier(encoder.module, encoder.feature_dim, ctx.num_classes)
        probe_info: dict = {}
        probe_acc = init_head_from_probe(ctx, model.head, float(ctx.config["lp_C"]), int(ctx.config["lp_max_iter"]),
                                         probe_info)
        fitted = fit_classifier(ctx, encoder, model, finetune_groups(model, encoder, ctx.config))
        fitted.info.update(probe_info, probe_train_accuracy=round(probe_acc, 4))
        return fitted

"""The ``bn-adapt`` strategy's implementation (registered in :mod:`bench_plugins.strategies.bn_adapt`)."""

from __future__ import annotations

import copy

from bench.adaptation import require_target
from bench.domain.loop import adapt_batchnorm, source_model
from bench.strategies import FitContext, Fitted
from bench.training import predict_fn

__all__ = ["BnAdapt"]


class BnAdapt:
    def fit(self, ctx: FitContext) -> Fitted:
        require_target(ctx, "bn-adapt")
        baseline, shared = source_model(ctx)
        model = copy.deepcopy(shared)
        encoder = baseline.encoder
        assert encoder is not None
        used = adapt_batchnorm(ctx, model, encoder, int(ctx.config["adapt_images"]),
                               int(ctx.config["adapt_batch_size"]))
        info = {**{k: v for k, v in baseline.info.items() if k != "stat_batches"}, "adapt_batches": used}
        return Fitted(predict=predict_fn(model, encoder, ctx.device), trainable_params=0,
                      total_params=baseline.total_params, encoder=encoder.with_module(model.backbone), info=info,
                      baseline=baseline)

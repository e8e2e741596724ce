"""The ``zero-shot`` strategy's implementation (registered in :mod:`bench_plugins.strategies.zero_shot`)."""

from __future__ import annotations

from bench.adaptation import zero_shot_head
from bench.probe import l2_normalise
from bench.strategies import FitContext, Fitted


class ZeroShot:
    def fit(self, ctx: FitContext) -> Fitted:
        encoder = ctx.load_encoder(pretrained=True)
        weights, info = zero_shot_head(ctx, encoder)
        # The harness adds the image tower's parameters for feature strategies; add the text tower's.
        text_params = int(encoder.extra.get("text_params", 0))

        def predict(split):
            return (l2_normalise(ctx.features(split)) @ weights.T).argmax(axis=1)

        return Fitted(predict=predict, trainable_params=0, total_params=text_params, info=info)

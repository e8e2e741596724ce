"""The ``mcc`` strategy's implementation (registered in :mod:`bench_plugins.strategies.mcc`)."""

from __future__ import annotations

from bench.adaptation import require_target
from bench.domain.features import fit_features
from bench.domain.loop import fit_domain
from bench.domain.terms import MccTerm, mcc_loss
from bench.strategies import FitContext, Fitted

__all__ = ["Mcc", "MccTerm", "mcc_loss"]


class Mcc:
    def fit(self, ctx: FitContext) -> Fitted:
        require_target(ctx, "mcc")
        return fit_domain(ctx, MccTerm(ctx.config))


class MccFeatures:
    """``mcc-features``: the MCC term on the frozen-feature loop."""

    def fit(self, ctx: FitContext) -> Fitted:
        require_target(ctx, "mcc-features")
        return fit_features(ctx, MccTerm(ctx.config))

"""The ``coral`` strategy's implementation (registered in :mod:`bench_plugins.strategies.coral`)."""

from __future__ import annotations

from bench.adaptation import require_target
from bench.domain.features import fit_features
from bench.domain.loop import fit_domain
from bench.domain.terms import CoralTerm, coral_loss, covariance
from bench.strategies import FitContext, Fitted

__all__ = ["Coral", "CoralTerm", "coral_loss", "covariance"]


class Coral:
    def fit(self, ctx: FitContext) -> Fitted:
        require_target(ctx, "coral")
        return fit_domain(ctx, CoralTerm(ctx.config))


class CoralFeatures:
    """``coral-features``: the CORAL term on the frozen-feature loop."""

    def fit(self, ctx: FitContext) -> Fitted:
        require_target(ctx, "coral-features")
        return fit_features(ctx, CoralTerm(ctx.config))

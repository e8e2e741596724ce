"""The ``cdan`` strategy's implementation (registered in :mod:`bench_plugins.strategies.cdan`)."""

from __future__ import annotations

from bench.adaptation import require_target
from bench.domain.features import fit_features
from bench.domain.loop import fit_domain
from bench.domain.terms import CdanTerm, entropy_weights, multilinear_map
from bench.strategies import FitContext, Fitted

__all__ = ["Cdan", "CdanTerm", "entropy_weights", "multilinear_map"]


class Cdan:
    def fit(self, ctx: FitContext) -> Fitted:
        require_target(ctx, "cdan")
        return fit_domain(ctx, CdanTerm(ctx.config))


class CdanFeatures:
    """``cdan-features``: the CDAN+E term on the frozen-feature loop."""

    def fit(self, ctx: FitContext) -> Fitted:
        require_target(ctx, "cdan-features")
        return fit_features(ctx, CdanTerm(ctx.config))

"""The ``entropy-features`` and ``source-only-features`` strategies' implementations (frozen-feature DA)."""

from __future__ import annotations

from bench.adaptation import require_target
from bench.domain.features import fit_features, source_only_features
from bench.domain.terms import EntropyTerm
from bench.strategies import FitContext, Fitted

__all__ = ["EntropyFeatures", "SourceOnlyFeatures"]


class EntropyFeatures:
    """``entropy-features``: entropy minimisation of target predictions on the frozen-feature loop."""

    def fit(self, ctx: FitContext) -> Fitted:
        require_target(ctx, "entropy-features")
        return fit_features(ctx, EntropyTerm(ctx.config))


class SourceOnlyFeatures:
    """``source-only-features``: the protocol's standard source-only cell (no term, no baseline of its own)."""

    def fit(self, ctx: FitContext) -> Fitted:
        require_target(ctx, "source-only-features")
        return source_only_features(ctx)

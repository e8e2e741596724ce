"""The ``dann`` strategy's implementation (registered in :mod:`bench_plugins.strategies.dann`)."""

from __future__ import annotations

from bench.adaptation import require_target
from bench.domain.features import fit_features
from bench.domain.loop import AdversarialTerm, GradReverse, domain_critic, fit_domain, grad_reverse, lambda_ramp
from bench.strategies import FitContext, Fitted

__all__ = ["Dann", "GradReverse", "dann_lambda", "domain_classifier", "grad_reverse"]

domain_classifier = domain_critic  # the former name


def dann_lambda(step: int, total: int, gamma: float) -> float:
    """:func:`bench.domain.loop.lambda_ramp` at ``step / total``."""
    return lambda_ramp(step / max(1, total), gamma)


class Dann:
    def fit(self, ctx: FitContext) -> Fitted:
        require_target(ctx, "dann")
        return fit_domain(ctx, AdversarialTerm(ctx.config))


class DannFeatures:
    """``dann-features``: the DANN term on the frozen-feature loop."""

    def fit(self, ctx: FitContext) -> Fitted:
        require_target(ctx, "dann-features")
        return fit_features(ctx, AdversarialTerm(ctx.config))

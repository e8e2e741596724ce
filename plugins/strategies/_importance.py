"""The ``importance`` strategy's implementation (registered in :mod:`bench_plugins.strategies.importance`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.adaptation import require_target
from bench.domain.features import fit_features
from bench.domain.loop import fit_domain
from bench.domain.select import density_ratios
from bench.strategies import FitContext, Fitted


def importance_weights(source_feats: Any, target_feats: Any, C: float, max_weight: float, seed: int) -> np.ndarray:
    """Density-ratio weights of the source rows (:func:`bench.domain.select.density_ratios`: a
    cross-fitted domain classifier's odds, clipped), rescaled to mean 1."""
    w = density_ratios(source_feats, target_feats, C=C, max_weight=max_weight, seed=seed)
    return (w / w.mean()).astype(np.float32)


def _weights(ctx: FitContext, name: str) -> np.ndarray:
    target = require_target(ctx, name)
    return importance_weights(ctx.features(ctx.labelled), ctx.features(target), float(ctx.config["domain_C"]),
                              float(ctx.config["max_weight"]), ctx.seed)


def _with_weight_info(fitted: Fitted, w: np.ndarray) -> Fitted:
    fitted.info.update({"weight_min": round(float(w.min()), 4), "weight_max": round(float(w.max()), 4),
                        "weight_ess": round(float(w.sum() ** 2 / (w * w).sum()), 2)})
    return fitted


class Importance:
    def fit(self, ctx: FitContext) -> Fitted:
        w = _weights(ctx, "importance")
        return _with_weight_info(fit_domain(ctx, None, sample_weights=w), w)


class ImportanceFeatures:
    """``importance-features``: the same weights on the frozen-feature loop's source loss."""

    def fit(self, ctx: FitContext) -> Fitted:
        w = _weights(ctx, "importance-features")
        return _with_weight_info(fit_features(ctx, None, sample_weights=w), w)

"""The ``importance`` strategy's implementation (registered in :mod:`bench_plugins.strategies.importance`)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from bench.adaptation import require_target
from bench.domain import fit_domain
from bench.probe import l2_normalise
from bench.strategies import FitContext, Fitted


def importance_weights(source_feats: Any, target_feats: Any, C: float, max_weight: float, seed: int) -> np.ndarray:
    """Density-ratio weights of the source rows (cross-fitted domain classifier), clipped, mean 1."""
    x = l2_normalise(np.concatenate([source_feats, target_feats]))
    d = np.concatenate([np.zeros(len(source_feats), dtype=int), np.ones(len(target_feats), dtype=int)])
    clf = LogisticRegression(C=C, class_weight="balanced", max_iter=2000, random_state=seed)
    folds = int(min(5, len(source_feats), len(target_feats)))
    if folds >= 2:
        cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        p = cross_val_predict(clf, x, d, cv=cv, method="predict_proba")[: len(source_feats), 1]
    else:
        p = clf.fit(x, d).predict_proba(x[: len(source_feats)])[:, 1]
    p = np.clip(p, 1e-6, 1 - 1e-6)
    w = np.clip(p / (1 - p), 1.0 / max_weight, max_weight)
    return (w / w.mean()).astype(np.float32)


class Importance:
    def fit(self, ctx: FitContext) -> Fitted:
        target = require_target(ctx, "importance")
        cfg = ctx.config
        w = importance_weights(ctx.features(ctx.labelled), ctx.features(target), float(cfg["domain_C"]),
                               float(cfg["max_weight"]), ctx.seed)
        fitted = fit_domain(ctx, None, sample_weights=w)
        fitted.info.update({"weight_min": round(float(w.min()), 4), "weight_max": round(float(w.max()), 4),
                            "weight_ess": round(float(w.sum() ** 2 / (w * w).sum()), 2)})
        return fitted

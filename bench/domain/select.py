"""Density ratios and the importance-weighted risks (IWV, DEV) that label-free target criteria build on.

A default for a shifted task ``A->B`` must be chosen without target labels. The criteria here
estimate a candidate's *target* risk from its *source* validation losses, re-weighted by the
density ratio ``w(x) = p_target(x) / p_source(x)``:

- **IWV**, importance-weighted validation (Sugiyama, Krauledat & Mueller 2007), self-normalised:
  ``R = sum(w * l) / sum(w)`` over the source validation items (a weighted mean of the losses, so
  it stays a risk even when the estimated ratios do not average 1).
- **DEV**, deep embedded validation (You et al. 2019): IWV with a control variate. ``E_s[w] = 1``
  is known, so ``R = mean(w * l) + eta * (mean(w) - 1)`` with ``eta = -Cov(w * l, w) / Var(w)``,
  which lowers the variance of IWV when the weights are uneven.

The ratio comes from a domain classifier (logistic regression on L2-normalised frozen features,
source validation against the unlabelled target pool, balanced classes so ``p / (1 - p)`` is the
ratio at equal priors), **cross-fitted** so that no item is scored by a classifier that saw it, and
clipped to ``[1 / max_weight, max_weight]``. The weights are *not* renormalised to mean 1: DEV
needs the raw mean (with mean-1 weights it would equal IWV). Their mean is also a diagnostic: far
below 1, the source validation set covers little of the target (the domains are nearly separable
on these features) and DEV extrapolates (its risk is clipped to [0, 1]). :func:`density_ratios` is the one
shared implementation (the ``importance`` strategy normalises its result for training).

Torch-free: numpy and scikit-learn only. Losses are the 0-1 loss of the validation predictions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bench.probe import l2_normalise

#: below this mean density ratio DEV's control variate extrapolates: :func:`effective` uses IWV instead
MIN_COVERAGE = 0.2
#: the domain classifier's candidate inverse regularisations (chosen by the DOMAIN labels' held-out
#: log-loss, so the odds are calibrated ratios; class labels play no part) and the weight clip
DOMAIN_CS = (0.01, 0.1, 1.0, 10.0)
MAX_WEIGHT = 20.0


def domain_data(source_feats: Any, target_feats: Any) -> tuple[np.ndarray, np.ndarray]:
    """Rows (L2-normalised, flattened) and domain labels (0 source, 1 target) of both feature sets."""
    source_feats, target_feats = np.asarray(source_feats), np.asarray(target_feats)
    if not len(source_feats) or not len(target_feats):
        raise ValueError("density ratios need at least one source and one target row")
    n = len(source_feats) + len(target_feats)
    x = l2_normalise(np.concatenate([source_feats.reshape(len(source_feats), -1),
                                     target_feats.reshape(len(target_feats), -1)]).reshape(n, -1))
    return x, np.concatenate([np.zeros(len(source_feats), dtype=int), np.ones(len(target_feats), dtype=int)])


def choose_domain_C(source_feats: Any, target_feats: Any, seed: int = 0, Cs: Sequence[float] = DOMAIN_CS) -> float:
    """The domain classifier's ``C`` with the best 3-fold held-out log-loss (domain labels only)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    x, d = domain_data(source_feats, target_feats)
    if min(int((d == 0).sum()), int((d == 1).sum())) < 3:
        return float(Cs[len(Cs) // 2])
    cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=seed)
    losses = [-cross_val_score(LogisticRegression(C=C, class_weight="balanced", max_iter=2000, random_state=seed),
                               x, d, cv=cv, scoring="neg_log_loss").mean() for C in Cs]
    return float(Cs[int(np.argmin(losses))])


def density_ratios(source_feats: Any, target_feats: Any, C: float | None = None, max_weight: float = MAX_WEIGHT,
                   seed: int = 0, folds: int = 5) -> np.ndarray:
    """``p_target(x) / p_source(x)`` for each source row: a cross-fitted, class-balanced logistic
    domain classifier's odds, clipped to ``[1 / max_weight, max_weight]``; not renormalised.
    ``C`` None: chosen by :func:`choose_domain_C`."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    if C is None:
        C = choose_domain_C(source_feats, target_feats, seed)
    x, d = domain_data(source_feats, target_feats)
    n_source = int((d == 0).sum())
    clf = LogisticRegression(C=C, class_weight="balanced", max_iter=2000, random_state=seed)
    k = int(min(folds, n_source, len(d) - n_source))
    if k >= 2:
        cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        p = cross_val_predict(clf, x, d, cv=cv, method="predict_proba")[:n_source, 1]
    else:  # one row on a side: nothing to hold out
        p = clf.fit(x, d).predict_proba(x[:n_source])[:, 1]
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.clip(p / (1 - p), 1.0 / max_weight, max_weight)


def fitted_ratios(source_feats: Any, target_feats: Any, seed: int = 0) -> tuple[np.ndarray, float]:
    """:func:`density_ratios` with the domain ``C`` of :func:`choose_domain_C`, and that ``C``."""
    C = choose_domain_C(source_feats, target_feats, seed=seed)
    return density_ratios(source_feats, target_feats, C=C, seed=seed), C


def iwv_risk(losses: Any, weights: Any) -> float:
    """Importance-weighted validation risk, self-normalised: ``sum(w * l) / sum(w)``."""
    loss, w = _pair(losses, weights)
    return float(np.sum(w * loss) / np.sum(w))


def dev_risk(losses: Any, weights: Any, clip: bool = True) -> float:
    """Deep embedded validation risk: ``mean(w * l) + eta * (mean(w) - 1)``, ``eta = -Cov(w l, w) / Var(w)``
    (``eta = 0`` when the weights are constant), clipped to ``[0, 1]`` (the 0-1 loss's range) unless
    ``clip`` is False (DEVN: Musgrave et al. rank candidates by the raw risk)."""
    loss, w = _pair(losses, weights)
    wl = w * loss
    var = float(np.var(w, ddof=1)) if len(w) > 1 else 0.0
    eta = 0.0 if var <= 1e-15 else -float(np.cov(wl, w, ddof=1)[0, 1]) / var
    risk = float(np.mean(wl) + eta * (np.mean(w) - 1.0))
    return float(np.clip(risk, 0.0, 1.0)) if clip else risk


def _pair(losses: Any, weights: Any) -> tuple[np.ndarray, np.ndarray]:
    loss, w = np.asarray(losses, dtype=np.float64), np.asarray(weights, dtype=np.float64)
    if loss.shape != w.shape or loss.ndim != 1 or not len(loss):
        raise ValueError(f"losses {loss.shape} and weights {w.shape} must be the same non-empty 1-d shape")
    return loss, w


def weight_summary(weights: Any) -> dict[str, float]:
    """What the report records about the weights: mean, min, max, effective sample size."""
    w = np.asarray(weights, dtype=np.float64)
    return {"mean": round(float(w.mean()), 4), "min": round(float(w.min()), 4), "max": round(float(w.max()), 4),
            "ess": round(float(w.sum() ** 2 / (w * w).sum()), 2), "n": len(w)}


def effective(criterion: str, ratios: Sequence[Any]) -> tuple[str, str | None]:
    """The criterion a task is scored by, and why when it is not ``criterion``. DEV's control variate
    assumes the ratios average 1 on the source; when some candidate's ratios average below
    :data:`MIN_COVERAGE` the source validation set holds almost no target-like items (the domains
    are nearly separable on these features), DEV would extrapolate from there to ``mean(w) = 1``, and
    the task is scored by IWV instead (a weighted validation accuracy, close to the plain one).
    Criteria other than ``iwv`` and ``dev`` are returned as they are."""
    low = [float(np.mean(w)) for w in ratios if float(np.mean(w)) < MIN_COVERAGE]
    if criterion not in ("iwv", "dev") or not low:
        return criterion, None
    what = (f"density ratios average {min(low):.3f} (1 when the source covers the target): the domains are nearly "
            "separable on these features")
    if criterion == "dev":
        return "iwv", what + "; dev would extrapolate, so this task is scored by iwv (close to validation accuracy)"
    return criterion, what + "; iwv stays close to validation accuracy"


def score(criterion: str, correct: Any, weights: Any | None) -> float:
    """A candidate's score under ``criterion`` (higher is better): plain validation accuracy for
    ``source``, else ``1 - risk`` of the 0-1 loss, an estimate of the target accuracy."""
    correct = np.asarray(correct, dtype=np.float64)
    if criterion == "source":
        return float(correct.mean())
    if weights is None:
        raise ValueError(f"criterion {criterion!r} needs density ratios")
    risk = {"iwv": iwv_risk, "dev": dev_risk}[criterion](1.0 - correct, weights)
    return 1.0 - risk

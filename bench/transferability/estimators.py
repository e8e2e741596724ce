"""Transferability estimates: which encoder to pick for a task, scored from frozen features before training.

Every estimator reads only the labelled budget (features of the budget's items and their labels),
never a test split, and is higher-is-better:

- :func:`logme`: the log marginal evidence of Bayesian linear regression from features to each
  one-hot label column, maximised over the prior precision ``alpha`` and noise precision ``beta``
  by the fixed-point iteration of You et al. (2021, "LogME"), divided by ``n`` and averaged over
  classes. Computed through one SVD of the feature matrix.
- :func:`leep`: Nguyen et al. (2020), from the encoder's source-class probabilities ``theta``:
  ``mean_i log sum_z P(y_i | z) theta_iz`` with ``P(y | z)`` the empirical conditional.
- :func:`nce`: Tran et al. (2019), negative conditional entropy ``-H(Y | Z)`` of the target labels
  given (hard) source labels.
- :func:`hscore`: Bao et al. (2019), ``tr(cov(f)^-1 cov(E[f | y]))``. With fewer items than
  feature dimensions the plain covariance is singular and the score degenerates (it tends to
  ``C - 1`` for any features), so by default ``cov(f)`` is the Ledoit-Wolf shrinkage estimate
  (the regularised H-score of Ibrahim et al., 2022).
- :func:`knn_loo`: the naive baseline: leave-one-out accuracy of the ``knn`` strategy's vote
  (cosine, ``k = min(20, n - 1)``, weights ``exp(sim / 0.07)``) inside the labelled budget.

LEEP and NCE need a source head. An encoder whose ``Encoder.extra["source_head"]`` maps features
``[B, D]`` to source logits gets the real LEEP/NCE; for the others (no built-in keeps its ImageNet
classifier today) :func:`pseudo_source_probs` stands in: a Gaussian mixture on PCA-reduced features
(N-LEEP, Li et al. 2021), whose posteriors are ``theta`` and whose arg-max is ``z``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

ESTIMATORS = ("logme", "leep", "nce", "hscore", "knn")

#: The ``knn`` strategy's defaults (plugins/strategies/knn.py), so the baseline scores the same vote.
KNN_K = 20
KNN_TEMPERATURE = 0.07
#: N-LEEP keeps the principal components explaining this share of variance (Li et al. 2021: 80%).
PCA_VARIANCE = 0.8


def _check(features: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels).astype(np.int64)
    if f.ndim != 2 or len(f) != len(y) or len(f) < 2:
        raise ValueError(f"features {f.shape} and labels {y.shape}: expected [n, D] and [n] with n >= 2")
    return f, y


def _evidence(s: np.ndarray, z: np.ndarray, y_norm2: float, n: int, d: int,
              tol: float = 1e-10, max_iter: int = 1000) -> float:
    """Maximised log evidence / n for one target column, given the non-zero singular values ``s``
    of the feature matrix and ``z = U^T y`` (its left singular vectors against the target).

    When the features interpolate the target (``n`` <= rank) the noise precision ``beta`` grows
    without bound; the iteration stops at the last finite (alpha, beta) before it overflows."""
    sigma = s**2
    rest = max(y_norm2 - float(z @ z), 0.0)  # the target's part outside the features' span

    def terms(alpha: float, beta: float) -> tuple[float, float, float]:
        gamma = float(np.sum(beta * sigma / (alpha + beta * sigma)))
        m2 = float(np.sum((beta * s * z / (alpha + beta * sigma)) ** 2))
        return gamma, m2, float(np.sum((alpha / (alpha + beta * sigma) * z) ** 2)) + rest

    alpha, beta = 1.0, 1.0
    for _ in range(max_iter):
        gamma, m2, res2 = terms(alpha, beta)
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            new_alpha, new_beta = gamma / m2, (n - gamma) / res2
        if not (np.isfinite(new_alpha) and np.isfinite(new_beta) and new_alpha > 0 and new_beta > 0):
            break
        done = abs(new_alpha - alpha) <= tol * alpha and abs(new_beta - beta) <= tol * beta
        alpha, beta = float(new_alpha), float(new_beta)
        if done:
            break
    _, m2, res2 = terms(alpha, beta)
    logdet = float(np.sum(np.log(alpha + beta * sigma))) + (d - len(s)) * np.log(alpha)
    evidence = (n / 2 * np.log(beta) + d / 2 * np.log(alpha) - n / 2 * np.log(2 * np.pi)
                - beta / 2 * res2 - alpha / 2 * m2 - logdet / 2)
    return float(evidence / n)


def logme(features: np.ndarray, labels: np.ndarray) -> float:
    """LogME (You et al. 2021): mean over classes of the maximised log evidence per item."""
    f, y = _check(features, labels)
    n, d = f.shape
    u, s, _ = np.linalg.svd(f, full_matrices=False)
    rank = int(np.sum(s > s.max(initial=0.0) * max(n, d) * np.finfo(np.float64).eps))
    u, s = u[:, :rank], s[:rank]  # a zero singular value adds log(alpha) to log|A|, as d - rank does
    out = []
    for c in np.unique(y):
        target = (y == c).astype(np.float64)
        out.append(_evidence(s, u.T @ target, float(target @ target), n, d))
    return float(np.mean(out))


def leep(source_probs: np.ndarray, labels: np.ndarray) -> float:
    """LEEP (Nguyen et al. 2020) from source-class probabilities ``[n, Z]`` (rows sum to 1)."""
    theta, y = _check(source_probs, labels)
    classes, yi = np.unique(y, return_inverse=True)
    joint = np.zeros((len(classes), theta.shape[1]))
    np.add.at(joint, yi, theta)
    joint /= len(y)
    cond = joint / np.maximum(joint.sum(axis=0, keepdims=True), 1e-300)  # P(y | z)
    eep = np.sum(theta * cond[yi], axis=1)
    return float(np.mean(np.log(np.maximum(eep, 1e-300))))


def nce(source_labels: np.ndarray, labels: np.ndarray) -> float:
    """NCE (Tran et al. 2019): ``-H(Y | Z)`` of target labels ``Y`` given source labels ``Z``."""
    z = np.asarray(source_labels).astype(np.int64)
    y = np.asarray(labels).astype(np.int64)
    _, zi = np.unique(z, return_inverse=True)
    _, yi = np.unique(y, return_inverse=True)
    joint = np.zeros((yi.max() + 1, zi.max() + 1))
    np.add.at(joint, (yi, zi), 1.0)
    joint /= len(y)
    pz = joint.sum(axis=0, keepdims=True)
    nz = joint > 0
    return float(np.sum(joint[nz] * np.log((joint / pz)[nz])))


def hscore(features: np.ndarray, labels: np.ndarray, shrinkage: bool = True) -> float:
    """H-score (Bao et al. 2019); ``shrinkage`` uses the Ledoit-Wolf covariance (Ibrahim et al. 2022)."""
    f, y = _check(features, labels)
    f = f - f.mean(axis=0)
    if shrinkage:
        from sklearn.covariance import ledoit_wolf

        cov = ledoit_wolf(f, assume_centered=True)[0]
    else:
        cov = f.T @ f / len(f)
    g = np.zeros_like(f)
    for c in np.unique(y):
        g[y == c] = f[y == c].mean(axis=0)
    cov_g = g.T @ g / len(f)
    return float(np.trace(np.linalg.pinv(cov, hermitian=True) @ cov_g))


def knn_loo(features: np.ndarray, labels: np.ndarray, k: int = KNN_K, temperature: float = KNN_TEMPERATURE
            ) -> float | None:
    """Leave-one-out accuracy of the cosine, temperature-weighted k-NN vote; None when a class has
    one labelled item (leaving it out leaves nothing to vote for it)."""
    f, y = _check(features, labels)
    if np.unique(y, return_counts=True)[1].min() < 2:
        return None
    f = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
    sim = f @ f.T
    np.fill_diagonal(sim, -np.inf)
    kk = min(k, len(y) - 1)
    nearest = np.argsort(-sim, axis=1, kind="stable")[:, :kk]
    weights = np.exp((np.take_along_axis(sim, nearest, axis=1) - 1.0) / temperature)
    classes = np.unique(y)
    votes = np.stack([np.sum(weights * (y[nearest] == c), axis=1) for c in classes], axis=1)
    return float(np.mean(classes[np.argmax(votes, axis=1)] == y))


def pseudo_source_probs(features: np.ndarray, components: int, seed: int) -> np.ndarray:
    """N-LEEP's stand-in for a source head: posteriors ``[n, components]`` of a diagonal Gaussian
    mixture fitted (seeded) on the features' principal components explaining 80% of the variance."""
    from sklearn.decomposition import PCA
    from sklearn.mixture import GaussianMixture

    f = np.asarray(features, dtype=np.float64)
    reduced = PCA(n_components=PCA_VARIANCE, svd_solver="full").fit_transform(f - f.mean(axis=0))
    gmm = GaussianMixture(n_components=min(components, len(f)), covariance_type="diag", reg_covar=1e-4,
                          random_state=seed).fit(reduced)
    return np.asarray(gmm.predict_proba(reduced))


def score_all(features: np.ndarray, labels: np.ndarray, seed: int,
              source_logits: np.ndarray | None = None) -> dict[str, float | None]:
    """Every estimator on one labelled budget. ``source_logits`` (from a source head) feed LEEP and
    NCE; without them the pseudo-source mixture (one component per target class) does."""
    f, y = _check(features, labels)
    if source_logits is not None:
        logits = np.asarray(source_logits, dtype=np.float64)
        theta = np.exp(logits - logits.max(axis=1, keepdims=True))
        theta /= theta.sum(axis=1, keepdims=True)
    else:
        theta = pseudo_source_probs(f, len(np.unique(y)), seed)
    return {"logme": logme(f, y), "leep": leep(theta, y), "nce": nce(theta.argmax(axis=1), y),
            "hscore": hscore(f, y), "knn": knn_loo(f, y)}


def rank_correlation(scores: Mapping[str, float | None], measured: Mapping[str, float]) -> dict[str, Any]:
    """Kendall's tau and the weighted tau (scipy's hyperbolic weighting, as in the LogME paper)
    between an estimator's scores and measured accuracies, over the keys both have."""
    from scipy.stats import kendalltau, weightedtau

    keys = sorted(k for k in measured if scores.get(k) is not None and np.isfinite(float(scores[k])))  # type: ignore[arg-type]
    out: dict[str, Any] = {"n": len(keys), "kendall_tau": None, "weighted_tau": None}
    if len(keys) >= 2:
        a = np.array([float(scores[k]) for k in keys])  # type: ignore[arg-type]
        b = np.array([float(measured[k]) for k in keys])
        tau, wtau = kendalltau(a, b).statistic, weightedtau(a, b).statistic
        out["kendall_tau"] = None if np.isnan(tau) else round(float(tau), 4)
        out["weighted_tau"] = None if np.isnan(wtau) else round(float(wtau), 4)
    return out


def measured_accuracy(records: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, float]]:
    """Mean test accuracy over seeds per (task, strategy, budget), by encoder, from run records."""
    from bench.report.aggregate import strategy_label
    from bench.run.records import latest

    acc: dict[tuple[str, str, str], dict[str, list[float]]] = {}
    for rec in latest(records):
        value = (rec.get("metrics") or {}).get("accuracy")
        if rec.get("status") != "ok" or value is None:
            continue
        key = (rec["task"], strategy_label(rec), rec["budget"])
        acc.setdefault(key, {}).setdefault(rec["encoder"], []).append(float(value))
    return {k: {e: float(np.mean(v)) for e, v in by_enc.items()} for k, by_enc in acc.items()}


def measured_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """:func:`measured_accuracy` as plain rows (``task, strategy, budget, encoder, accuracy``): what
    ``rank.json`` publishes beside the scores, so the correlations recompute without the run's records."""
    return [{"task": t, "strategy": s, "budget": b, "encoder": e, "accuracy": a}
            for (t, s, b), by_enc in sorted(measured_accuracy(records).items()) for e, a in sorted(by_enc.items())]


def correlate(scores: Mapping[tuple[str, str], Mapping[str, float | None]], records: list[dict[str, Any]]
              ) -> list[dict[str, Any]]:
    """One row per (task, strategy, budget, estimator) of a run: the rank correlation, across the
    encoders both scored and measured, of ``scores[(encoder, task)][estimator]`` with accuracy."""
    return correlate_measured(scores, measured_accuracy(records))


def correlate_measured(scores: Mapping[tuple[str, str], Mapping[str, float | None]],
                       measured: Mapping[tuple[str, str, str], Mapping[str, float]]) -> list[dict[str, Any]]:
    """:func:`correlate` from mean accuracies per (task, strategy, budget) by encoder."""
    rows = []
    for (task, strategy, budget), by_encoder in sorted(measured.items()):
        for est in ESTIMATORS:
            est_scores = {e: s.get(est) for (e, t), s in scores.items() if t == task}
            corr = rank_correlation(est_scores, by_encoder)
            if corr["n"] >= 2:  # one encoder has no order
                rows.append({"task": task, "strategy": strategy, "budget": budget, "estimator": est, **corr})
    return rows

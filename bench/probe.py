"""The linear probe's pieces, shared by every place that probes frozen features (the
``linear-probe``, ``lp-ft``, ``ewc`` and ``tent`` heads, forgetting, and the cosine strategies
``knn``, ``prototype``, ``zero-shot`` and the embedding duplicate detector).

Probes scale features without throwing information away (:class:`FeatureScale`): the linear
probe centres them on the labelled mean and divides by one global scale, the mean distance of the
labelled features to that mean; heads fine-tuned with their backbone afterwards (lp-ft, ewc) divide
by the labelled mean norm only (a fixed centre would go stale). Every feature keeps its magnitude
relative to the others (a class that differs only in overall brightness stays separable), and the
L2 penalty ``C`` means the same for every encoder, whatever its feature norm. Cosine methods use
:func:`l2_normalise` by design, and so does tent's frozen head, whose backbone's BatchNorm
statistics move to the target domain (docs/protocol.md).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np


def l2_normalise(x: Any) -> np.ndarray:
    """Rows scaled to unit L2 norm (all-zero rows stay zero)."""
    x = np.asarray(x)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


@dataclass(frozen=True)
class FeatureScale:
    """``(x - mean) / scale``: ``mean`` the labelled features' mean, ``scale`` their mean distance
    to it (their mean norm if they all coincide, else 1). Fitted on the labelled budget only."""

    mean: np.ndarray
    scale: float

    @classmethod
    def fit(cls, x: Any) -> FeatureScale:
        x = np.asarray(x, dtype=np.float64)
        mean = x.mean(axis=0)
        spread = float(np.linalg.norm(x - mean, axis=1).mean())
        if spread <= 1e-12:
            spread = float(np.linalg.norm(x, axis=1).mean())
        return cls(mean=mean, scale=spread if spread > 1e-12 else 1.0)

    @classmethod
    def by_norm(cls, x: Any) -> FeatureScale:
        """No centring: divided by the labelled features' mean norm (heads fine-tuned with
        their backbone after the fit (lp-ft, ewc), where a fixed centre would go stale)."""
        x = np.asarray(x, dtype=np.float64)
        norm = float(np.linalg.norm(x, axis=1).mean()) if len(x) else 0.0
        return cls(mean=np.zeros(x.shape[1]), scale=norm if norm > 1e-12 else 1.0)

    def __call__(self, x: Any) -> np.ndarray:
        return (np.asarray(x, dtype=np.float64) - self.mean) / self.scale

    def fold(self, coef: np.ndarray, intercept: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(W, b)`` on raw features equal to ``coef``/``intercept`` on scaled ones."""
        W = np.asarray(coef) / self.scale
        return W, np.asarray(intercept) - W @ self.mean


#: scikit-learn's stopping rule for L-BFGS (``LogisticRegression``'s ``tol`` and its scipy options).
LBFGS_OPTIONS = {"maxls": 50, "gtol": 1e-4, "ftol": 64 * np.finfo(float).eps}


def fit_logistic_info(x: np.ndarray, y: np.ndarray, C: float, max_iter: int, seed: int,
                      subspace: bool = True, engine: str = "sklearn") -> tuple[Any, dict[str, Any]]:
    """:func:`fit_logistic` plus what to record: ``probe_iterations`` (the solver's iteration
    count) and ``probe_converged`` (False when it stopped at ``max_iter``).

    ``subspace=True``, with fewer items than features (few-shot budgets), solves in the span of the
    items: the L2-penalised optimum's weights are a combination of the items'
    features (the loss's gradient is), so logistic regression on the coordinates ``z = x V`` in an
    orthonormal basis ``V`` of that span has the same optimum, ``W = W_z V^T``, at ``n x n`` instead
    of ``n x d`` per solver step (1.5-4x faster at 1-20 per class). The returned classifier holds
    ``W`` on the original features. On since protocol 3 (``subspace=False`` is the protocol-2
    solve): the optimum is the same, but the solver's stopping rule is not rotation-invariant, so a
    cell's accuracy can move by a few test items (0.3 pt measured on mnist5k, benchmarks/bench_probe.py).

    ``engine="direct"`` (three or more classes; the ``linear-probe`` strategy's): the same objective
    and the same scipy L-BFGS-B call with scikit-learn's options (:data:`LBFGS_OPTIONS`, zero start),
    minus scikit-learn's per-call and per-iteration overhead (:func:`_fit_direct`); its subspace
    coordinates come from the items' Gram matrix instead of an SVD. Same iterations and weights
    within 1e-9 relative on few-shot budgets (tests/test_linear_probe_solver.py)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(x, dtype=np.float64)
    if engine not in ("sklearn", "direct"):
        raise ValueError(f"engine must be 'sklearn' or 'direct', not {engine!r}")
    if engine == "direct" and len(np.unique(y)) > 2:
        return _fit_direct(x, np.asarray(y), C, max_iter, subspace)
    basis = _row_basis(x) if subspace and x.shape[0] < x.shape[1] else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        clf = LogisticRegression(C=C, max_iter=max_iter, random_state=seed).fit(x if basis is None else x @ basis, y)
    if basis is not None:
        clf.coef_ = clf.coef_ @ basis.T
        clf.n_features_in_ = x.shape[1]
    iterations = int(np.max(clf.n_iter_))
    stopped = any(issubclass(w.category, ConvergenceWarning) for w in caught)
    for w in caught:  # pass other warnings on
        if not issubclass(w.category, ConvergenceWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return clf, {"probe_iterations": iterations, "probe_converged": not stopped and iterations < max_iter}


def _fit_direct(x: np.ndarray, y: np.ndarray, C: float, max_iter: int, subspace: bool) -> tuple[Any, dict[str, Any]]:
    """Multinomial logistic regression as scikit-learn's lbfgs solver fits it: minimise
    ``mean(cross-entropy) + ||W||^2 / (2 C n)`` (intercept unpenalised) by ``scipy.optimize.minimize``
    (L-BFGS-B, :data:`LBFGS_OPTIONS`, from zero). With ``n < d`` and ``subspace``, in coordinates
    ``z`` with ``z z^T = x x^T`` (eigenvectors of the Gram matrix kept above 1e-10 of its largest
    eigenvalue: the centring's null direction is dropped) and ``W = A x``, so ``W`` lies in the items'
    span exactly. Returns a fitted ``LogisticRegression`` (its ``predict`` works) and the info."""
    from scipy import optimize
    from sklearn.linear_model import LogisticRegression

    classes, yi = np.unique(y, return_inverse=True)
    n, d = x.shape
    K = len(classes)
    back = None
    if subspace and n < d:
        lam, U = np.linalg.eigh(x @ x.T)
        keep = lam > lam[-1] * 1e-10
        lam, U = lam[keep], U[:, keep]
        root = np.sqrt(lam)
        z = U * root
        back = U / root  # W = W_z (U / sqrt(lam))^T x
    else:
        z = x
    r = z.shape[1]
    rows = np.arange(n)
    l2 = 1.0 / (C * n)

    def loss_grad(w: np.ndarray) -> tuple[float, np.ndarray]:
        W, b = w[: K * r].reshape(K, r), w[K * r:]
        logits = z @ W.T + b
        top = logits.max(axis=1, keepdims=True)
        e = np.exp(logits - top)
        total = e.sum(axis=1)
        loss = float((np.log(total) + top[:, 0] - logits[rows, yi]).mean() + 0.5 * l2 * np.dot(w[: K * r], w[: K * r]))
        p = e / total[:, None]
        p[rows, yi] -= 1.0
        p /= n
        return loss, np.concatenate([(p.T @ z + l2 * W).ravel(), p.sum(axis=0)])

    res = optimize.minimize(loss_grad, np.zeros(K * (r + 1)), method="L-BFGS-B", jac=True,
                            options={"maxiter": max_iter, **LBFGS_OPTIONS})
    W = res.x[: K * r].reshape(K, r)
    coef = W if back is None else (W @ back.T) @ x
    clf = LogisticRegression(C=C, max_iter=max_iter)
    clf.classes_, clf.coef_, clf.intercept_ = classes, coef, res.x[K * r:].copy()
    clf.n_features_in_, clf.n_iter_ = d, np.array([min(int(res.nit), max_iter)], dtype=np.int32)
    iterations = int(clf.n_iter_[0])
    return clf, {"probe_iterations": iterations, "probe_converged": bool(res.status == 0) and iterations < max_iter}


def _row_basis(x: np.ndarray) -> np.ndarray:
    """An orthonormal basis ``[d, r]`` of the span of ``x``'s rows (r its numerical rank)."""
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    keep = s > (s[0] if len(s) else 0.0) * max(x.shape) * np.finfo(np.float64).eps
    return np.ascontiguousarray(vt[keep].T)


def fit_logistic(x: np.ndarray, y: np.ndarray, C: float, max_iter: int, seed: int) -> Any:
    """Multinomial logistic regression with an L2 penalty (scikit-learn's), as the probe fits it."""
    return fit_logistic_info(x, y, C, max_iter, seed)[0]

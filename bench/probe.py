"""The linear probe's pieces, shared by every place that probes frozen features (the
``linear-probe``, ``knn``, ``prototype``, ``tent`` and ``zero-shot`` strategies, forgetting, the
embedding duplicate detector): one definition of "L2-normalised features" and of the classifier.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def l2_normalise(x: Any) -> np.ndarray:
    """Rows scaled to unit L2 norm (all-zero rows stay zero)."""
    x = np.asarray(x)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def fit_logistic(x: np.ndarray, y: np.ndarray, C: float, max_iter: int, seed: int) -> Any:
    """Multinomial logistic regression with an L2 penalty (scikit-learn's), as the probe fits it."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, max_iter=max_iter, random_state=seed).fit(x, y)

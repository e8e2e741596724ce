"""The linear probe's subspace solve (bench.probe.fit_logistic_info(subspace=True)): with fewer items
than features it solves in the span of the items, and gives the full-space solution (predictions
agree, weights equal within the solver's tolerance); off by default, so published numbers stay."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from bench.probe import FeatureScale, fit_logistic_info


def few_shot(n_per_class: int, d: int = 300, k: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d))
    y = np.repeat(np.arange(k), n_per_class)
    x = centres[y] + rng.normal(scale=2.0, size=(len(y), d))
    test_y = np.repeat(np.arange(k), 200)
    test_x = centres[test_y] + rng.normal(scale=2.0, size=(len(test_y), d))
    scale = FeatureScale.fit(x)
    return scale(x), y, scale(test_x), test_y


@pytest.mark.parametrize("per_class", [1, 5, 20])
def test_subspace_solve_gives_the_full_space_solution(per_class):
    """Guards: the few-shot probe's numbers do not move with the faster solve (predictions on 1,000
    held-out items agree, weights within the solver's tolerance)."""
    x, y, tx, ty = few_shot(per_class)
    full, info_full = fit_logistic_info(x, y, 100.0, 2000, 0, subspace=False)
    fast, info_fast = fit_logistic_info(x, y, 100.0, 2000, 0, subspace=True)
    assert fast.coef_.shape == full.coef_.shape == (5, 300)
    agree = (fast.predict(tx) == full.predict(tx)).mean()
    assert agree >= 0.999
    rel = np.linalg.norm(fast.coef_ - full.coef_) / np.linalg.norm(full.coef_)
    assert rel < 0.02, rel
    assert info_fast["probe_converged"] and info_full["probe_converged"]


def test_subspace_solve_works_in_the_items_span(monkeypatch):
    """Guards: with n < d the solver sees n-dimensional coordinates, not d features (before: d); the
    default since protocol 3; ``subspace=False`` is protocol 2's full-space solve)."""
    seen = []
    real_fit = LogisticRegression.fit

    def spy(self, X, y, *a, **k):
        seen.append(X.shape)
        return real_fit(self, X, y, *a, **k)

    monkeypatch.setattr(LogisticRegression, "fit", spy)
    x, y, _, _ = few_shot(4)  # 20 items, centred: rank 19
    fit_logistic_info(x, y, 100.0, 2000, 0, subspace=True)
    x_big, y_big, _, _ = few_shot(80)  # 400 items > 300 features: the full space as before
    fit_logistic_info(x_big, y_big, 100.0, 2000, 0, subspace=True)
    fit_logistic_info(x, y, 100.0, 2000, 0)
    fit_logistic_info(x, y, 100.0, 2000, 0, subspace=False)
    assert seen == [(20, 19), (400, 300), (20, 19), (20, 300)]

"""The linear probe's direct L-BFGS (bench.probe.fit_logistic_info(engine="direct")) is scikit-learn's
fit without its overhead: same objective, same iterations, same weights and predictions."""

from __future__ import annotations

import numpy as np
import pytest

from bench.probe import FeatureScale, fit_logistic_info


def blobs(n_per_class: int, d: int = 300, k: int = 5, seed: int = 0, labels: tuple[int, ...] | None = None):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d))
    y = np.repeat(np.arange(k), n_per_class)
    x = centres[y] + rng.normal(scale=2.0, size=(len(y), d))
    ty = np.repeat(np.arange(k), 100)
    tx = centres[ty] + rng.normal(scale=2.0, size=(len(ty), d))
    scale = FeatureScale.fit(x)
    names = np.asarray(labels if labels is not None else range(k))
    return scale(x), names[y], scale(tx)


@pytest.mark.parametrize(("per_class", "C"), [(1, 100.0), (5, 1.0), (20, 100.0), (80, 10.0)])
def test_direct_engine_matches_scikit_learns_fit(per_class, C):
    """Guards: the faster solve changes no number (1-20/class: in the items' span; 80/class:
    400 items > 300 features, the full space)."""
    x, y, tx = blobs(per_class)
    ref, ref_info = fit_logistic_info(x, y, C, 2000, 0, engine="sklearn")
    got, info = fit_logistic_info(x, y, C, 2000, 0, engine="direct")
    assert got.coef_.shape == ref.coef_.shape == (5, 300)
    assert np.linalg.norm(got.coef_ - ref.coef_) / np.linalg.norm(ref.coef_) < 1e-6
    assert np.allclose(got.intercept_, ref.intercept_, atol=1e-6)
    assert (got.predict(tx) == ref.predict(tx)).all()
    assert abs(info["probe_iterations"] - ref_info["probe_iterations"]) <= 1 and info["probe_converged"]


def test_direct_engine_keeps_label_values_and_reports_non_convergence():
    x, y, tx = blobs(3, labels=(2, 5, 7, 8, 9))
    clf, _ = fit_logistic_info(x, y, 100.0, 2000, 0, engine="direct")
    assert clf.classes_.tolist() == [2, 5, 7, 8, 9] and set(clf.predict(tx)) <= {2, 5, 7, 8, 9}
    assert (clf.predict(x) == y).all()
    _, info = fit_logistic_info(x, y, 1e4, 2, 0, engine="direct")
    assert info == {"probe_iterations": 2, "probe_converged": False}


def test_direct_engine_weights_lie_in_the_items_span():
    x, y, _ = blobs(2)
    clf, _ = fit_logistic_info(x, y, 100.0, 2000, 0, engine="direct")
    coeffs, *_ = np.linalg.lstsq(x.T, clf.coef_.T, rcond=None)
    assert np.allclose(x.T @ coeffs, clf.coef_.T, atol=1e-8)


def test_two_classes_and_unknown_engines():
    x, y, _ = blobs(5, k=2)
    got, _ = fit_logistic_info(x, y, 10.0, 2000, 0, engine="direct")
    ref, _ = fit_logistic_info(x, y, 10.0, 2000, 0, engine="sklearn")
    assert got.coef_.shape == (1, 300) and np.allclose(got.coef_, ref.coef_)  # binary: scikit-learn's own fit
    with pytest.raises(ValueError, match="engine"):
        fit_logistic_info(x, y, 10.0, 2000, 0, engine="torch")

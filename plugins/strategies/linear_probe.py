"""``linear-probe``: multinomial logistic regression on frozen, cached, L2-normalised features.

L2 penalty ``C`` (default 10 on unit-norm features). With ``tune = true`` the penalty is chosen
by stratified cross-validation *inside the budget* over a grid of C values (never on test);
budgets with fewer than two items per class cannot be cross-validated and keep the default
(recorded in the cell's info).
"""

from __future__ import annotations

import bench
from bench.specs import StrategySpec

C_GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)


@bench.hookimpl
def bench_register_strategies():
    return [
        StrategySpec(
            name="linear-probe",
            description="logistic regression on frozen L2-normalised features (cached, one encoder pass)",
            loader=lambda: LinearProbe(),
            kind="features",
            defaults={"C": 10.0, "tune": False, "max_iter": 2000},
        )
    ]


def l2_normalise(x):
    import numpy as np

    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def fit_logistic(x, y, C, max_iter, seed):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, max_iter=max_iter, random_state=seed).fit(x, y)


def choose_C(x, y, max_iter, seed):
    """Pick C by stratified k-fold cross-validation within the labelled budget (None if impossible)."""
    import numpy as np
    from sklearn.model_selection import StratifiedKFold

    counts = np.bincount(y)
    k = int(min(5, counts[counts > 0].min()))
    if k < 2 or len(np.unique(y)) < 2:
        return None
    folds = list(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(x, y))
    scores = []
    for C in C_GRID:
        acc = [(fit_logistic(x[tr], y[tr], C, max_iter, seed).predict(x[va]) == y[va]).mean() for tr, va in folds]
        scores.append(float(np.mean(acc)))
    return C_GRID[int(np.argmax(scores))]


class LinearProbe:
    def fit(self, ctx):
        import numpy as np

        from bench.strategies import Fitted

        x = l2_normalise(ctx.features(ctx.labelled))
        y = np.asarray(ctx.labelled.labels)
        C = float(ctx.config["C"])
        info = {}
        if ctx.config.get("tune"):
            chosen = choose_C(x, y, int(ctx.config["max_iter"]), ctx.seed)
            info["tuned_C"] = chosen
            C = chosen if chosen is not None else C
        info["C"] = C
        if len(np.unique(y)) < 2:
            only = int(y[0])
            return Fitted(predict=lambda split: np.full(len(split), only), trainable_params=0, total_params=0, info=info)
        clf = fit_logistic(x, y, C, int(ctx.config["max_iter"]), ctx.seed)
        n_params = int(clf.coef_.size + clf.intercept_.size)
        return Fitted(
            predict=lambda split: clf.predict(l2_normalise(ctx.features(split))),
            trainable_params=n_params,
            total_params=n_params,
            info=info,
        )

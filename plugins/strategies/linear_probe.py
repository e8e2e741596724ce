"""``linear-probe``: multinomial logistic regression on frozen, cached, L2-normalised features.

L2 penalty ``C`` (default 10 on unit-norm features). With ``tune = true`` the penalty is chosen
by stratified cross-validation *inside the budget* over a grid of C values (never on test);
budgets with fewer than two items per class cannot be cross-validated and keep the default
(recorded in the cell's info).

``head_init = "zero-shot"`` (encoders with a text tower): the head starts at the zero-shot
classifier (class-prompt embeddings times CLIP's logit scale) and the L2 penalty pulls towards it
instead of towards zero, so few labels refine zero-shot rather than replace it (with
``max_iter = 0`` the predictions are exactly zero-shot's).
"""

from __future__ import annotations

import bench
from bench.probe import fit_logistic, l2_normalise
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
            defaults={"C": 10.0, "tune": False, "max_iter": 2000, "head_init": "random"},
        )
    ]


def fit_logistic_prior(x, y, prior, C, max_iter):
    """Multinomial logistic regression over all ``K = len(prior)`` classes minimising
    ``C * sum(cross-entropy) + 0.5 * ||W - prior||^2`` (sklearn's objective, penalty centred on
    ``prior``; intercept unpenalised), by L-BFGS from ``W = prior``. Returns ``(W, b)``."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    X = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    Y = torch.as_tensor(np.asarray(y), dtype=torch.long)
    W0 = torch.as_tensor(np.asarray(prior), dtype=torch.float64)
    W = W0.clone().requires_grad_(True)
    b = torch.zeros(W0.shape[0], dtype=torch.float64, requires_grad=True)
    if max_iter > 0 and len(Y):
        opt = torch.optim.LBFGS([W, b], lr=1.0, max_iter=int(max_iter), tolerance_grad=1e-6,
                                line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = C * F.cross_entropy(X @ W.T + b, Y, reduction="sum") + 0.5 * ((W - W0) ** 2).sum()
            loss.backward()
            return loss

        opt.step(closure)
    return W.detach().numpy(), b.detach().numpy()


def choose_C(x, y, max_iter, seed, prior=None):
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
        if prior is None:
            acc = [(fit_logistic(x[tr], y[tr], C, max_iter, seed).predict(x[va]) == y[va]).mean() for tr, va in folds]
        else:
            fits = [(fit_logistic_prior(x[tr], y[tr], prior, C, max_iter), va) for tr, va in folds]
            acc = [((x[va] @ W.T + b).argmax(axis=1) == y[va]).mean() for (W, b), va in fits]
        scores.append(float(np.mean(acc)))
    return C_GRID[int(np.argmax(scores))]


class LinearProbe:
    def fit(self, ctx):
        import numpy as np

        from bench.strategies import Fitted

        from .zero_shot import wants_zero_shot_head, zero_shot_head

        x = l2_normalise(ctx.features(ctx.labelled))
        y = np.asarray(ctx.labelled.labels)
        C = float(ctx.config["C"])
        info = {}
        prior = None
        if wants_zero_shot_head(ctx.config):
            text_emb, zinfo = zero_shot_head(ctx)
            prior = zinfo["logit_scale"] * text_emb  # features are unit-norm: logits = scale * cosine
            info.update(head_init="zero-shot", zero_shot_templates=zinfo["templates"])
        if ctx.config.get("tune"):
            chosen = choose_C(x, y, int(ctx.config["max_iter"]), ctx.seed, prior=prior)
            info["tuned_C"] = chosen
            C = chosen if chosen is not None else C
        info["C"] = C
        if prior is not None:
            W, b = fit_logistic_prior(x, y, prior, C, int(ctx.config["max_iter"]))
            return Fitted(
                predict=lambda split: (l2_normalise(ctx.features(split)) @ W.T + b).argmax(axis=1),
                trainable_params=int(W.size + b.size),
                total_params=int(W.size + b.size),
                info=info,
            )
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

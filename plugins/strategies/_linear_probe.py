"""The ``linear-probe`` strategy's implementation (registered in :mod:`bench_plugins.strategies.linear_probe`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from bench.adaptation import wants_zero_shot_head, zero_shot_head
from bench.probe import FeatureScale, fit_logistic_info, l2_normalise
from bench.strategies import FitContext, Fitted
from bench_plugins.strategies.linear_probe import check_engine, resolve_C


def fit_logistic_prior(x: Any, y: Any, prior: Any, C: float, max_iter: int) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression over all ``K = len(prior)`` classes minimising
    ``C * sum(cross-entropy) + 0.5 * ||W - prior||^2`` (sklearn's objective, penalty centred on
    ``prior``; intercept unpenalised), by L-BFGS from ``W = prior``. Returns ``(W, b)``."""
    X = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    Y = torch.as_tensor(np.asarray(y), dtype=torch.long)
    W0 = torch.as_tensor(np.asarray(prior), dtype=torch.float64)
    W = W0.clone().requires_grad_(True)
    b = torch.zeros(W0.shape[0], dtype=torch.float64, requires_grad=True)
    if max_iter > 0 and len(Y):
        opt = torch.optim.LBFGS([W, b], lr=1.0, max_iter=int(max_iter), tolerance_grad=1e-6,
                                line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = C * F.cross_entropy(X @ W.T + b, Y, reduction="sum") + 0.5 * ((W - W0) ** 2).sum()
            loss.backward()
            return loss

        opt.step(closure)
    return W.detach().numpy(), b.detach().numpy()


class LinearProbe:
    """Logistic regression on features scaled by :class:`~bench.probe.FeatureScale` (fitted on the
    budget); with a zero-shot head, on unit-norm features (the prior's logits are cosines)."""

    def fit(self, ctx: FitContext) -> Fitted:
        raw = ctx.features(ctx.labelled)
        y = np.asarray(ctx.labelled.labels)
        info: dict[str, Any] = {}
        prior = None
        zero_shot = wants_zero_shot_head(ctx.config)
        C = resolve_C(ctx.config["C"], len(y), len(ctx.classes), zero_shot)
        if zero_shot:
            text_emb, zinfo = zero_shot_head(ctx)
            prior = zinfo["logit_scale"] * text_emb  # features are unit-norm: logits = scale * cosine
            info.update(head_init="zero-shot", zero_shot_templates=zinfo["templates"])
        scale = l2_normalise if prior is not None else FeatureScale.fit(raw)
        x = scale(raw)
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
            return Fitted(predict=lambda split: np.full(len(split), only), trainable_params=0, total_params=0,
                          info=info)
        engine = check_engine(ctx.config.get("engine", "direct"))  # checked at plan time too (check_config)
        clf, fit_info = fit_logistic_info(x, y, C, int(ctx.config["max_iter"]), ctx.seed, engine=engine)
        info.update(fit_info)
        n_params = int(clf.coef_.size + clf.intercept_.size)
        W_raw, b_raw = scale.fold(clf.coef_, clf.intercept_)  # a query is one product, no scaled copy
        if W_raw.shape[0] == 1:  # two classes: scikit-learn's one row scores class 1 against class 0
            W_raw, b_raw = np.vstack([np.zeros_like(W_raw), W_raw]), np.concatenate([[0.0], b_raw])
        classes = clf.classes_
        return Fitted(
            predict=lambda split: classes[(np.asarray(ctx.features(split), dtype=np.float64) @ W_raw.T + b_raw)
                                          .argmax(axis=1)],
            trainable_params=n_params,
            total_params=n_params,
            info=info,
        )

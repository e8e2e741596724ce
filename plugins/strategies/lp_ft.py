"""``lp-ft``: linear probe, then full fine-tune from that head (Kumar et al. 2022).

Fine-tuning with a random head sends large, noisy gradients through the pre-trained features and
distorts them; starting from a fitted linear head avoids most of that. Stage 1 fits a multinomial
logistic regression (``lp_C``, default 10 as in ``linear-probe``) on the *cached frozen features*
of the labelled budget divided by their mean L2 norm (one scalar, so features are about unit norm
as in ``linear-probe`` yet the head stays exactly linear in the raw features; per-dimension
standardisation would blow up near-constant dimensions into huge weights, which fine-tuning then
destroys). The scale is folded into the weights. Stage 2 fine-tunes everything from that head
with the shared loop at a lower learning rate than ``finetune`` and no separate head rate
(``head_lr_mult = 1``); ``layer_decay`` works as in ``finetune``.
"""

from __future__ import annotations

import bench
from bench.recipes import RECIPE_DEFAULTS
from bench.specs import StrategySpec


@bench.hookimpl
def bench_register_strategies():
    return [
        StrategySpec(
            name="lp-ft",
            description="linear probe on frozen features, then full fine-tune from that head at a lower lr (Kumar et al. 2022)",
            loader=lambda: LPFT(),
            kind="train",
            requires=("pretrained", "trainable"),
            defaults={**RECIPE_DEFAULTS, "lr": 3e-4, "head_lr_mult": 1.0, "lp_C": 10.0, "lp_max_iter": 2000,
                      "layer_decay": None},
        )
    ]


def probe_head_weights(features, labels, num_classes: int, C: float, max_iter: int, seed: int):
    """A linear head ``(W [C, D], b [C])`` on raw features from a logistic regression fitted on
    features divided by their mean norm (the scale folded into ``W``), plus its training accuracy.

    Classes absent from ``labels`` get zero weights and a bias 10 below the lowest fitted logit on
    the budget;
    with a single class present the head is all zeros except that class's bias (1)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    W = np.zeros((num_classes, x.shape[1]))
    b = np.zeros(num_classes)
    present = np.unique(y)
    if len(present) < 2:
        b[present] = 1.0
        return W.astype(np.float32), b.astype(np.float32), 1.0
    scale = float(np.linalg.norm(x, axis=1).mean()) or 1.0
    clf = LogisticRegression(C=C, max_iter=max_iter, random_state=seed).fit(x / scale, y)
    coef, intercept = clf.coef_, clf.intercept_
    if len(present) == 2:  # sklearn's binary form: one row for the second class
        coef, intercept = np.vstack([-coef / 2, coef / 2]), np.array([-intercept[0] / 2, intercept[0] / 2])
    W[present] = coef / scale
    b[present] = intercept
    absent = np.setdiff1d(np.arange(num_classes), present)
    b[absent] = (x @ W[present].T + b[present]).min() - 10.0  # below every fitted logit on the budget
    acc = float((clf.predict(x / scale) == y).mean())
    return W.astype(np.float32), b.astype(np.float32), acc


def init_head_from_probe(ctx, head, C: float, max_iter: int) -> float:
    """Set ``head`` (an ``nn.Linear``) to the linear probe fitted on the budget's cached features."""
    import numpy as np
    import torch

    W, b, acc = probe_head_weights(ctx.features(ctx.labelled), np.asarray(ctx.labelled.labels),
                                   head.out_features, C, max_iter, ctx.seed)
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(W))
        head.bias.copy_(torch.from_numpy(b))
    return acc


class LPFT:
    def fit(self, ctx):
        from bench.training import Classifier, finetune_groups, fit_classifier

        encoder = ctx.load_encoder(pretrained=True)
        model = Classifier(encoder.module, encoder.feature_dim, ctx.task.num_classes)
        probe_acc = init_head_from_probe(ctx, model.head, float(ctx.config["lp_C"]), int(ctx.config["lp_max_iter"]))
        fitted = fit_classifier(ctx, encoder, model, finetune_groups(model, encoder, ctx.config))
        fitted.info["probe_train_accuracy"] = round(probe_acc, 4)
        return fitted

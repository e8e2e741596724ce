"""``importance``: importance-weighted training of source examples (covariate-shift correction).

1. A domain classifier (logistic regression, penalty ``domain_C``) on the frozen, L2-normalised
   features separates the labelled source budget from the unlabelled target pool, with balanced
   class weights so that its odds estimate the density ratio. Each source item's probability
   comes from 5-fold cross-fitting (the classifier never scores an item it was trained on, which
   would push every weight towards zero).
2. ``w = p(target | x) / p(source | x)``, clipped to ``[1 / max_weight, max_weight]`` and
   rescaled to mean 1.
3. The ``finetune`` recipe trains on the budget with each item's loss multiplied by its weight
   (``freeze_backbone = true`` trains only the linear head on frozen features instead).
"""

from __future__ import annotations

import bench
from bench.recipes import RECIPE_DEFAULTS
from bench.specs import StrategySpec

IMPORTANCE_DEFAULTS = {**RECIPE_DEFAULTS, "domain_C": 1.0, "max_weight": 10.0, "freeze_backbone": False}


@bench.hookimpl
def bench_register_strategies():
    return [
        StrategySpec(
            name="importance",
            description="importance-weighted fine-tune: source items weighted by p(target|x)/p(source|x) from a domain classifier",
            loader=lambda: Importance(),
            kind="train",
            requires=("pretrained", "trainable", "unlabelled_target"),
            defaults=IMPORTANCE_DEFAULTS,
        )
    ]


def importance_weights(source_feats, target_feats, C: float, max_weight: float, seed: int):
    """Density-ratio weights of the source rows (cross-fitted domain classifier), clipped, mean 1."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    from bench.probe import l2_normalise

    x = l2_normalise(np.concatenate([source_feats, target_feats]))
    d = np.concatenate([np.zeros(len(source_feats), dtype=int), np.ones(len(target_feats), dtype=int)])
    clf = LogisticRegression(C=C, class_weight="balanced", max_iter=2000, random_state=seed)
    folds = int(min(5, len(source_feats), len(target_feats)))
    if folds >= 2:
        cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        p = cross_val_predict(clf, x, d, cv=cv, method="predict_proba")[: len(source_feats), 1]
    else:
        p = clf.fit(x, d).predict_proba(x[: len(source_feats)])[:, 1]
    p = np.clip(p, 1e-6, 1 - 1e-6)
    w = np.clip(p / (1 - p), 1.0 / max_weight, max_weight)
    return (w / w.mean()).astype(np.float32)


class Importance:
    def fit(self, ctx):

        from bench.training import Classifier, fit_classifier, head_and_backbone_groups
        from bench_plugins.strategies.dann import require_target

        target = require_target(ctx, "importance")
        cfg = ctx.config
        w = importance_weights(ctx.features(ctx.labelled), ctx.features(target), float(cfg["domain_C"]),
                               float(cfg["max_weight"]), ctx.seed)
        encoder = ctx.load_encoder(pretrained=True)
        model = Classifier(encoder.module, encoder.feature_dim, ctx.task.num_classes)
        if cfg.get("freeze_backbone"):
            for p in model.backbone.parameters():
                p.requires_grad_(False)
        groups = head_and_backbone_groups(model, float(cfg["lr"]), float(cfg["head_lr_mult"]))
        fitted = fit_classifier(ctx, encoder, model, groups, sample_weights=w)
        fitted.info.update({"weight_min": round(float(w.min()), 4), "weight_max": round(float(w.max()), 4),
                            "weight_ess": round(float(w.sum() ** 2 / (w * w).sum()), 2)})
        return fitted

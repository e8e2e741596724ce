"""The ``good-embedding`` strategy's implementation (registered in :mod:`bench_plugins.strategies.good_embedding`)."""

from __future__ import annotations

import time

import numpy as np

from bench.episodes.meta import Embedding, meta_state, prototype_fit
from bench.errors import UserError
from bench.probe import FeatureScale, fit_logistic_info
from bench.strategies import FitContext, Fitted
from bench.training import Classifier, finetune_groups, train

CLASSIFIERS = ("linear-probe", "prototype")


class GoodEmbedding:
    """``meta_train``: supervised fine-tuning on the base classes; ``fit``: a classifier on its embedding."""

    def meta_train(self, ctx: FitContext) -> Embedding:
        if ctx.config["classifier"] not in CLASSIFIERS:
            raise UserError(f"--set classifier={ctx.config['classifier']!r}: expected one of {list(CLASSIFIERS)}")
        start = time.perf_counter()
        encoder = ctx.load_encoder()
        model = Classifier(encoder.module, encoder.feature_dim, ctx.num_classes)
        info = train(model, finetune_groups(model, encoder, ctx.config), encoder, ctx.labelled, ctx.config, ctx.seed,
                     ctx.device, progress=ctx.progress)
        info.update(images=int(info["steps"]) * int(info["batch_size"]), train_s=round(time.perf_counter() - start, 3))
        return Embedding(encoder, model.backbone, ctx.device, info)

    def fit(self, ctx: FitContext) -> Fitted:
        embedding: Embedding = meta_state(ctx, "good-embedding")
        if ctx.config["classifier"] == "prototype":
            return prototype_fit(ctx, embedding, normalise=True)
        raw = embedding.features(ctx.labelled)
        y = np.asarray(ctx.labelled.labels)
        scale = FeatureScale.fit(raw)
        clf, info = fit_logistic_info(scale(raw), y, float(ctx.config["C"]), int(ctx.config["max_iter"]), ctx.seed)
        n = int(clf.coef_.size + clf.intercept_.size)
        return Fitted(predict=lambda split: clf.predict(scale(embedding.features(split))), trainable_params=n,
                      total_params=n + embedding.parameters, info=info)

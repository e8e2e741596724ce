"""The ``protonet`` strategy's implementation (registered in :mod:`bench_plugins.strategies.protonet`)."""

from __future__ import annotations

import time

import numpy as np
import torch

from bench.accel import to_device
from bench.encoders import preprocess
from bench.episodes.meta import (
    Embedding,
    episode_labels,
    meta_state,
    prototype_fit,
    prototypical_loss,
    training_episodes,
)
from bench.loop import cosine_lambda, prepare, run_steps, set_batchnorm_eval
from bench.strategies import FitContext, Fitted


def protonet_meta_train(ctx: FitContext) -> Embedding:
    """Episodic fine-tuning of a fresh copy of the encoder with the prototypical loss (on ``bench.loop.run_steps``)."""
    config, start = ctx.config, time.perf_counter()
    encoder = ctx.load_encoder()
    model = encoder.module
    steps = int(config["meta_steps"])
    episodes = training_episodes(ctx.labelled, ctx.extra["episode"], int(config["meta_query"]), steps, ctx.seed)
    n, k, q = episodes.spec.n_way, episodes.spec.k_shot, episodes.spec.q_query
    ys, yq = episode_labels(n, k), episode_labels(n, q)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=float(config["lr"]), weight_decay=float(config["weight_decay"]))
    warmup = int(round(steps * float(config["warmup_frac"])))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, cosine_lambda(steps, warmup))
    fwd, channels_last = prepare(model, ctx.device)

    def draw(step: int) -> torch.Tensor:
        model.train()
        set_batchnorm_eval(model)
        positions = np.concatenate([episodes.support[step], episodes.query[step]]).tolist()
        return preprocess(ctx.labelled.images(positions), encoder)

    def loss(x: torch.Tensor, step: int, part: slice) -> torch.Tensor:
        z = fwd(to_device(x, ctx.device, channels_last)).float()
        return prototypical_loss(z[: n * k], ys.to(z.device), z[n * k:], yq.to(z.device), n)

    result = run_steps([opt], steps, draw, loss, device=ctx.device, scheduler=sched, progress=ctx.progress,
                       where=" in protonet meta-training")
    model.eval()
    info = {"steps": steps, "n_way": n, "k_shot": k, "q_query": q, "images": steps * n * (k + q),
            "final_loss": round(result.final_loss, 5), "train_s": round(time.perf_counter() - start, 3)}
    return Embedding(encoder, model, ctx.device, info)


class ProtoNet:
    """``meta_train``: episodic fine-tuning; ``fit``: the nearest prototype of the trained embedding."""

    def meta_train(self, ctx: FitContext) -> Embedding:
        return protonet_meta_train(ctx)

    def fit(self, ctx: FitContext) -> Fitted:
        return prototype_fit(ctx, meta_state(ctx, "protonet"), normalise=False)

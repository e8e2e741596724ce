"""What the meta-learning strategies share: training episodes, the prototypical loss, a head's inner SGD, an embedding.

- :func:`training_episodes`: the seeded episodes meta-training draws from the base classes (the same
  sampler as the evaluation episodes, :func:`bench.episodes.spec.sample_episodes`).
- :func:`prototypical_logits` / :func:`prototypical_loss`: Snell et al. (2017), eq. 1-2: class
  prototypes are the support embeddings' means, logits are minus squared Euclidean distances.
- A head on frozen features (the parameters first-order MAML and Reptile meta-learn): a residual
  linear block ``h = x + x A^T`` and a linear classifier ``h W^T + b``; :func:`inner_sgd` takes
  plain SGD steps on some of its parameters (functional, no optimiser), the others untouched;
  :func:`head_meta_train` meta-trains it on frozen base-class features (the method's episode loss
  as a hook), :func:`head_fit` adapts it to one episode.
- :class:`Embedding`: an encoder trained during meta-training, its features memoised by item id;
  :func:`prototype_fit`: an episode's nearest-prototype classifier on it; :func:`meta_state`: the
  state an episode's ``fit`` reads (one line outside ``--episodes``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.encoders import Encoder, encode
from bench.episodes.spec import Episodes, EpisodeSpec, sample_episodes
from bench.errors import UserError
from bench.probe import l2_normalise
from bench.strategies import FitContext, Fitted
from bench.tasks import Split

#: The head's parameters, in order: the residual block, the classifier's weights and biases.
HEAD = ("A", "W", "b")
#: What ``adapt`` may name: the classifier only, or the block and the classifier.
ADAPT = {"head": ("W", "b"), "all": HEAD}


def training_episodes(labelled: Split, shape: dict[str, Any], q_query: int, steps: int, seed: int) -> Episodes:
    """``steps`` episodes over the base classes of ``labelled``: the evaluation's N (at most the number of
    base classes) and K, ``q_query`` queries per class; seeded like the evaluation episodes."""
    n = min(int(shape["n_way"]), len(np.unique(labelled.labels)))
    spec = EpisodeSpec(n, int(shape["k_shot"]), int(q_query), int(steps))
    return sample_episodes(labelled.labels, labelled.ids, spec, seed, what="the base classes of the train split")


def episode_labels(n: int, per_class: int) -> torch.Tensor:
    """The labels of an episode's support or query set, class by class: ``0 x per_class, 1 x per_class, ...``."""
    return torch.arange(n).repeat_interleave(per_class)


def prototypical_logits(z_support: torch.Tensor, y_support: torch.Tensor, z_query: torch.Tensor,
                        n: int) -> torch.Tensor:
    """``-||z_query - c_j||^2`` for the prototypes ``c_j`` (the mean support embedding of class ``j``)."""
    onehot = F.one_hot(y_support, n).to(z_support.dtype)
    protos = (onehot.T @ z_support) / onehot.sum(0).clamp(min=1)[:, None]
    return -torch.cdist(z_query, protos).pow(2)


def prototypical_loss(z_support: torch.Tensor, y_support: torch.Tensor, z_query: torch.Tensor,
                      y_query: torch.Tensor, n: int) -> torch.Tensor:
    """ProtoNet's loss: the mean cross-entropy of the query items under :func:`prototypical_logits`."""
    return F.cross_entropy(prototypical_logits(z_support, y_support, z_query, n), y_query)


def head_features(features: Any, scale: float) -> torch.Tensor:
    """The head's input: unit-norm frozen features times ``scale`` (float32)."""
    return torch.as_tensor(scale * l2_normalise(np.asarray(features, dtype=np.float64)), dtype=torch.float32)


def init_head(dim: int, n: int) -> dict[str, torch.Tensor]:
    """The head at its start: ``A = 0`` (the block is the identity), ``W = 0``, ``b = 0``."""
    return {"A": torch.zeros(dim, dim), "W": torch.zeros(n, dim), "b": torch.zeros(n)}


def head_logits(params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    h = x + x @ params["A"].T
    return h @ params["W"].T + params["b"]


def inner_sgd(params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor, lr: float, steps: int,
              adapt: Sequence[str]) -> dict[str, torch.Tensor]:
    """``steps`` plain SGD steps of the cross-entropy on ``(x, y)`` over the parameters named in
    ``adapt``: new tensors, detached; every other parameter is returned as the same tensor, untouched."""
    current = {k: v.detach() for k, v in params.items()}
    for _ in range(int(steps)):
        leaves = {k: current[k].clone().requires_grad_(True) for k in adapt}
        loss = F.cross_entropy(head_logits({**current, **leaves}, x), y)
        grads = torch.autograd.grad(loss, [leaves[k] for k in adapt])
        current = {**current, **{k: (leaves[k] - lr * g).detach() for k, g in zip(adapt, grads)}}
    return current


def adapt_option(config: dict[str, Any]) -> tuple[str, ...]:
    """The parameters ``config["adapt"]`` names (``head`` or ``all``); anything else is one line."""
    value = str(config.get("adapt", "all"))
    if value not in ADAPT:
        raise UserError(f"--set adapt={value!r}: expected one of {sorted(ADAPT)}")
    return ADAPT[value]


def head_size(params: dict[str, torch.Tensor]) -> int:
    return int(sum(v.numel() for v in params.values()))


@dataclass
class Embedding:
    """An encoder adapted by meta-training (``module`` its trained backbone), read through ``features``:
    each item is encoded once, memoised by item id (episodes draw the same test items again and again)."""

    encoder: Encoder
    module: nn.Module
    device: str
    info: dict[str, Any] = field(default_factory=dict)
    _memo: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def features(self, split: Split) -> np.ndarray:
        missing = [i for i, item in enumerate(split.ids) if item not in self._memo]
        if missing:
            feats = encode(self.encoder, lambda pos: split.images([missing[p] for p in pos]), len(missing),
                           device=self.device, module=self.module)
            self._memo.update({split.ids[i]: f for i, f in zip(missing, feats)})
        return np.stack([self._memo[item] for item in split.ids]) if len(split) else np.zeros(
            (0, self.encoder.feature_dim), dtype=np.float32)

    @property
    def parameters(self) -> int:
        return int(sum(p.numel() for p in self.module.parameters()))


def meta_state(ctx: FitContext, name: str) -> Any:
    """The state meta-training left for this episode; one line when the strategy runs outside ``--episodes``."""
    state = ctx.extra.get("meta_state")
    if state is None:
        raise UserError(f"{name} runs on the episode protocol only: use bench run --episodes N:K:Q:E")
    return state


def prototype_fit(ctx: FitContext, embedding: Embedding, normalise: bool) -> Fitted:
    """Nearest prototype of ``embedding``'s support features (squared Euclidean; on unit-norm features
    when ``normalise``); the fitted parameters are the prototypes."""
    def embed(split: Any) -> torch.Tensor:
        z = torch.as_tensor(embedding.features(split), dtype=torch.float32)
        return torch.nn.functional.normalize(z, dim=1) if normalise else z

    zs, ys = embed(ctx.labelled), torch.as_tensor(np.asarray(ctx.labelled.labels), dtype=torch.long)

    def predict(split: Any) -> np.ndarray:
        return prototypical_logits(zs, ys, embed(split), ctx.num_classes).argmax(1).numpy()

    n = ctx.num_classes * int(zs.shape[1])
    return Fitted(predict=predict, trainable_params=n, total_params=n + embedding.parameters)


@dataclass
class MetaHead:
    """A meta-learned head (the starting point of every episode's inner steps) and what training cost."""

    params: dict[str, torch.Tensor]
    info: dict[str, Any] = field(default_factory=dict)


def head_meta_train(ctx: FitContext, make_optimizer: Callable[[list[torch.Tensor]], torch.optim.Optimizer],
                    episode_loss: Callable[[dict[str, torch.Tensor], torch.Tensor, torch.Tensor, torch.Tensor,
                                            torch.Tensor], torch.Tensor]) -> MetaHead:
    """Meta-train a head from :func:`init_head` on base-class episodes of frozen features, on
    :func:`bench.loop.run_steps`: each step draws an episode and steps ``make_optimizer(params)`` on
    ``episode_loss(params, x_support, y_support, x_query, y_query)``."""
    from bench.loop import run_steps

    config, start = ctx.config, time.perf_counter()
    steps = int(config["meta_steps"])
    x = head_features(ctx.features(ctx.labelled), float(config["feature_scale"]))
    episodes = training_episodes(ctx.labelled, ctx.extra["episode"], int(config["meta_query"]), steps, ctx.seed)
    n, k, q = episodes.spec.n_way, episodes.spec.k_shot, episodes.spec.q_query
    if n < int(ctx.extra["episode"]["n_way"]):
        raise UserError(f"{ctx.task_name}: {n} base classes, fewer than the episodes' N = "
                        f"{ctx.extra['episode']['n_way']}; a meta-learned N-way head needs N base classes")
    ys, yq = episode_labels(n, k), episode_labels(n, q)
    params = {name: t.clone().requires_grad_(True) for name, t in init_head(x.shape[1], n).items()}
    opt = make_optimizer(list(params.values()))

    def draw(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        return x[episodes.support[step]], x[episodes.query[step]]

    def loss(batch: tuple[torch.Tensor, torch.Tensor], step: int, part: slice) -> torch.Tensor:
        return episode_loss(params, batch[0], ys, batch[1], yq)

    result = run_steps([opt], steps, draw, loss, device="cpu", progress=ctx.progress, where=" in meta-training")
    info = {"steps": steps, "n_way": n, "k_shot": k, "q_query": q, "final_loss": round(result.final_loss, 5),
            "train_s": round(time.perf_counter() - start, 3)}
    return MetaHead({name: t.detach() for name, t in params.items()}, info)


def head_fit(ctx: FitContext, head: MetaHead) -> Fitted:
    """An episode: ``inner_steps`` SGD steps from the meta-learned head on the support set's frozen
    features (the parameters ``adapt`` names), then the adapted head's argmax on the query."""
    config, scale = ctx.config, float(ctx.config["feature_scale"])
    if head.params["W"].shape[0] != ctx.num_classes:
        raise ValueError(f"the head was meta-trained {head.params['W'].shape[0]}-way, the episode is "
                         f"{ctx.num_classes}-way")
    x = head_features(ctx.features(ctx.labelled), scale)
    y = torch.as_tensor(np.asarray(ctx.labelled.labels), dtype=torch.long)
    adapted = inner_sgd(head.params, x, y, float(config["inner_lr"]), int(config["inner_steps"]), adapt_option(config))

    def predict(split: Any) -> np.ndarray:
        with torch.no_grad():
            return head_logits(adapted, head_features(ctx.features(split), scale)).argmax(1).numpy()

    n = head_size(head.params)
    return Fitted(predict=predict, trainable_params=n, total_params=n)

"""Few-shot episodes (``bench run --episodes N:K:Q:E``): the spec, seeded paired sampling, one episode, the CI.

The protocol of Chen et al. (2019, "A Closer Look at Few-shot Classification"), as ProtoNets and
MAML papers use it: each of ``E`` episodes draws ``N`` of the task's **novel** classes
(:mod:`bench.episodes.classes`) from its **test** split, then ``K`` support and ``Q`` query items of
each class (support and query disjoint). The strategy is fit
on the support set (a sealed :class:`~bench.strategies.FitContext` whose ``labelled`` is the
support set, classes relabelled ``0..N-1`` in the episode's class order) and predicts the query
set through a label-free view; the harness scores the predictions. A run reports the mean query
accuracy over episodes and its 95% interval ``1.96 * std / sqrt(E)`` (``std`` over episodes,
``ddof=0``, as in Chen et al.'s code).

Sampling is content-addressed like label budgets (:mod:`bench.run.budgets`): the generator is seeded
by the test split's item ids and labels, the spec and the seed, never by the task's name, the
encoder or the strategy, so every strategy and encoder of a run sees exactly the same episodes
(paired comparisons). Only novel classes with at least ``K + Q`` test items can be drawn.

Meta-training hook (for ProtoNet/MAML-style plugins, see docs/plugins.md): a strategy object with
a ``meta_train(ctx)`` method is called once per (task, encoder, seed) before the episodes, with a
FitContext whose ``labelled`` is the base-class items of the task's **train** split (labels
``0..B-1`` in base-class order, ``ctx.classes`` the base classes, ``ctx.extra["episode"]`` the
evaluation episodes' N, K and Q); whatever it returns reaches every episode's ``fit`` as
``ctx.extra["meta_state"]``. No novel-class item reaches it.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.episodes.classes import ClassSplit
from bench.errors import UserError
from bench.run.budgets import pool_digest
from bench.strategies import FitContext, Fitted
from bench.tasks import Split
from bench.views import LabelFreeSplit, LabelledSplit, gated_features

SYNTAX = "N-way:K-shot:Q-query:E, e.g. --episodes 5:1:15:600"
#: z for a two-sided 95% normal interval (Chen et al. 2019 report 1.96 * std / sqrt(E))
Z95 = 1.96


@dataclass(frozen=True)
class EpisodeSpec:
    n_way: int
    k_shot: int
    q_query: int
    episodes: int

    @property
    def label(self) -> str:
        """The record's ``budget`` field: ``5-way 1-shot 15-query x600``."""
        return f"{self.n_way}-way {self.k_shot}-shot {self.q_query}-query x{self.episodes}"

    @property
    def short(self) -> str:
        return f"{self.n_way}-way {self.k_shot}-shot"


def parse_episodes(text: Any) -> EpisodeSpec:
    """``"5:1:15:600"`` -> EpisodeSpec; anything else is one line naming the value and the syntax."""
    s = str(text).strip()
    if not re.fullmatch(r"\d+:\d+:\d+:\d+", s):
        raise UserError(f"--episodes {s!r}: expected {SYNTAX}")
    n, k, q, e = (int(p) for p in s.split(":"))
    if n < 2 or k < 1 or q < 1 or e < 1:
        raise UserError(f"--episodes {s!r}: need N >= 2 classes, K >= 1 support, Q >= 1 query and E >= 1 episodes "
                        f"({SYNTAX})")
    return EpisodeSpec(n, k, q, e)


@dataclass(frozen=True)
class Episodes:
    """``classes[e]``: the episode's N class indices (its label order); ``support[e]`` / ``query[e]``:
    positions in the test split, class by class (K then Q per class)."""

    spec: EpisodeSpec
    classes: np.ndarray
    support: np.ndarray
    query: np.ndarray
    digest: str

    def __len__(self) -> int:
        return len(self.classes)


def sample_episodes(labels: np.ndarray, ids: Sequence[str], spec: EpisodeSpec, seed: int,
                    what: str = "the test split", among: Sequence[int] | None = None) -> Episodes:
    """The ``spec.episodes`` episodes of ``seed`` over a split with these labels and ids, drawn from
    the classes ``among`` only (the novel classes; default: every class)."""
    labels = np.asarray(labels).astype(np.int64)
    counts = np.bincount(labels) if len(labels) else np.zeros(0, dtype=np.int64)
    eligible = np.flatnonzero(counts >= spec.k_shot + spec.q_query)
    kind = "classes"
    if among is not None:
        eligible, kind = np.intersect1d(eligible, np.asarray(among, dtype=np.int64)), "novel classes"
    if len(eligible) < spec.n_way:
        raise UserError(f"--episodes {spec.n_way}:{spec.k_shot}:{spec.q_query}:E: {what} has "
                        f"{len(eligible)} {kind} with at least K+Q = {spec.k_shot + spec.q_query} items, fewer than "
                        f"N = {spec.n_way}; lower N, K or Q")
    key = f"episodes|{pool_digest(labels, list(ids))}|{spec.n_way}:{spec.k_shot}:{spec.q_query}|{seed}"
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little"))
    members = {int(c): np.flatnonzero(labels == c) for c in eligible}
    n, k, q = spec.n_way, spec.k_shot, spec.q_query
    classes = np.empty((spec.episodes, n), dtype=np.int64)
    support = np.empty((spec.episodes, n * k), dtype=np.int64)
    query = np.empty((spec.episodes, n * q), dtype=np.int64)
    for e in range(spec.episodes):
        classes[e] = rng.choice(eligible, size=n, replace=False)
        for j, c in enumerate(classes[e]):
            picked = rng.choice(members[int(c)], size=k + q, replace=False)
            support[e, j * k:(j + 1) * k] = picked[:k]
            query[e, j * q:(j + 1) * q] = picked[k:]
    h = hashlib.sha256()
    for e in range(spec.episodes):
        h.update(("|".join(ids[int(i)] for i in support[e]) + "#" + "|".join(ids[int(i)] for i in query[e])
                  + "\n").encode())
    return Episodes(spec, classes, support, query, h.hexdigest())


def mean_ci(accuracies: Sequence[float]) -> tuple[float, float]:
    """Mean and the 95% half-width ``1.96 * std / sqrt(E)`` (std with ``ddof=0``) over episodes."""
    a = np.asarray(accuracies, dtype=np.float64)
    if not len(a):
        raise ValueError("no episodes")
    return float(a.mean()), float(Z95 * a.std() / math.sqrt(len(a)))


def summarise(accuracies: Sequence[float]) -> dict[str, Any]:
    """The record's summary of per-episode accuracies: mean, CI, std, range, count and a digest."""
    a = [round(float(x), 6) for x in accuracies]
    mean, ci = mean_ci(a)
    digest = hashlib.sha256(",".join(map(repr, a)).encode()).hexdigest()
    return {"mean": round(mean, 6), "ci95": round(ci, 6), "std": round(float(np.std(a)), 6), "min": min(a),
            "max": max(a), "n": len(a), "accuracies_sha256": digest}


def _closure_reader(split: Split) -> Callable[[Sequence[int]], list[np.ndarray]]:
    def images(positions: Sequence[int]) -> list[np.ndarray]:
        return split.images(positions)

    return images


def episode_extra(task: Any, classes: np.ndarray, spec: EpisodeSpec, index: int, meta_state: Any) -> dict[str, Any]:
    """The task's extra fields for an episode: per-class lists cut to its classes, the episode's shape
    (``extra["episode"]``) and, after a meta-training hook, ``extra["meta_state"]``."""
    extra = dict(task.extra)
    for key, value in task.extra.items():
        if isinstance(value, (list, tuple)) and len(value) == task.num_classes:
            extra[key] = [value[int(c)] for c in classes]
    extra["episode"] = {"index": index, "n_way": spec.n_way, "k_shot": spec.k_shot, "q_query": spec.q_query,
                        "classes": [task.classes[int(c)] for c in classes]}
    if meta_state is not None:
        extra["meta_state"] = meta_state
    return extra


def run_episode(strategy: Any, task: Any, episodes: Episodes, index: int, features: Callable[[Split], np.ndarray],
                context: dict[str, Any], meta_state: Any = None) -> tuple[float, Fitted]:
    """Fit ``strategy`` on episode ``index``'s support set and score its query predictions.

    ``features`` gives frozen features of a real split (subsets of the test split index its cached
    features); ``context`` holds the other FitContext arguments (config, seed, device, load_encoder,
    encoder_meta, progress)."""
    spec, classes = episodes.spec, episodes.classes[index]
    relabel = {int(c): j for j, c in enumerate(classes)}
    real_support = task.test.subset(episodes.support[index].tolist())
    real_query = task.test.subset(episodes.query[index].tolist())
    gated, allow, open_after_fit = gated_features(features)
    support_labels = np.array([relabel[int(y)] for y in real_support.labels], dtype=np.int64)
    labelled = allow(LabelledSplit(real_support.ids, support_labels, _closure_reader(real_support)), real_support)
    query = allow(LabelFreeSplit.of(real_query), real_query, after_fit_only=True)
    ctx = FitContext(task_name=task.name, classes=[task.classes[int(c)] for c in classes],
                     extra=episode_extra(task, classes, spec, index, meta_state), labelled=labelled,
                     features=gated, **context)
    fitted = strategy.fit(ctx)
    open_after_fit()
    pred = np.asarray(fitted.predict(query)).astype(np.int64)
    truth = np.array([relabel[int(y)] for y in real_query.labels], dtype=np.int64)
    if pred.shape != truth.shape:
        raise ValueError(f"predict() returned {pred.shape[0] if pred.ndim else 0} labels for {len(truth)} query items")
    return float((pred == truth).mean()), fitted


def meta_train(strategy: Any, task: Any, features: Callable[[Split], np.ndarray], context: dict[str, Any],
               split: ClassSplit, spec: EpisodeSpec) -> Any:
    """The meta-training hook: ``strategy.meta_train(ctx)`` on the base-class items of the train split
    (relabelled ``0..B-1`` in ``split.base`` order; ``ctx.extra["episode"]`` has index -1, the
    evaluation's N, K, Q and the base classes), or None for a strategy without one."""
    hook = getattr(strategy, "meta_train", None)
    if not callable(hook):
        return None
    base = np.asarray(split.base, dtype=np.int64)
    train_labels = np.asarray(task.train.labels, dtype=np.int64)
    positions = np.flatnonzero(np.isin(train_labels, base))
    real = task.train.subset(positions.tolist())
    relabel = {int(c): j for j, c in enumerate(base)}
    gated, allow, _ = gated_features(features)
    labelled = allow(LabelledSplit(real.ids, np.array([relabel[int(y)] for y in real.labels], dtype=np.int64),
                                   _closure_reader(real)), real)
    extra = episode_extra(task, base, spec, -1, None)
    ctx = FitContext(task_name=task.name, classes=[task.classes[int(c)] for c in base], extra=extra,
                     labelled=labelled, features=gated, **context)
    return hook(ctx)

"""Forgetting: what adapting a backbone to one task cost it on another (points lost on a reference task).

``reference_drop = probe accuracy of the original backbone on a reference task - that of the
adapted backbone``: positive means the adaptation made the backbone worse on the reference task
(it forgot), negative that it helped. (Records before this name stored ``forgetting`` = adapted
minus original, the opposite sign; the leaderboard converts them when it reads them.) Pick a
reference task that is not a near copy of the adapted task (``--forgetting TASK``): ``digits``
and ``mnist5k`` are both handwritten digits, so adapting to one tends to help on the other.
The probe is the ``linear-probe`` strategy's classifier: multinomial logistic regression (C = 100)
on features centred and divided by one global scale, fitted on the reference task's train pool and scored on its test
split. To keep it cheap on a CPU both are subsampled, stratified and seeded: at most
``max_train`` (600) pool and ``max_test`` (400) test images, the same items for the original and
the adapted backbone, so the difference is paired.

The original backbone's score depends only on the original encoder (its weight fingerprint), the
reference task and the subsample, so it is computed once per process and cached; callers that
keep their own cache can pass it as ``original_score``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.encoders import Encoder, encode
from bench.tasks import Split, TaskData

MAX_TRAIN = 600
MAX_TEST = 400
#: The linear probe's default penalty (chosen by benchmarks/probe_C.py on a pool carve-out).
PROBE_C = 100.0

_original_cache: dict[tuple[Any, ...], float] = {}


def _subsample(split: Split, limit: int, seed: int) -> Split:
    """At most ``limit`` items, stratified by label (proportional), seeded; all if it fits."""
    n = len(split)
    if n <= limit:
        return split
    labels = np.asarray(split.labels)
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        k = max(1, int(round(limit * len(idx) / n)))
        chosen.extend(rng.permutation(idx)[:k].tolist())
    if len(chosen) > limit:  # rounding overshoot
        chosen = rng.permutation(chosen)[:limit].tolist()
    return split.subset(sorted(chosen))


def reference_splits(reference: TaskData, seed: int = 0, max_train: int = MAX_TRAIN,
                     max_test: int = MAX_TEST) -> tuple[Split, Split]:
    """The (train, test) subsamples the probe uses."""
    return _subsample(reference.train, max_train, seed), _subsample(reference.test, max_test, seed + 1)


def probe_accuracy(encoder: Encoder, train: Split, test: Split, device: str = "cpu", seed: int = 0) -> float:
    """Linear-probe accuracy of ``encoder``'s backbone: fit on ``train`` features, score on ``test``."""
    from bench.probe import FeatureScale, fit_logistic

    raw_train = encode(encoder, train.images, len(train), device=device)
    scale = FeatureScale.fit(raw_train)  # the linear probe's scaling: centred, one global scale
    x_train, x_test = scale(raw_train), scale(encode(encoder, test.images, len(test), device=device))
    y_train = np.asarray(train.labels)
    if len(np.unique(y_train)) < 2:
        return float((np.asarray(test.labels) == y_train[0]).mean())
    clf = fit_logistic(x_train, y_train, PROBE_C, 2000, seed)
    return float((clf.predict(x_test) == np.asarray(test.labels)).mean())


def original_accuracy(original: Encoder, reference: TaskData, device: str = "cpu", seed: int = 0,
                      max_train: int = MAX_TRAIN, max_test: int = MAX_TEST) -> float:
    """The original backbone's reference probe accuracy, cached per (weights, task, subsample)."""
    key = (original.fingerprint(), reference.name, len(reference.train), len(reference.test), seed, max_train, max_test)
    if key not in _original_cache:
        train, test = reference_splits(reference, seed, max_train, max_test)
        _original_cache[key] = probe_accuracy(original, train, test, device, seed)
    return _original_cache[key]


def measure(original: Encoder, adapted: Encoder, reference: TaskData, device: str = "cpu", seed: int = 0,
            max_train: int = MAX_TRAIN, max_test: int = MAX_TEST,
            original_score: float | None = None) -> dict[str, Any]:
    """Forgetting of ``adapted`` (e.g. ``Fitted.encoder``) relative to ``original`` (the
    pre-trained encoder it started from) on ``reference``.

    Returns ``{"reference_task", "reference_accuracy_original", "reference_accuracy_adapted",
    "reference_drop", "reference_train_items", "reference_test_items"}`` with
    ``reference_drop = original - adapted`` (positive means accuracy was lost).
    """
    train, test = reference_splits(reference, seed, max_train, max_test)
    if original_score is None:
        original_score = original_accuracy(original, reference, device, seed, max_train, max_test)
    adapted_score = probe_accuracy(adapted, train, test, device, seed)
    return {
        "reference_task": reference.name,
        "reference_accuracy_original": round(float(original_score), 4),
        "reference_accuracy_adapted": round(adapted_score, 4),
        "reference_drop": round(float(original_score) - adapted_score, 4),
        "reference_train_items": len(train),
        "reference_test_items": len(test),
    }

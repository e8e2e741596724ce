"""The strategy contract: ``fit(ctx) -> Fitted``.

A strategy receives a :class:`FitContext` with the labelled budget, the unlabelled target images
(shifted tasks only), its options, and access to the encoder (a fresh pre-trained copy, or the
same architecture randomly initialised) and to cached frozen features. It returns a
:class:`Fitted` whose ``predict(split)`` gives class indices for any split of the task. The
harness computes every metric from those predictions: strategies never see test labels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from bench.encoders import Encoder
from bench.tasks import Split, TaskData


@dataclass
class FitContext:
    task: TaskData
    #: The budget: a subset of ``task.train`` chosen by the shared manifest.
    labelled: Split
    #: ``task.target_train`` on shifted tasks (images only: strategies must not read its labels).
    unlabelled_target: Split | None
    #: The strategy's defaults overridden by the user's ``--set`` options.
    config: dict[str, Any]
    seed: int
    device: str
    #: ``load_encoder(pretrained=True)`` returns a fresh, independent copy of the pre-trained
    #: encoder (safe to modify); ``pretrained=False`` the same architecture with random init.
    load_encoder: Callable[..., Encoder]
    #: Frozen features of the pre-trained encoder for any split of the task or a subset of one
    #: (read from the feature cache).
    features: Callable[[Split], np.ndarray]
    #: Metadata of the encoder (spec metadata merged with the variant's).
    encoder_meta: dict[str, Any] = field(default_factory=dict)
    #: Report progress inside long fits (a short status string).
    progress: Callable[[str], None] = lambda message: None

    @property
    def task_name(self) -> str:
        return self.task.name

    @property
    def classes(self) -> list[str]:
        return list(self.task.classes)

    @property
    def num_classes(self) -> int:
        return len(self.task.classes)

    @property
    def extra(self) -> dict[str, Any]:
        """The task's extra fields (e.g. ``prompts`` for zero-shot)."""
        return self.task.extra


@dataclass
class Fitted:
    """A fitted strategy."""

    #: class indices ``[N]`` for every item of a split
    predict: Callable[[Split], np.ndarray]
    trainable_params: int
    total_params: int
    #: The adapted encoder, when the strategy changed it (used to measure forgetting).
    encoder: Encoder | None = None
    #: Extra numbers to record (e.g. steps taken, chosen hyper-parameters).
    info: dict[str, Any] = field(default_factory=dict)


class Strategy(Protocol):
    def fit(self, ctx: FitContext) -> Fitted: ...

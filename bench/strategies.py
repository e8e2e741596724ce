"""The strategy contract: ``fit(ctx) -> Fitted``, and the sealed context a strategy receives.

A strategy receives a :class:`FitContext` with the task's name, classes and extra fields, the
labelled budget, label-free unlabelled target images (shifted tasks only), its options, and access
to the encoder (a fresh pre-trained copy, or the same architecture randomly initialised) and to
cached frozen features. It returns a :class:`Fitted` whose ``predict(split)`` gives class indices
for a split the harness hands it (a label-free view). The harness computes every metric from those
predictions: strategies never see test or target labels (see :mod:`bench.views`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from bench import _compat
from bench.tasks import Split
from bench.views import LabelFreeSplit, TaskView

if TYPE_CHECKING:
    from bench.encoders import Encoder


def _no_progress(message: str) -> None:
    pass


def _not_given(name: str) -> Callable[..., Any]:
    def missing(*args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"this FitContext was built without {name}=")

    return missing


class FitContext:
    """What a strategy may use during ``fit``.

    ``task_name``, ``classes``, ``num_classes``, ``extra``: the task, without its splits.
    ``labelled``: the budget (a split whose labels may be read).
    ``unlabelled_target``: the target domain's training images on shifted tasks, label-free.
    ``config``: the strategy's defaults overridden by the user's ``--set`` options.
    ``load_encoder(pretrained=True)``: a fresh, independent copy of the pre-trained encoder (safe
    to modify); ``pretrained=False``: the same architecture with random init.
    ``features(split)``: frozen features of the pre-trained encoder, read from the feature cache,
    for ``labelled``, ``unlabelled_target``, their subsets, and in ``predict`` the split given.
    ``encoder_meta``: the encoder's declared metadata. ``progress(message)``: a short status.
    ``shared``: a dict the worker keeps for a cell group: strategies keep work the group's cells share
    in it under a key of their own (the DA baseline memo, :class:`bench.domain.loop.BaselineMemo`).

    ``task=`` (a :class:`~bench.tasks.TaskData`) is still accepted instead of ``task_name``,
    ``classes`` and ``extra`` (deprecated; the context keeps none of its splits).
    """

    def __init__(
        self,
        task: Any = None,
        labelled: Split | None = None,
        unlabelled_target: Split | None = None,
        config: dict[str, Any] | None = None,
        seed: int = 0,
        device: str = "cpu",
        load_encoder: Callable[..., Encoder] | None = None,
        features: Callable[[Split], np.ndarray] | None = None,
        encoder_meta: Any = None,
        progress: Callable[[str], None] | None = None,
        *,
        task_name: str | None = None,
        classes: list[str] | None = None,
        extra: dict[str, Any] | None = None,
        shared: dict[str, Any] | None = None,
    ) -> None:
        if task is not None:
            _compat.warn("FitContext(task=)")
            task_name = task.name if task_name is None else task_name
            classes = list(task.classes) if classes is None else classes
            extra = task.extra if extra is None else extra
        if labelled is None:
            raise TypeError("FitContext needs the labelled budget (labelled=)")
        self._task = TaskView(task_name or "", classes or [], extra)
        self.labelled = labelled
        self.unlabelled_target = LabelFreeSplit.of(unlabelled_target) if unlabelled_target is not None else None
        self.config = dict(config or {})
        self.seed = seed
        self.device = device
        self.load_encoder: Callable[..., Encoder] = load_encoder or _not_given("load_encoder")
        self.features: Callable[[Split], np.ndarray] = features or _not_given("features")
        self.encoder_meta = encoder_meta if encoder_meta is not None else {}
        self.progress = progress or _no_progress
        self.shared: dict[str, Any] = shared if shared is not None else {}

    @property
    def task_name(self) -> str:
        return self._task.name

    @property
    def classes(self) -> list[str]:
        return list(self._task.classes)

    @property
    def num_classes(self) -> int:
        return self._task.num_classes

    @property
    def extra(self) -> dict[str, Any]:
        """The task's extra fields (e.g. ``prompts`` for zero-shot)."""
        return self._task.extra

    @property
    def task(self) -> TaskView:
        """Deprecated: a label-free view with ``name``, ``classes``, ``num_classes`` and ``extra``."""
        _compat.warn("ctx.task")
        return self._task


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
    #: Domain adaptation: the same recipe (backbone, steps, augmentation, seed) with the method's own
    #: loss switched off. The harness scores it on the same splits and records ``source_only_*``
    #: metrics and ``paired_gain`` (the method's target accuracy minus the baseline's).
    baseline: Fitted | None = None


class Strategy(Protocol):
    def fit(self, ctx: FitContext) -> Fitted: ...

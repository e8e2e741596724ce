"""What a strategy may see of a task: the labelled budget, label-free views and a gated feature source.

The harness hands strategies views instead of the task's splits:

- :class:`LabelledSplit` — the budget. Its labels may be read; it has no route back to the pool.
- :class:`LabelFreeSplit` — ids and images only (the unlabelled target pool during ``fit``, the
  test splits handed to ``predict``); reading ``.labels`` raises :class:`ProtocolError`.
- :class:`TaskView` — the task's ``name``, ``classes``, ``num_classes`` and ``extra``, no splits.
- :func:`gated_features` — ``ctx.features``: only for the views above (and their subsets), and
  for the views handed to ``predict`` only once ``fit`` has returned.

Views read images through a function that closes over the real split; Python has no sandbox, so
a strategy that digs into closures can still reach it. The views stop honest mistakes and make a
deliberate read visible in code review, nothing more.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from bench.errors import UserError
from bench.tasks import Split, SubsetSplit

RULE = "strategies may not read target labels"


class ProtocolError(UserError):
    """A strategy broke the protocol (read labels or features it may not see)."""


class HiddenAttributeError(ProtocolError, AttributeError):
    """An attribute strategies may not see (``hasattr`` and ``getattr(x, name, default)`` still work)."""


def _reader(split: Split) -> Callable[[Sequence[int]], list[np.ndarray]]:
    def images(positions: Sequence[int]) -> list[np.ndarray]:
        return split.images(positions)

    return images


class _View(Split):
    """Ids and images of some positions of a real split (kept out of reach, see the module doc)."""

    def __init__(self, ids: Sequence[str], read: Callable[[Sequence[int]], list[np.ndarray]],
                 base: _View | None = None, positions: np.ndarray | None = None) -> None:
        self.ids = list(ids)
        self._read = read
        #: the view this one is a subset of (itself a view), and the positions into it
        self._base = base
        self._positions = positions

    def images(self, positions: Sequence[int]) -> list[np.ndarray]:
        return self._read(positions)

    def fingerprint(self) -> str:
        raise ProtocolError(f"{type(self).__name__}.fingerprint() is not available to strategies; "
                            "use ctx.features(split) for cached features")

    def _subset_read(self, positions: np.ndarray) -> Callable[[Sequence[int]], list[np.ndarray]]:
        read = self._read
        return lambda pos: read([int(positions[i]) for i in pos])

    def root(self) -> tuple[_View, np.ndarray | None]:
        """The view this one was cut from (by :meth:`subset`) and the positions into it."""
        view, positions = self, None
        while view._base is not None:
            assert view._positions is not None
            positions = view._positions if positions is None else view._positions[positions]
            view = view._base
        return view, positions


class LabelledSplit(_View):
    """The labelled budget: ids, labels and images; subsets stay budgets."""

    def __init__(self, ids: Sequence[str], labels: np.ndarray, read: Callable[[Sequence[int]], list[np.ndarray]],
                 base: _View | None = None, positions: np.ndarray | None = None) -> None:
        super().__init__(ids, read, base, positions)
        self.labels = np.array(labels, dtype=np.int64)  # a copy: writing to it changes nothing outside

    @classmethod
    def of(cls, split: Split) -> LabelledSplit:
        return cls(split.ids, np.asarray(split.labels), _reader(split))

    def subset(self, positions: Sequence[int]) -> LabelledSplit:
        pos = np.asarray(positions, dtype=np.int64)
        return LabelledSplit([self.ids[i] for i in pos], self.labels[pos], self._subset_read(pos), self, pos)


class LabelFreeSplit(_View):
    """Ids and images of a split whose labels strategies may not read."""

    @classmethod
    def of(cls, split: Split) -> LabelFreeSplit:
        if isinstance(split, LabelFreeSplit):
            return split
        return cls(split.ids, _reader(split))

    @property
    def labels(self) -> np.ndarray:  # type: ignore[override]
        raise HiddenAttributeError(f"{RULE}: this split's labels are hidden "
                                   "(it is unlabelled target data or a test split)")

    def subset(self, positions: Sequence[int]) -> LabelFreeSplit:
        pos = np.asarray(positions, dtype=np.int64)
        return LabelFreeSplit([self.ids[i] for i in pos], self._subset_read(pos), self, pos)


class TaskView:
    """The task as strategies see it: name, classes and extra fields; no splits."""

    __slots__ = ("name", "classes", "extra")

    def __init__(self, name: str, classes: Sequence[str], extra: dict[str, Any] | None = None) -> None:
        self.name = name
        self.classes = list(classes)
        self.extra = dict(extra or {})

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __getattr__(self, attr: str) -> Any:
        if attr in ("train", "test", "target_train", "target_test", "splits"):
            raise HiddenAttributeError(f"{RULE}: ctx.task has no {attr!r}; use ctx.labelled, ctx.unlabelled_target "
                                "and the split handed to predict()")
        raise AttributeError(attr)


def gated_features(source: Callable[[Split], np.ndarray]) -> tuple[
        Callable[[Split], np.ndarray], Callable[..., Any], Callable[[], None]]:
    """``(features, allow, open)``: ``features`` is ``ctx.features``, answering from ``source``
    (features of a real split) for allowed views only; ``allow(view, split, after_fit=False)``
    registers a view and the real split behind it; views registered ``after_fit`` answer only once
    ``open()`` was called (``fit`` has returned). The state lives in closures, not attributes, so
    ``vars(ctx.features)`` shows no split."""
    real: dict[int, tuple[_View, Split]] = {}
    after_fit: set[int] = set()
    state = {"open": False}

    def allow(view: _View, split: Split, after_fit_only: bool = False) -> _View:
        real[id(view)] = (view, split)
        if after_fit_only:
            after_fit.add(id(view))
        return view

    def open_() -> None:
        state["open"] = True

    def features(split: Split) -> np.ndarray:
        outer: list[np.ndarray] = []
        while isinstance(split, SubsetSplit):  # a strategy's own SubsetSplit of a view
            outer.append(np.asarray(split.positions))
            split = split.parent
        root, positions = split.root() if isinstance(split, _View) else (split, None)
        for pos in reversed(outer):
            positions = pos if positions is None else positions[pos]
        entry = real.get(id(root))
        if entry is None or entry[0] is not root:
            raise ProtocolError(f"{RULE}: ctx.features() takes ctx.labelled, ctx.unlabelled_target, the split "
                                "handed to predict(), or subsets of those; not a split of the task itself")
        if id(root) in after_fit and not state["open"]:
            raise ProtocolError(f"{RULE}: features of an evaluation split are available in predict(), not in fit()")
        feats = source(entry[1])
        return feats if positions is None else feats[positions]

    return features, allow, open_

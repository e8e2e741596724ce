"""What a task loader returns: splits of ``(image, label)`` with stable item ids and class names.

Images are ``uint8`` arrays of shape ``(H, W, C)`` with ``C`` 1 (grey) or 3 (RGB). A split
knows its item ids (stable strings: an index into a bundled array, or a path relative to a data
folder), its labels, and how to produce the images for a list of positions. Encoders turn images
into tensors (see :func:`bench.encoders.preprocess`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class Split:
    """A sequence of labelled items. Subclasses implement :meth:`images`."""

    ids: list[str]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def images(self, positions: Sequence[int]) -> list[np.ndarray]:
        """The images at ``positions`` as ``uint8`` ``(H, W, C)`` arrays."""
        raise NotImplementedError

    def subset(self, positions: Sequence[int]) -> Split:
        return SubsetSplit(self, np.asarray(positions, dtype=np.int64))

    def fingerprint(self) -> str:
        """A content hash: ids, labels and pixels. Subclasses with large files may hash less."""
        h = hashlib.sha256()
        h.update("\n".join(self.ids).encode())
        h.update(np.asarray(self.labels, dtype=np.int64).tobytes())
        for start in range(0, len(self), 512):
            for img in self.images(range(start, min(start + 512, len(self)))):
                h.update(str(img.shape).encode())
                h.update(np.ascontiguousarray(img).tobytes())
        return h.hexdigest()


class ArraySplit(Split):
    """A split held in memory as one ``(N, H, W, C)`` uint8 array."""

    def __init__(self, ids: Sequence[str], images: np.ndarray, labels: Sequence[int]) -> None:
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[..., None]
        if images.dtype != np.uint8:
            raise TypeError(f"ArraySplit images must be uint8, got {images.dtype}")
        if not (len(ids) == len(images) == len(labels)):
            raise ValueError(f"ids ({len(ids)}), images ({len(images)}) and labels ({len(labels)}) differ in length")
        self.ids = list(ids)
        self.array = images
        self.labels = np.asarray(labels, dtype=np.int64)
        self._fingerprint: str | None = None

    def images(self, positions: Sequence[int]) -> list[np.ndarray]:
        return list(self.array[np.asarray(list(positions), dtype=np.int64)])

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            h = hashlib.sha256()
            h.update("\n".join(self.ids).encode())
            h.update(self.labels.tobytes())
            h.update(str(self.array.shape).encode())
            h.update(np.ascontiguousarray(self.array).tobytes())
            self._fingerprint = h.hexdigest()
        return self._fingerprint


class SubsetSplit(Split):
    """Some positions of another split (a budget, a validation carve-out)."""

    def __init__(self, parent: Split, positions: np.ndarray) -> None:
        self.parent = parent
        self.positions = positions
        self.ids = [parent.ids[i] for i in positions]
        self.labels = np.asarray(parent.labels)[positions]

    def images(self, positions: Sequence[int]) -> list[np.ndarray]:
        return self.parent.images([int(self.positions[i]) for i in positions])


@dataclass
class TaskData:
    """A loaded task.

    ``train`` is the labelled pool budgets sample from; ``test`` is never used for any choice.
    Shifted tasks add ``target_train`` (unlabelled for strategies: only its images may be used)
    and ``target_test``, with ``source_domain`` / ``target_domain`` names and the same classes.
    """

    name: str
    classes: list[str]
    train: Split
    test: Split
    target_train: Split | None = None
    target_test: Split | None = None
    source_domain: str | None = None
    target_domain: str | None = None
    #: Where the images come from (for declared pretraining overlap), e.g. ("mnist",).
    dataset: tuple[str, ...] = ()
    #: How the split was made, recorded with every cell (e.g. "fixed stratified 4000/1000, seed 0").
    split_info: str = ""
    #: Items skipped while loading (unreadable or corrupt files), recorded with every cell.
    skipped_items: int = 0
    #: The images' native side length, if all share one (lets encoders pick a sensible resolution).
    native_size: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def shifted(self) -> bool:
        return self.target_test is not None

    def splits(self) -> dict[str, Split]:
        out = {"train": self.train, "test": self.test}
        if self.target_train is not None:
            out["target_train"] = self.target_train
        if self.target_test is not None:
            out["target_test"] = self.target_test
        return out


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Fixed stratified (pool, test) positions: per class, a seeded permutation; the first
    ``round(n_c * test_fraction)`` go to test. Both are returned sorted."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    pool, test = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        k = int(round(len(idx) * test_fraction))
        test.extend(idx[:k])
        pool.extend(idx[k:])
    return np.sort(np.asarray(pool, dtype=np.int64)), np.sort(np.asarray(test, dtype=np.int64))

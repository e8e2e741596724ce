"""What a task loader returns: splits of ``(image, label)`` with stable item ids and class names.

Images are ``uint8`` arrays of shape ``(H, W, C)`` with ``C`` 1 (grey) or 3 (RGB). A split
knows its item ids (stable strings: an index into a bundled array, or a path relative to a data
folder), its labels, and how to produce the images for a list of positions. Encoders turn images
into tensors (see :func:`bench.encoders.preprocess`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from bench.errors import UserError

#: File name endings read as images (folder tasks, the contamination hash index).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".jfif", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm",
                    ".pbm")


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


def printable(text: str | bytes | os.PathLike[str]) -> str:
    """``text`` safe to print, hash and store: bytes that are not UTF-8 (file names decoded with
    ``surrogateescape``) become ``\\xNN``, control characters (newlines, ANSI escapes) become
    ``\\n``, ``\\x1b`` and so on. Plain names come back unchanged."""
    raw = os.fsencode(text) if isinstance(text, os.PathLike) or isinstance(text, bytes) else text.encode(
        "utf-8", "surrogateescape")
    decoded = raw.decode("utf-8", "backslashreplace")
    if decoded.isprintable():
        return decoded
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in decoded)


def rgb_uint8(image: Image.Image) -> np.ndarray:
    """A PIL image as RGB ``uint8`` ``(H, W, 3)``."""
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


class FileSplit(Split):
    """Image files decoded on demand by ``decode`` (default: RGB ``uint8``).

    The fingerprint hashes ids, labels, file sizes and modification times: a changed file changes
    it, and nothing has to be decoded. An unreadable file is a :class:`UserError` ending in
    ``fix`` (what the user should do about it).
    """

    def __init__(self, ids: Sequence[str], labels: Sequence[int] | np.ndarray, paths: Sequence[str | os.PathLike[str]],
                 decode: Callable[[Image.Image], np.ndarray] = rgb_uint8,
                 fix: str = "remove or replace the file") -> None:
        self.ids = list(ids)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.paths = [Path(p) for p in paths]
        self.decode = decode
        self.fix = fix
        self._fingerprint: str | None = None

    def images(self, positions: Sequence[int]) -> list[np.ndarray]:
        out = []
        for p in positions:
            path = self.paths[int(p)]
            try:
                with Image.open(path) as im:
                    out.append(self.decode(im))
            except (OSError, ValueError, Image.DecompressionBombError) as exc:
                raise UserError(f"cannot read image {printable(path)}: {printable(str(exc))}; {self.fix}") from None
        return out

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            h = hashlib.sha256()
            for i, label, path in zip(self.ids, self.labels, self.paths):
                st = os.stat(path)
                line = f"{i}\x00{int(label)}\x00{st.st_size}\x00{st.st_mtime_ns}\n"
                h.update(line.encode("utf-8", "surrogateescape"))
            self._fingerprint = h.hexdigest()
        return self._fingerprint


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
    #: The classes few-shot episodes evaluate on (names; the others are base classes, for
    #: meta-training). Empty: ``bench run --episodes`` derives a seeded split (bench.episodes.classes).
    novel_classes: tuple[str, ...] = ()

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
    pool: list[int] = []
    test: list[int] = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        k = int(round(len(idx) * test_fraction))
        test.extend(idx[:k])
        pool.extend(idx[k:])
    return np.sort(np.asarray(pool, dtype=np.int64)), np.sort(np.asarray(test, dtype=np.int64))


def shifted_task(name: str, source: TaskData, target: TaskData, source_domain: str, target_domain: str) -> TaskData:
    """A shifted task from two unshifted tasks with the same classes: the source's pool and test,
    the target's pool as ``target_train`` (unlabelled for strategies) and its test as ``target_test``.
    ``extra`` is the source's (its prompts, for zero-shot), with the target's keys it lacks."""
    if list(source.classes) != list(target.classes):
        raise UserError(f"task {name!r}: source classes {source.classes} differ from target classes {target.classes}")
    native = source.native_size if source.native_size == target.native_size else None
    return TaskData(
        name=name,
        classes=list(source.classes),
        train=source.train,
        test=source.test,
        target_train=target.train,
        target_test=target.test,
        source_domain=source_domain,
        target_domain=target_domain,
        dataset=tuple(dict.fromkeys(tuple(source.dataset) + tuple(target.dataset))),
        split_info=f"source {source_domain}: {source.split_info}; target {target_domain}: {target.split_info}",
        skipped_items=source.skipped_items + target.skipped_items,
        native_size=native,
        extra={**target.extra, **source.extra},
    )

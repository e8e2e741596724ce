"""mnist5k <-> digits: two independently collected digit sets as a shifted task."""

from __future__ import annotations

import numpy as np

from bench.specs import TaskRequest
from bench_plugins.tasks import digits
from bench_plugins.tasks.digits._digits import load_shift


def _resolve(name):
    return {"mnist5k": digits.load_mnist5k_task, "digits": digits.load_digits_task}[name](TaskRequest(name))


def test_mnist5k_to_digits_uses_source_pool_and_target_pool_and_test():
    task = load_shift(TaskRequest("mnist5k->digits", resolve=_resolve))
    assert task.shifted and task.source_domain == "mnist5k" and task.target_domain == "digits"
    assert (len(task.train), len(task.test), len(task.target_train), len(task.target_test)) == (4000, 1000, 1258, 539)
    assert task.classes == [str(i) for i in range(10)]
    assert task.train.images([0])[0].shape == (28, 28, 1) and task.target_train.images([0])[0].shape == (8, 8, 1)
    assert task.target_train.images([0])[0].dtype == np.uint8
    assert task.native_size is None and set(task.dataset) == {"mnist", "uci-digits"}
    assert not set(task.train.ids) & set(task.target_train.ids)


def test_digits_to_mnist5k_is_the_reverse_and_loads_without_resolve():
    task = load_shift(TaskRequest("digits->mnist5k"))
    assert task.source_domain == "digits" and len(task.train) == 1258 and len(task.target_test) == 1000

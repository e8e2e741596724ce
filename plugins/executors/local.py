"""The ``local`` executor: cell groups run one after another in this process."""

from __future__ import annotations

import bench
from bench.specs import ExecutorSpec


@bench.hookimpl
def bench_register_executors():
    return [ExecutorSpec(name="local", description="run cells one after another in this process",
                         loader="bench.executors:LocalExecutor")]

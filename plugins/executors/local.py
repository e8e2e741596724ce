"""The ``local`` executor: cell groups one after another in this process, or in ``--jobs N`` worker processes."""

from __future__ import annotations

import bench
from bench.specs import ExecutorSpec


@bench.hookimpl
def bench_register_executors():
    return [ExecutorSpec(name="local", description="this process, group after group; --jobs N: N worker processes",
                         loader="bench_plugins.executors._local:LocalExecutor")]

"""The ``ray`` executor's registration (imports neither torch nor Ray; the implementation is ``_ray``)."""

from __future__ import annotations

import bench
from bench.extras import optional
from bench.specs import ExecutorSpec


@bench.hookimpl
def bench_register_executors():
    return [ExecutorSpec(name="ray", description="one Ray task per task x encoder group; --address auto|HOST:PORT",
                         loader=optional("ray", "bench_plugins.executors._ray:RayExecutor"))]

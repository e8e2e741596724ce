"""The ``submitit`` executor's registration (imports neither torch nor submitit; implementation: ``_submitit``)."""

from __future__ import annotations

import bench
from bench.extras import optional
from bench.specs import ExecutorSpec


@bench.hookimpl
def bench_register_executors():
    return [ExecutorSpec(name="submitit", description="a Slurm job array, one element per task x encoder group; "
                         "--slurm-partition, --slurm-time", loader=optional("submitit",
                                                                         "bench_plugins.executors._submitit:SubmititExecutor"))]

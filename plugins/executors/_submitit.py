"""The ``submitit`` executor: a Slurm job array with one element per cell group; the driver writes the records.

Each array element runs :func:`bench.run.worker.run_group_records` on one pickled
:class:`~bench.run.worker.CellGroup` (one task x encoder) and returns its records; the driver waits
for the elements as they finish (``submitit.helpers.as_completed``) and yields the records (it
alone appends them to ``results.jsonl``). Job files and logs go to ``OUT/submitit/`` (or
``--executor-option folder=DIR``), which, like ``--out``, must be on a filesystem the nodes share.

Options: ``--slurm-partition``, ``--slurm-time`` (minutes per element, default 60),
``--cpus-per-task`` (default 1), ``--gpus-per-task`` (default 1 with ``--device cuda``, else 0),
and ``--executor-option`` ``cluster`` (``slurm``, the default; ``local``: the elements run as
local processes; ``debug``: in this process), ``folder``, ``mem_gb``, ``max_parallel`` (array
elements running at once).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import submitit
from submitit.helpers import as_completed

from bench.errors import UserError
from bench.run.executors import GroupFailures, take_options
from bench.run.worker import CellGroup, run_group_records

OPTIONS = ("slurm_partition", "slurm_time", "cpus_per_task", "gpus_per_task", "cluster", "folder", "mem_gb",
           "max_parallel")
CLUSTERS = ("slurm", "local", "debug")


class SubmititExecutor:
    """A job array, one element per (task, encoder) group."""

    def run(self, groups: Iterable[CellGroup]) -> Iterator[dict[str, Any]]:
        options, pending = take_options(groups, "submitit", OPTIONS)
        todo = list(pending)
        if not todo:
            return
        executor = _executor(options, todo[0])
        jobs = executor.map_array(run_group_records, todo)
        by_job = {job.job_id: group for job, group in zip(jobs, todo)}
        failures = GroupFailures("submitit")
        for job in as_completed(jobs, poll_frequency=1.0):
            try:
                records = job.result()
            except Exception as exc:  # the element failed, timed out or was cancelled
                failures.add(by_job[job.job_id], exc)
                continue
            yield from records
        failures.raise_if_any(len(todo))


def _executor(options: dict[str, Any], first: CellGroup) -> Any:
    cluster = str(options.get("cluster", "slurm"))
    if cluster not in CLUSTERS:
        raise UserError(f"--executor-option cluster={cluster}: use one of {', '.join(CLUSTERS)}")
    if cluster == "slurm" and shutil.which("sbatch") is None:
        raise UserError("--executor submitit: no Slurm here (sbatch not found); run the command on a Slurm "
                        "login node, or pass --executor-option cluster=local to run the jobs as local processes")
    gpus = options.get("gpus_per_task", 1 if first.device.startswith("cuda") else 0)
    if not isinstance(gpus, int) or isinstance(gpus, bool) or gpus < 0:
        raise UserError(f"--gpus-per-task {gpus!r}: --executor submitit takes a whole number of GPUs")
    folder = Path(options.get("folder") or Path(first.config.out) / "submitit")
    executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
    params: dict[str, Any] = {"name": "bench", "timeout_min": int(options.get("slurm_time", 60)),
                              "cpus_per_task": int(options.get("cpus_per_task", 1)), "gpus_per_node": gpus,
                              "tasks_per_node": 1, "nodes": 1}
    if "mem_gb" in options:
        params["mem_gb"] = options["mem_gb"]
    if "slurm_partition" in options:
        params["slurm_partition"] = str(options["slurm_partition"])
    if "max_parallel" in options:
        params["slurm_array_parallelism"] = int(options["max_parallel"])
    executor.update_parameters(**params)
    return executor

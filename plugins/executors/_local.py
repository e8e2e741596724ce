"""``local --jobs N``: cell groups in N spawned worker processes on this machine (N CPU slots or GPUs).

``--jobs 1`` (the default) runs the groups in this process, one after another
(:class:`bench.run.executors.LocalExecutor`). With ``N > 1`` each group (one task x encoder) is one job
in a pool of N ``spawn`` processes; a worker loads plugins from entry points, re-reads the task,
manifests and cached features, and returns its group's records, which are yielded as groups
finish (the driver alone appends them). Each worker gets ``cpu_count // N`` torch threads unless
``OMP_NUM_THREADS`` is set, and with ``--device cuda`` its own GPU (worker i sees GPU i mod the
GPU count).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from typing import Any

import bench.run.executors
from bench.errors import UserError
from bench.run.executors import GroupFailures, take_options
from bench.run.worker import CellGroup, run_group_records


class LocalExecutor(bench.run.executors.LocalExecutor):
    """This process (``--jobs 1``), or a pool of ``--jobs N`` spawned processes."""

    def run(self, groups: Iterable[Any],
            run_cell: Callable[[Any], dict[str, Any]] | None = None) -> Iterator[dict[str, Any]]:
        if run_cell is not None:
            yield from super().run(groups, run_cell)
            return
        options, pending = take_options(groups, "local", ["jobs"])
        jobs = options.get("jobs", 1)
        if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
            raise UserError(f"--jobs {jobs!r}: use a positive integer (worker processes)")
        if jobs == 1:
            yield from super().run(pending)
            return
        yield from _pool(list(pending), jobs)


def _pool(groups: list[CellGroup], jobs: int) -> Iterator[dict[str, Any]]:
    if not groups:
        return
    ctx = multiprocessing.get_context("spawn")
    slots = ctx.Queue()
    for i in range(jobs):
        slots.put(i)
    threads = max(1, (os.cpu_count() or 1) // jobs)
    gpus = _gpu_count() if groups[0].device == "cuda" else 0
    failures = GroupFailures("local --jobs")
    with ProcessPoolExecutor(min(jobs, len(groups)), mp_context=ctx, initializer=_init_worker,
                             initargs=(slots, threads, gpus)) as pool:
        futures: dict[Future[list[dict[str, Any]]], CellGroup] = {
            pool.submit(run_group_records, g): g for g in groups}
        for future in as_completed(futures):
            try:
                records = future.result()
            except Exception as exc:  # the worker died or the group raised outside its cells
                failures.add(futures[future], exc)
                continue
            yield from records
    failures.raise_if_any(len(groups))


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count()


def _init_worker(slots: Any, threads: int, gpus: int) -> None:
    """A worker's share of the machine: its GPU (before CUDA starts) and its torch threads."""
    slot = slots.get()
    if gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(slot % gpus)
    if "OMP_NUM_THREADS" not in os.environ:
        import torch

        torch.set_num_threads(threads)

"""The ``ray`` executor: one Ray task per cell group (task x encoder), records streamed back as tasks finish.

A task runs :func:`bench.run.worker.run_group_records` on the pickled :class:`~bench.run.worker.CellGroup`,
so the group's cells share the loaded encoder and its cached features; the driver waits with
``ray.wait`` and yields each finished group's records (it alone appends them). ``--address``
joins a running cluster (``auto`` or ``HOST:PORT``); without it a local Ray instance is started
for the run and shut down after it. An instance already initialised in this process (a test, a
notebook) is used as it is. Resources per task: ``--cpus-per-task`` (default 1) and
``--gpus-per-task`` (default 1 with ``--device cuda``, else 0; fractions share a GPU).
``--executor-option connect_timeout=S`` (default 30): a ``HOST:PORT`` that does not answer within
``S`` seconds is one line naming it (Ray itself retries for minutes).
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Iterator
from typing import Any

import ray

from bench.errors import UserError
from bench.run.executors import GroupFailures, take_options
from bench.run.worker import CellGroup, run_group_records

OPTIONS = ("address", "cpus_per_task", "gpus_per_task", "connect_timeout")
#: seconds a ``HOST:PORT`` given to ``--address`` has to accept a connection
CONNECT_TIMEOUT = 30.0


class RayExecutor:
    """One Ray task per (task, encoder) group."""

    def run(self, groups: Iterable[CellGroup]) -> Iterator[dict[str, Any]]:
        options, pending = take_options(groups, "ray", OPTIONS)
        todo = list(pending)
        if not todo:
            return
        started = _connect(options.get("address"), options.get("connect_timeout", CONNECT_TIMEOUT))
        try:
            yield from _run(todo, options)
        finally:
            if started:
                ray.shutdown()


def _connect(address: str | None, timeout: Any = CONNECT_TIMEOUT) -> bool:
    """Join ``address`` (or start a local instance); True when this call started Ray."""
    if ray.is_initialized():
        return False
    if address and address != "auto":
        check_reachable(address, timeout)
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    except ConnectionError as exc:
        raise UserError(f"--address {address}: no Ray cluster there ({str(exc).splitlines()[0]}); start one "
                        "with `ray start --head`, or leave out --address to start a local instance") from None
    return True


def check_reachable(address: str, timeout: Any) -> None:
    """A ``HOST:PORT`` accepts a TCP connection within ``timeout`` seconds, else one line naming it."""
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < float("inf"):
        raise UserError(f"--executor-option connect_timeout={timeout!r}: use a positive number of seconds")
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise UserError(f"--address {address!r}: use auto or HOST:PORT (the head node's GCS port, e.g. 10.0.0.5:6379)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=float(timeout)).close()
    except OSError as exc:
        why = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or type(exc).__name__).lower()
        raise UserError(f"--address {address}: no Ray cluster reachable there within {timeout:g} s ({why}); check the "
                        "head node's address and port (`ray start --head` prints them) or leave out --address to "
                        "start a local instance") from None


def _run(groups: list[CellGroup], options: dict[str, Any]) -> Iterator[dict[str, Any]]:
    gpus = options.get("gpus_per_task", 1 if groups[0].device.startswith("cuda") else 0)
    task = ray.remote(run_group_records).options(num_cpus=options.get("cpus_per_task", 1), num_gpus=gpus)
    refs = {task.remote(g): g for g in groups}
    failures = GroupFailures("ray")
    while refs:
        [ready], _ = ray.wait(list(refs), num_returns=1)
        group = refs.pop(ready)
        try:
            records = ray.get(ready)
        except ray.exceptions.RayError as exc:
            failures.add(group, exc)
            continue
        yield from records
    failures.raise_if_any(len(groups))

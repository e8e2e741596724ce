"""Loading tasks by name, and the cache root: the one place the harness and the CLI both use.

A task name resolves through the task registry (``NAME``, ``NAME:VARIANT`` or a parametric
pattern such as ``folder:PATH``); the loaded :class:`~bench.tasks.TaskData` gets the requested
name and the datasets its spec declares, and is kept so each task loads once per process.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bench.errors import UserError
from bench.specs import TaskRequest
from bench.tasks import TaskData


def cache_root() -> Path:
    """``$BENCH_CACHE_DIR`` or ``~/.cache/transfer-bench`` (features and contamination hashes)."""
    return Path(os.environ.get("BENCH_CACHE_DIR") or Path.home() / ".cache" / "transfer-bench")


class TaskLoader:
    """Loads tasks by name through the plugins' task registry, each once."""

    def __init__(self, plugins: Any, data_dir: str | None = None, download: bool = False) -> None:
        self.plugins = plugins
        self.data_dir = data_dir
        self.download = download
        self._tasks: dict[str, TaskData] = {}

    def __call__(self, name: str) -> TaskData:
        return self.load(name)

    def load(self, name: str) -> TaskData:
        if name not in self._tasks:
            spec, _variant = self.plugins.tasks.resolve(name)
            request = TaskRequest(name=name, data_dir=self.data_dir, download=self.download, resolve=self.load)
            task = spec.load(request)
            if not isinstance(task, TaskData):
                raise UserError(f"task plugin {spec.plugin!r} returned {type(task).__name__} for {name!r}, "
                                "not TaskData")
            task.name = name
            # what the spec declares counts too (a wrapper task may reuse another task's data)
            task.dataset = tuple(dict.fromkeys([*task.dataset, *spec.dataset]))
            self._tasks[name] = task
        return self._tasks[name]

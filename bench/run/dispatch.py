"""Which driver runs a ``bench run``: the one place the mode (budget grid, ``--stream``, ``--episodes``) is chosen.

Every mode shares the run folder (:mod:`bench.run.folder`) and hands cell groups to the run's
executor (:func:`bench.run.executors.execute`); what differs is the driver that plans the cells:

- ``grid``: :class:`bench.run.runner.Runner` (encoder x strategy x task x budget x seed, ``results.jsonl``);
- ``stream`` (``--stream``): :class:`bench.continual.driver.StreamRunner` (continual learning, ``results.jsonl``);
- ``episodes`` (``--episodes``): :class:`bench.episodes.driver.EpisodeRunner` (few-shot, ``episodes.jsonl``).

``--stream`` wins over ``--episodes`` when both are given.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.continual.driver import StreamRunner
from bench.episodes.driver import EpisodeRunner
from bench.run.plan import RunConfig
from bench.run.runner import Runner

MODES = ("grid", "stream", "episodes")


def mode(cfg: RunConfig) -> str:
    """The run's mode, one of :data:`MODES`."""
    if cfg.stream:
        return "stream"
    return "episodes" if cfg.episodes else "grid"


def driver(cfg: RunConfig, plugins: Any, log: Callable[[str], None] | None = None) -> Runner | StreamRunner:
    """The driver of ``cfg``'s mode (an :class:`EpisodeRunner` is a :class:`Runner`); ``.run()`` runs it."""
    kind = mode(cfg)
    if kind == "stream":
        return StreamRunner(cfg, plugins, log)
    return EpisodeRunner(cfg, plugins, log) if kind == "episodes" else Runner(cfg, plugins, log)


def run(cfg: RunConfig, plugins: Any) -> list[dict[str, Any]]:
    """Run ``cfg`` with its mode's driver; returns the records written now."""
    return driver(cfg, plugins).run()

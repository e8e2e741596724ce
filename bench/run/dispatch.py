"""Which driver runs a ``bench run``: the one place the mode (budget grid, ``--stream``, ``--episodes``,
``--multitask``) is chosen.

Every mode shares the run folder (:mod:`bench.run.folder`) and hands cell groups to the run's
executor (:func:`bench.run.executors.execute`); what differs is the driver that plans the cells:

- ``grid``: :class:`bench.run.runner.Runner` (encoder x strategy x task x budget x seed, ``results.jsonl``);
- ``stream`` (``--stream``): :class:`bench.continual.driver.StreamRunner` (continual learning, ``results.jsonl``);
- ``episodes`` (``--episodes``): :class:`bench.episodes.driver.EpisodeRunner` (few-shot, ``episodes.jsonl``);
- ``multitask`` (``--multitask``): :class:`bench.multitask.driver.MultitaskRunner` (tasks trained jointly,
  with their paired single-task cells, ``results.jsonl``).

``--stream`` wins over ``--episodes`` when both are given; ``--multitask`` with either is refused.
Weightings (multi-task strategies) are refused outside ``--multitask``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.continual.driver import StreamRunner
from bench.episodes.driver import EpisodeRunner
from bench.errors import UserError
from bench.multitask.driver import MultitaskRunner
from bench.multitask.spec import check_multitask_strategies
from bench.run.plan import RunConfig
from bench.run.runner import Runner

MODES = ("grid", "stream", "episodes", "multitask")


def mode(cfg: RunConfig) -> str:
    """The run's mode, one of :data:`MODES`."""
    if cfg.multitask:
        if cfg.stream or cfg.episodes:
            raise UserError(f"--multitask cannot be combined with --{'stream' if cfg.stream else 'episodes'}; "
                            "give one of them")
        return "multitask"
    if cfg.stream:
        return "stream"
    return "episodes" if cfg.episodes else "grid"


def driver(cfg: RunConfig, plugins: Any,
           log: Callable[[str], None] | None = None) -> Runner | StreamRunner | MultitaskRunner:
    """The driver of ``cfg``'s mode (an :class:`EpisodeRunner` is a :class:`Runner`); ``.run()`` runs it."""
    kind = mode(cfg)
    if kind == "multitask":
        return MultitaskRunner(cfg, plugins, log)
    check_multitask_strategies([plugins.strategies.get(n.strip()) for n in cfg.strategies
                                if n.strip() in plugins.strategies])
    if kind == "stream":
        return StreamRunner(cfg, plugins, log)
    return EpisodeRunner(cfg, plugins, log) if kind == "episodes" else Runner(cfg, plugins, log)


def run(cfg: RunConfig, plugins: Any) -> list[dict[str, Any]]:
    """Run ``cfg`` with its mode's driver; returns the records written now."""
    return driver(cfg, plugins).run()

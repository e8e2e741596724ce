"""The plugin contract.

Plugins are modules (or objects) with functions marked ``@bench.hookimpl`` whose names are the
hook names below, registered through the ``bench`` entry-point group::

    [project.entry-points.bench]
    siglip = "bench_siglip.plugin"

Hook implementations take only the arguments they need, and never give them default values
(pluggy does not pass arguments that have defaults). The core calls hooks through pluggy, so
``@bench.hookimpl(tryfirst=True)``, ``trylast`` and hook wrappers apply (see :mod:`bench.plugins`
for what is guaranteed on top of pluggy's call loop).
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("bench")
hookimpl = pluggy.HookimplMarker("bench")


# -- registration: called once when the plugin manager starts -----------------------------------


@hookspec
def bench_register_encoders():
    """Return a list of :class:`bench.specs.EncoderSpec` this plugin provides.

    Called once at start-up. Must be cheap: return specs with lazy loaders, import no model code.
    A name registered by two plugins is an error naming both.
    """


@hookspec
def bench_register_strategies():
    """Return a list of :class:`bench.specs.StrategySpec` this plugin provides.

    Called once at start-up. The loader returns a :class:`bench.strategies.Strategy`.
    """


@hookspec
def bench_register_tasks():
    """Return a list of :class:`bench.specs.TaskSpec` this plugin provides.

    Called once at start-up. The loader takes a :class:`bench.specs.TaskRequest` and returns a
    :class:`bench.tasks.TaskData`.
    """


@hookspec
def bench_register_executors():
    """Return a list of :class:`bench.specs.ExecutorSpec` this plugin provides.

    Called once at start-up. The loader returns a :class:`bench.run.executors.Executor`.
    """


# -- observation: called while a run goes on -----------------------------------------------------


@hookspec
def bench_cell_finished(record):
    """Called after each cell's record has been appended to ``results.jsonl``.

    ``record`` is the record dict (see :mod:`bench.run.records`), for loggers and experiment trackers.
    The return value is ignored. An exception raised here is reported and does not stop the run.
    """

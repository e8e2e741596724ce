"""Deprecated façade: the harness now lives in bench.plan, bench.runner, bench.worker and bench.evaluate.

``from bench.harness import RunConfig, Runner`` keeps working (with a DeprecationWarning); new
code imports from the modules named below.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # type checkers see the names; at run time __getattr__ warns and forwards
    from bench.evaluate import classification_metrics
    from bench.plan import Cell, Plan, RunConfig
    from bench.results import cell_key
    from bench.runner import Runner, run

_MOVED = {
    "RunConfig": "bench.plan", "Cell": "bench.plan", "Plan": "bench.plan", "incompatibility": "bench.plan",
    "strategy_config": "bench.plan", "config_id": "bench.plan", "check_options": "bench.plan",
    "Runner": "bench.runner", "run": "bench.runner", "resolve_device": "bench.runner",
    "classification_metrics": "bench.evaluate", "PeakMemory": "bench.evaluate",
    "cell_key": "bench.results", "versions": "bench.results",
}


def __getattr__(name: str) -> Any:
    if name not in _MOVED:
        raise AttributeError(f"module 'bench.harness' has no attribute {name!r}")
    import importlib

    warnings.warn(f"bench.harness.{name} is deprecated; import it from {_MOVED[name]}",
                  DeprecationWarning, stacklevel=2)
    return getattr(importlib.import_module(_MOVED[name]), name)


__all__ = ["Cell", "Plan", "RunConfig", "Runner", "cell_key", "classification_metrics", "run"]

"""What ``--tune`` may tune, checked at plan time (torch-free): a request for a strategy with nothing
to tune is refused with one line before anything runs. The cross-validation itself is
:mod:`bench.run.tuning`."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import Any

from bench.errors import UserError
from bench.specs import StrategySpec


def wants_tune(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def check_tune_request(strategy_specs: Iterable[StrategySpec], options: Iterable[tuple[str | None, str, Any]],
                       warn: Callable[[str], None] | None = None) -> None:
    """Refuse ``--tune`` where it cannot apply, with one line (a :class:`UserError`).

    ``tune`` aimed at a strategy (``--set knn.tune=true``) that declares no tunable options, or a
    plain ``--tune`` in a run where no strategy declares any, is refused, naming the strategy and
    those in the run that support it. In a run that mixes strategies, a plain ``--tune`` applies
    to those that declare tunables; the others are listed once through ``warn`` (stderr).
    """
    specs = list(strategy_specs)
    tunable = [s.name for s in specs if s.tunable]
    fixed = [s.name for s in specs if not s.tunable]
    supported = f"strategies in this run that support it: {', '.join(tunable)}" if tunable else \
        "no strategy in this run declares tunable options (see `bench list strategies`)"
    untargeted = False
    for target, key, value in options:
        if key != "tune" or not wants_tune(value):
            continue
        if target is None:
            untargeted = True
        elif target in fixed:
            raise UserError(f"--tune: strategy {target!r} declares no tunable options; {supported}")
    if not untargeted or not fixed:
        return
    if not tunable:
        raise UserError(f"--tune: strateg{'y' if len(fixed) == 1 else 'ies'} {', '.join(map(repr, fixed))} "
                        f"declare{'s' if len(fixed) == 1 else ''} no tunable options; {supported}")
    (warn or _stderr)(f"bench: --tune applies to {', '.join(tunable)}; not to {', '.join(fixed)} "
                      "(no tunable options), which run with their defaults")


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)

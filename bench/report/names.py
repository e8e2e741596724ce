"""Row names in words: what a configuration changes from its strategy's registered default (``dann (critic lr 0.001)``).

A row's options (the record's ``config``) are compared with the defaults the strategy registers
now (:func:`registered_defaults`): a row with none changed is the *default* configuration and is
marked so. Where one (task, encoder, strategy) has several configurations, each is named by the
strategy alone when it is the default, otherwise by the strategy and each change, an option the default has and
the row lacks as ``no <option>`` (a record from before the option existed). :data:`SHORT` gives a
few common keys a shorter name; every other key is shown with ``_`` as a space. Strategies the
installed plugins do not register have no known default: their rows are named as the
configurations differ from each other (:func:`bench.report.aggregate.config_labels`).
"""

from __future__ import annotations

import functools
import json
from typing import Any

#: Shorter words for common option keys (generic: no strategy is named here).
SHORT = {"lr": "lr", "head_lr_mult": "head lr x", "weight_decay": "wd", "max_steps": "max steps",
         "min_steps": "min steps", "batch_size": "batch", "warmup_frac": "warm-up", "freeze_bn": "frozen BN"}
#: Options a run sets for itself, not part of a strategy's configuration.
IGNORED = frozenset({"tune"})


@functools.lru_cache(maxsize=1)
def registered_defaults() -> dict[str, dict[str, Any]]:
    """``{strategy: its registered default options}`` of the installed plugins ({} when they do not load)."""
    try:
        from bench.plugins import load_plugins

        plugins = load_plugins()
        return {spec.name: dict(spec.defaults) for spec in plugins.strategies}
    except Exception:  # a broken plugin must not take the report down: names then fall back
        return {}


def _key(k: str) -> str:
    return SHORT.get(k, k.replace("_", " "))


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "on" if v else "off"
    return "+".join(map(str, v)) if isinstance(v, list) else str(v)


def changes(options: dict[str, Any], defaults: dict[str, Any]) -> list[str]:
    """Each difference of ``options`` from ``defaults`` in words, in key order."""
    out = []
    for k in sorted((set(options) | set(defaults)) - IGNORED):
        if k not in options:
            out.append(f"no {_key(k)}")
        elif k not in defaults:
            out.append(f"{_key(k)} {_value(options[k])} (not a current option)")
        elif json.dumps(options[k], default=str) != json.dumps(defaults[k], default=str):
            out.append(f"{_key(k)} {_value(options[k])}")
    return out


"""``bench run``'s executor flags (``--jobs``, ``--address``, ``--slurm-*``, resources per task).

Each named flag is also a key of the ``-c run.toml`` file (``jobs = 4``); ``--executor-option
KEY=VALUE`` (repeatable; ``[executor_option]`` in the file) passes any other setting an executor
takes. Which options an executor takes is its own business: it refuses the others when the run
starts (:func:`bench.run.executors.take_options`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from bench.cli.options import parse_value
from bench.errors import UserError

#: option -> (type, help); the flag is ``--`` + the option with ``-`` for ``_``
FLAGS: dict[str, tuple[Callable[[str], Any], str]] = {
    "jobs": (int, "local: worker processes, one cell group (task x encoder) at a time each (default 1)"),
    "address": (str, "ray: the cluster to join, auto or HOST:PORT (default: a local Ray instance); a HOST:PORT "
                "that does not answer in 30 s fails (--executor-option connect_timeout=S)"),
    "slurm_partition": (str, "submitit: the Slurm partition"),
    "slurm_time": (int, "submitit: minutes per job array element (one task x encoder group; default 60)"),
    "cpus_per_task": (int, "ray, submitit: CPUs per cell group (default 1)"),
    "gpus_per_task": (float, "ray, submitit: GPUs per cell group (default 1 with --device cuda, else 0)"),
}
#: keys of the TOML config file that this module reads
TOML_KEYS = frozenset({*FLAGS, "executor_option"})


def add_executor_options(parser: argparse.ArgumentParser) -> None:
    for name, (_, text) in FLAGS.items():
        parser.add_argument("--" + name.replace("_", "-"), dest=name, metavar=name.split("_")[-1].upper(), help=text)
    parser.add_argument("--executor-option", action="append", default=[], metavar="KEY=VALUE",
                        help="any other executor setting (repeatable), e.g. --executor-option cluster=local")


def executor_options(args: argparse.Namespace, file_cfg: dict[str, Any]) -> dict[str, Any]:
    """The options given by flags (which win) and the config file, checked and typed."""

    table = file_cfg.get("executor_option", {})
    if not isinstance(table, dict):
        raise UserError(f"config file: executor_option = {table!r} should be a table ([executor_option] KEY = VALUE)")
    out: dict[str, Any] = {str(k): v for k, v in table.items()}
    for item in args.executor_option:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--executor-option {item!r}: expected KEY=VALUE, e.g. --executor-option cluster=local")
        out[key.strip().replace("-", "_")] = parse_value(value.strip())
    for name, (kind, _) in FLAGS.items():
        value = getattr(args, name, None)
        if value is None:
            value = file_cfg.get(name)
        if value is not None:
            out[name] = _typed(name, kind, value)
    return out


def _typed(name: str, kind: Callable[[str], Any], value: Any) -> Any:
    """``value`` as ``kind``, at least the option's minimum, or one line naming the flag and the fix."""
    if kind is str:
        return str(value)
    least = 0 if name == "gpus_per_task" else 1
    try:
        typed = kind(str(value))
    except ValueError:
        typed = None
    if typed is None or isinstance(value, bool) or typed < least:
        what = "a positive integer" if least else "a number >= 0"
        raise UserError(f"--{name.replace('_', '-')} {value!r}: use {what}")
    return int(typed) if float(typed).is_integer() else typed

"""Multi-task learning, torch-free: the weighting contract, ``--multitask`` task sets and the paired gains.

A *multi-task set* (``bench run --multitask mnist5k,fashion-mnist,digits``) is two or more
registered tasks learned jointly: one shared encoder, one linear head per task, every step a batch
from each task (:mod:`bench.multitask.joint`). Each task's labelled set is its own shared budget
manifest (:class:`bench.run.budgets.Manifests`), the one its single-task cells use, so the gain
over single-task ``finetune`` of the same encoder, manifest and seed is paired.

A *weighting* says how the T task losses become the step's gradients. It is registered like any
strategy, as a :class:`MultitaskSpec` (``kind = "multitask"``); its loader returns a class that
:class:`Weighting` describes. The built-ins are ``multitask:NAME``; with ``--multitask``,
``--strategies NAME`` means ``multitask:NAME``.

Gains (:func:`paired_gains`): per task, multi-task accuracy minus single-task accuracy (points;
negative = negative transfer), and Maninis et al. (2019)'s
``Delta_m = 1/T sum_i (M_mt,i - M_st,i) / M_st,i`` (every metric here is higher-better).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from bench.errors import UserError
from bench.specs import StrategyKind, StrategySpec

if TYPE_CHECKING:
    import torch

#: The prefix of the built-in weightings' registered names.
PREFIX = "multitask:"
#: The single-task strategy every multi-task cell is paired with.
REFERENCE = "finetune"
#: A multi-task cell's record says ``record_type: "multitask"`` (one record per cell, every task in it).
RECORD_TYPE = "multitask"


@dataclass(frozen=True)
class MultitaskSpec(StrategySpec):
    """A loss weighting for joint training: ``spec.load(num_tasks, config, seed)`` builds a :class:`Weighting`.
    ``kind`` is always ``"multitask"``; ``defaults`` are the recipe plus the weighting's options."""

    kind: StrategyKind = "multitask"
    KINDS: ClassVar[tuple[str, ...]] = ("multitask",)


class Weighting(Protocol):
    """The contract of a weighting (what a :class:`MultitaskSpec`'s loader, called, returns).

    - ``__init__(num_tasks, config, seed)``: ``config`` is the cell's options, ``seed`` its seed.
    - ``parameters()``: the weighting's own learnable tensors (task weights, log-variances; maybe
      none); the loop trains them with their own Adam at ``config["weight_lr"]``.
    - ``combine(losses, shared, last)``: the step's objective from the T task losses: a scalar
      whose value is the weighted loss and whose backward leaves the weighting's gradients on the
      shared parameters ``shared``, the heads and :meth:`parameters`. ``last`` is the shared
      encoder's last weight (GradNorm's layer). Called once per step.
    - ``after_step()``: after the optimisers stepped (GradNorm renormalises its weights here).
    - ``weights()``: the current task weights, T floats (recorded, with a trajectory).
    """

    def __init__(self, num_tasks: int, config: Mapping[str, Any], seed: int) -> None: ...

    def parameters(self) -> list[torch.Tensor]: ...

    def combine(self, losses: Sequence[torch.Tensor], shared: Sequence[torch.Tensor],
                last: torch.Tensor) -> torch.Tensor: ...

    def after_step(self) -> None: ...

    def weights(self) -> list[float]: ...


def is_multitask(spec: Any) -> bool:
    return getattr(spec, "kind", None) == "multitask"


def is_multitask_record(rec: Mapping[str, Any]) -> bool:
    return rec.get("record_type") == RECORD_TYPE


def short_name(name: str) -> str:
    return name[len(PREFIX):] if name.startswith(PREFIX) else name


def resolve_weighting(strategies: Any, name: str) -> MultitaskSpec:
    """The weighting for a ``--strategies`` name in a ``--multitask`` run: ``NAME`` itself when it
    is a weighting, else ``multitask:NAME``; anything else is one line naming the weightings."""
    for candidate in (name, PREFIX + name):
        if candidate in strategies and is_multitask(strategies.get(candidate)):
            return strategies.get(candidate)  # type: ignore[no-any-return,unused-ignore]
    known = ", ".join(short_name(s.name) for s in strategies if is_multitask(s)) or "none registered"
    what = "unknown strategy" if name not in strategies else "strategy"
    raise UserError(f"{what} {name!r} is not a multi-task weighting, so it cannot run with --multitask; "
                    f"weightings: {known}")


def weightings(strategies: Any) -> list[str]:
    """Every registered weighting's name (the default ``--strategies`` of a ``--multitask`` run)."""
    return [s.name for s in strategies if is_multitask(s)]


def check_multitask_strategies(specs: Sequence[Any]) -> None:
    """A run without ``--multitask`` refuses weightings (one line naming the fix)."""
    for spec in specs:
        if is_multitask(spec):
            raise UserError(f"strategy {spec.name!r} is a multi-task weighting: it trains several tasks jointly; "
                            f"add --multitask, e.g. --multitask mnist5k,digits --strategies {short_name(spec.name)}")


def parse_multitask(text: str, tasks: Any) -> tuple[str, ...]:
    """``A,B,...``: two or more distinct registered tasks; mistakes are one line naming the fix."""
    names = [n.strip() for n in str(text).split(",") if n.strip()]
    if len(names) < 2:
        raise UserError(f"--multitask {text!r}: give at least two tasks separated by commas "
                        "(e.g. mnist5k,fashion-mnist,digits)")
    if len(set(names)) != len(names):
        raise UserError(f"--multitask {text!r} lists a task twice")
    for n in names:
        try:
            spec, _ = tasks.resolve(n)
        except UserError as exc:
            raise UserError(f"--multitask {text!r}: {exc}") from None
        if getattr(spec, "shifted", False):
            raise UserError(f"--multitask {text!r}: task {n!r} is a shifted task; multi-task sets take "
                            "single-domain tasks")
    return tuple(names)


def paired_gains(accuracy: Mapping[str, float], single: Mapping[str, float | None]) -> dict[str, Any]:
    """Per task ``gain = accuracy - single`` (None where the single-task cell is missing), their
    mean ``mean_gain`` and Maninis et al.'s relative ``delta_m`` (None unless every task is paired)."""
    refs = {t: s for t in accuracy if (s := single.get(t)) is not None}
    gains: dict[str, float | None] = {t: (round(a - refs[t], 6) if t in refs else None) for t, a in accuracy.items()}
    complete = len(refs) == len(accuracy) and bool(refs)
    mean_gain = round(sum(accuracy[t] - refs[t] for t in refs) / len(refs), 6) if complete else None
    delta_m = (round(sum((accuracy[t] - refs[t]) / refs[t] for t in refs) / len(refs), 6)
               if complete and all(refs.values()) else None)
    return {"gains": gains, "mean_gain": mean_gain, "delta_m": delta_m}

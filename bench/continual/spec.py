"""Continual learning, torch-free: the continual-strategy contract, task streams and the GEM metrics.

A *stream* is an ordered list of tasks a strategy learns one after another (``bench run --stream``):

- ``split-TASK`` cuts a registered task into consecutive 2-class tasks (``split-mnist5k``: the
  classic 0/1, 2/3, ..., 8/9), from its train pool and test split;
- ``A,B,...`` takes registered tasks in order, each whole.

Scenarios: ``task`` (task-incremental: one head per task, the task's identity is given at test
time) and ``class`` (class-incremental: one head over every class seen so far, no task identity;
only streams whose label spaces are disjoint, i.e. ``split-TASK``).

A continual strategy is registered like any strategy, as a :class:`ContinualSpec` (a
:class:`~bench.specs.StrategySpec` whose ``kind`` is ``"continual"``); its loader returns an
object with the three methods of :class:`ContinualStrategy`. The built-ins are registered as
``continual:NAME``; with ``--stream``, ``--strategies NAME`` means ``continual:NAME``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from bench.errors import UserError
from bench.specs import StrategyKind, StrategySpec

if TYPE_CHECKING:
    import numpy as np

    from bench.strategies import FitContext
    from bench.tasks import Split
    from bench.views import TaskView

#: The prefix of the built-in continual strategies' registered names.
PREFIX = "continual:"
SCENARIOS = ("task", "class")


@dataclass(frozen=True)
class ContinualSpec(StrategySpec):
    """A continual strategy: ``loader()`` returns a :class:`ContinualStrategy`. ``kind`` is always
    ``"continual"``; ``requires`` and ``defaults`` mean what they mean for other strategies."""

    kind: StrategyKind = "continual"
    KINDS: ClassVar[tuple[str, ...]] = ("continual",)


@dataclass(frozen=True)
class StreamInfo:
    """What a continual strategy is told before the first task: the stream's name, its scenario,
    and every task as a label-free view (name, classes), in order. In the ``class`` scenario task
    ``t``'s local class ``k`` is global class ``offsets[t] + k``."""

    name: str
    scenario: str
    tasks: tuple[TaskView, ...]

    @property
    def offsets(self) -> tuple[int, ...]:
        out, total = [], 0
        for t in self.tasks:
            out.append(total)
            total += t.num_classes
        return tuple(out)

    @property
    def num_classes(self) -> int:
        return sum(t.num_classes for t in self.tasks)


class ContinualStrategy(Protocol):
    """The contract of a continual strategy (the object its spec's loader returns).

    - ``begin(stream, ctx)``: once, before the first task. ``ctx`` is a :class:`FitContext` with
      no labels at all (an empty ``labelled``); use its ``load_encoder``, ``config``, ``seed`` and
      ``device`` to build the model. The harness then measures the untrained model: every
      ``predict`` must work from here on.
    - ``learn(task_index, ctx)``: learn task ``task_index`` (0, 1, ... in order); ``ctx`` is that
      task's sealed context: its labelled budget, no test labels. Returns info to record.
    - ``predict(task_index, split)``: class indices for a label-free split of that task: local
      indices (``0..num_classes-1`` of the task) in the ``task`` scenario, global indices
      (``StreamInfo.offsets``) in the ``class`` scenario.
    """

    def begin(self, stream: StreamInfo, ctx: FitContext) -> None: ...

    def learn(self, task_index: int, ctx: FitContext) -> dict[str, Any]: ...

    def predict(self, task_index: int, split: Split) -> np.ndarray: ...


def is_continual(spec: Any) -> bool:
    return getattr(spec, "kind", None) == "continual"


def resolve_continual(strategies: Any, name: str) -> ContinualSpec:
    """The continual spec for a ``--strategies`` name in a stream run: ``NAME`` itself when it is
    continual, else ``continual:NAME``; anything else is one line naming the continual ones."""
    for candidate in (name, PREFIX + name):
        if candidate in strategies and is_continual(strategies.get(candidate)):
            return strategies.get(candidate)  # type: ignore[no-any-return,unused-ignore]
    known = ", ".join(short_name(s.name) for s in strategies if is_continual(s))
    what = "unknown strategy" if name not in strategies else "strategy"
    raise UserError(f"{what} {name!r} is not a continual strategy, so it cannot run on a --stream; "
                    f"continual strategies: {known}")


def short_name(name: str) -> str:
    return name[len(PREFIX):] if name.startswith(PREFIX) else name


def check_stream_strategies(cfg: Any, specs: Sequence[Any]) -> None:
    """A run without ``--stream`` refuses continual strategies (the planner's hook)."""
    if getattr(cfg, "stream", None):
        return
    for spec in specs:
        if is_continual(spec):
            raise UserError(f"strategy {spec.name!r} is a continual strategy: it runs on a task stream; "
                            f"add --stream, e.g. --stream split-mnist5k --strategies {short_name(spec.name)}")


@dataclass(frozen=True)
class StreamPlan:
    """A parsed ``--stream``: the registered task(s) it reads and how they are cut."""

    name: str
    base_tasks: tuple[str, ...]
    split: bool  # True: split-TASK, consecutive class pairs of one task


def parse_stream(text: str, scenario: str, tasks: Any) -> StreamPlan:
    """``split-TASK`` or ``A,B,...`` (registered task names); mistakes are one line naming the fix."""
    if scenario not in SCENARIOS:
        raise UserError(f"--stream-scenario {scenario!r}: use task or class")
    text = text.strip()
    if text.startswith("split-") and text not in tasks:
        base = text[len("split-"):]
        _check_task(tasks, base, text)
        return StreamPlan(text, (base,), True)
    names = [n.strip() for n in text.split(",") if n.strip()]
    if len(names) < 2:
        raise UserError(f"--stream {text!r}: give split-TASK (e.g. split-mnist5k) or at least two tasks "
                        "separated by commas (e.g. digits,mnist5k)")
    if len(set(names)) != len(names):
        raise UserError(f"--stream {text!r} lists a task twice")
    for n in names:
        _check_task(tasks, n, text)
    if scenario == "class":
        raise UserError(f"--stream {text!r} --stream-scenario class: the tasks' label spaces are not known to be "
                        "disjoint; use --stream-scenario task, or a split-TASK stream")
    return StreamPlan(",".join(names), tuple(names), False)


def _check_task(tasks: Any, name: str, stream: str) -> None:
    try:
        tasks.resolve(name)
    except UserError as exc:
        raise UserError(f"--stream {stream!r}: {exc}") from None


def class_pairs(num_classes: int, stream: str) -> list[list[int]]:
    """Consecutive pairs of class indices (a last odd class joins the final pair)."""
    if num_classes < 4:
        raise UserError(f"--stream {stream!r}: the task has {num_classes} classes; a split stream needs at least 4")
    pairs = [list(range(i, i + 2)) for i in range(0, num_classes - 1, 2)]
    if num_classes % 2:
        pairs[-1].append(num_classes - 1)
    return pairs


def gem_metrics(R: Sequence[Sequence[float]], baseline: Sequence[float]) -> dict[str, float | None]:
    """Lopez-Paz & Ranzato (2017): ``R[i][j]`` = accuracy on task ``j`` after learning task ``i``;
    ``baseline[j]`` = the untrained model's accuracy on task ``j``.

    ACC = mean_j R[T-1][j]; BWT = mean_{j<T-1} (R[T-1][j] - R[j][j]) (negative: forgetting);
    FWT = mean_{j>0} (R[j-1][j] - baseline[j]). With one task BWT and FWT are None."""
    T = len(R)
    if T == 0 or any(len(row) != T for row in R) or len(baseline) != T:
        raise ValueError("R must be a non-empty T x T matrix and baseline a list of T accuracies")
    acc = sum(R[T - 1]) / T
    bwt = sum(R[T - 1][j] - R[j][j] for j in range(T - 1)) / (T - 1) if T > 1 else None
    fwt = sum(R[j - 1][j] - baseline[j] for j in range(1, T)) / (T - 1) if T > 1 else None
    return {"acc": acc, "bwt": bwt, "fwt": fwt}

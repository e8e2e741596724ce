"""``linear-probe``: multinomial logistic regression on frozen, cached features, centred and globally scaled.

L2 penalty ``C``: by default ``"auto"``, a C per labels-per-class budget from :data:`C_BY_BUDGET`
(chosen on a carve-out of the training pool, never on test, by ``benchmarks/probe_C.py --by-budget``;
docs/defaults.md); a positive number fixes it. Features are centred on the budget's mean and divided
by one global scale, so magnitude is kept. With ``tune = true`` the penalty is chosen
by stratified cross-validation *inside the budget* over a grid of C values (never on test);
budgets with fewer than two items per class cannot be cross-validated and keep the default
(recorded in the cell's info).

``head_init = "zero-shot"`` (encoders with a text tower): the head starts at the zero-shot
classifier (class-prompt embeddings times CLIP's logit scale) and the L2 penalty pulls towards it
instead of towards zero, so few labels refine zero-shot rather than replace it (with
``max_iter = 0`` the predictions are exactly zero-shot's).
"""

from __future__ import annotations

import bench
from bench.errors import UserError
from bench.specs import StrategySpec
from bench_plugins.strategies import lazy_exports

C_GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
#: ``C = "auto"``: (labels per class, C), ascending. A budget of ``m`` labels per class (the labelled
#: items over the task's classes) takes the C of the largest key <= m (the first row below 1). Chosen by
#: ``benchmarks/probe_C.py --by-budget`` (benchmarks/defaults/probe_C_by_budget.json holds its table).
C_BY_BUDGET: tuple[tuple[int, float], ...] = ((1, 1.0), (2, 100.0), (5, 100.0), (10, 100.0), (20, 100.0), (50, 100.0),
                                             (100, 30.0), (200, 30.0))
#: ``C = "auto"`` with a zero-shot head (unit-norm features, penalty towards the prior): the earlier
#: single default, which the per-budget study did not measure.
ZERO_SHOT_C = 100.0


def check_C(value: object) -> float | str:
    """``value`` as the probe's ``C`` option: ``"auto"`` or a positive finite number; anything else
    is a :class:`~bench.errors.UserError` of one line naming the value and the fix."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    number = None if isinstance(value, bool) else value
    try:
        number = float(number)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = None
    if number is None or not 0 < number < float("inf"):
        raise UserError(f"linear-probe C={value!r} is not a positive number or auto; use e.g. --set C=auto "
                        f"(per budget, the default) or --set C=100")
    return number


#: ``engine``: ``direct`` (the default: the same objective without scikit-learn's overhead) or ``sklearn``
ENGINES = ("direct", "sklearn")


def check_engine(value: object) -> str:
    """``value`` as the probe's ``engine`` option (one of :data:`ENGINES`), else a one-line
    :class:`~bench.errors.UserError` naming the value and the accepted ones."""
    if not isinstance(value, str) or value not in ENGINES:
        raise UserError(f"linear-probe engine={value!r} is not {' or '.join(ENGINES)}; use --set engine=direct "
                        f"(the default: the same objective without scikit-learn's overhead) or engine=sklearn")
    return value


def check_config(config: dict[str, object]) -> None:
    """The plan-time check of the options (StrategySpec.check_config): ``C`` and ``engine``."""
    check_C(config["C"])
    check_engine(config["engine"])


def auto_C(labels_per_class: float) -> float:
    """The C of :data:`C_BY_BUDGET` for a budget of ``labels_per_class`` labels per class."""
    chosen = C_BY_BUDGET[0][1]
    for key, C in C_BY_BUDGET:
        if labels_per_class + 1e-9 >= key:
            chosen = C
    return chosen


def resolve_C(value: object, n_labelled: int, n_classes: int, zero_shot: bool = False) -> float:
    """The number a cell fits with: ``value`` checked (:func:`check_C`); ``"auto"`` by the budget's
    labels per class (``n_labelled / n_classes``), or :data:`ZERO_SHOT_C` for a zero-shot head."""
    C = check_C(value)
    if C != "auto":
        return float(C)
    return ZERO_SHOT_C if zero_shot else auto_C(n_labelled / max(n_classes, 1))


@bench.hookimpl
def bench_register_strategies():
    return [
        StrategySpec(
            name="linear-probe",
            description="logistic regression on frozen, centred, globally scaled features (cached, one encoder pass)",
            loader="bench_plugins.strategies._linear_probe:LinearProbe",
            kind="features",
            defaults={"C": "auto", "tune": False, "max_iter": 2000, "head_init": "random", "engine": "direct"},
            tunable={"C": C_GRID},
            check_config="bench_plugins.strategies.linear_probe:check_config",
        )
    ]


__getattr__ = lazy_exports(__name__, "bench_plugins.strategies._linear_probe",
                           ["LinearProbe", "fit_logistic_prior"])

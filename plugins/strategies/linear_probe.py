"""``linear-probe``: multinomial logistic regression on frozen, cached features, centred and globally scaled.

L2 penalty ``C`` (default 100, chosen on a pool carve-out by ``benchmarks/probe_C.py``; features centred on
the budget's mean and divided by one global scale, so magnitude is kept). With ``tune = true`` the penalty is chosen
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
from bench.specs import StrategySpec
from bench_plugins.strategies import lazy_exports

C_GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)


@bench.hookimpl
def bench_register_strategies():
    return [
        StrategySpec(
            name="linear-probe",
            description="logistic regression on frozen, centred, globally scaled features (cached, one encoder pass)",
            loader="bench_plugins.strategies._linear_probe:LinearProbe",
            kind="features",
            defaults={"C": 100.0, "tune": False, "max_iter": 2000, "head_init": "random"},
            tunable={"C": C_GRID},
        )
    ]


__getattr__ = lazy_exports(__name__, "bench_plugins.strategies._linear_probe",
                           ["LinearProbe", "fit_logistic_prior"])

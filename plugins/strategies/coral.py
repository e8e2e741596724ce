"""``coral``: Deep CORAL (Sun & Saenko, 2016).

On :mod:`bench.domain.loop`'s loop: the encoder, bottleneck and head train on the labelled source
budget plus ``coral_weight`` times the CORAL loss between the covariance matrices of the
bottleneck features of a source batch and of an unlabelled target batch, plus the
squared difference of their means: ``||mu_s - mu_t||^2 / d + ||C_s - C_t||_F^2 / (4 d^2)``
(the original's covariance term, plus a mean term that aligns first moments too, as common
re-implementations do). ``coral_weight`` defaults to 0.3, chosen by ``bench tune`` on a carve-out
of the source pool, by source validation accuracy (docs/defaults.md; never target labels), before
the loop moved to the bottleneck; it stays until the label-free selection re-runs.
``Fitted.baseline``: the same loop without the term.
"""

from __future__ import annotations

import bench
from bench.domain.recipe import DOMAIN_DEFAULTS
from bench.specs import StrategySpec
from bench_plugins.strategies import lazy_exports

CORAL_DEFAULTS = {**DOMAIN_DEFAULTS, "coral_weight": 0.3}  # chosen by bench tune: docs/defaults.md
#: ``--tune`` candidates: with labels of the source budget only, cross-validation scores source accuracy
CORAL_WEIGHT_GRID = (0.3, 1.0, 3.0)


@bench.hookimpl
def bench_register_strategies():
    return [
        StrategySpec(
            name="coral",
            description="Deep CORAL fine-tune: align source and target feature covariances",
            loader="bench_plugins.strategies._coral:Coral",
            kind="train",
            requires=("pretrained", "trainable", "unlabelled_target"),
            defaults=CORAL_DEFAULTS,
            tunable={"coral_weight": CORAL_WEIGHT_GRID},
        )
    ]


__getattr__ = lazy_exports(__name__, "bench_plugins.strategies._coral",
                           ["Coral", "CoralTerm", "coral_loss", "covariance"])

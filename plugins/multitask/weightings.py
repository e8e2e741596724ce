"""Multi-task loss weightings (``bench run --multitask``; contract in :mod:`bench.multitask.spec`).

Registered as ``multitask:NAME``; with ``--multitask``, ``--strategies NAME`` means ``multitask:NAME``.
All train with the fine-tuning recipe (:data:`bench.recipes.RECIPE_DEFAULTS`) on the joint loop
(:mod:`bench.multitask.joint`); with T tasks and losses ``L_i``:

- ``equal``: ``sum_i L_i``.
- ``uncertainty``: Kendall, Gal & Cipolla (2018), homoscedastic uncertainty in the classification
  form: learned log-variances ``s_i`` (start 0), objective ``sum_i exp(-s_i) L_i + s_i``; the task
  weight is ``exp(-s_i)``.
- ``gradnorm``: Chen et al. (2018): weights ``w_i`` (start 1) trained on
  ``L_grad = sum_i |G_i - mean(G) * r_i ** alpha|``, ``G_i = ||grad_W w_i L_i||`` on the shared
  encoder's last weight ``W``, ``r_i = (L_i / L_i(0)) / mean_j (L_j / L_j(0))``, the target held
  constant; the network trains on ``sum_i w_i L_i``; after each step the weights are renormalised
  to sum to T. ``gradnorm_alpha = 1.5``, the paper's value for its NYUv2 experiments.
- ``pcgrad``: Yu et al. (2020), gradient surgery: each task's gradient on the shared encoder, in a
  random task order (seeded by the cell's seed), loses its component along every other task's
  gradient it conflicts with (``g_i <- g_i - (g_i . g_j) / ||g_j||^2 g_j`` when ``g_i . g_j < 0``);
  the encoder steps on the sum; heads on their own task's gradient.

``weight_lr``: the learned weights' Adam learning rate, constant. They are T numbers learned in the
recipe's 50-100 steps: at the encoder's 3e-4 Adam moves each by at most 0.03 in that time, so they
get their own rate, 0.025 (up to about 1.25 in 50 steps), set before any measurement.
"""

from __future__ import annotations

import bench
from bench.multitask.spec import MultitaskSpec
from bench.recipes import RECIPE_DEFAULTS

_IMPL = "bench_plugins.multitask._weightings"
WEIGHT_LR = 0.025


def _spec(name: str, loader: str, description: str, **options: object) -> MultitaskSpec:
    return MultitaskSpec(name=f"multitask:{name}", description=description, loader=f"{_IMPL}:{loader}",
                         requires=("pretrained", "trainable"), defaults={**RECIPE_DEFAULTS, **options})


@bench.hookimpl
def bench_register_strategies():
    return [
        _spec("equal", "Equal", "multi-task: equal loss weights"),
        _spec("uncertainty", "Uncertainty", "multi-task: uncertainty weighting, learned log-variances "
              "(Kendall et al. 2018)", weight_lr=WEIGHT_LR),
        _spec("gradnorm", "GradNorm", "multi-task: GradNorm, weights balance gradient norms (Chen et al. 2018)",
              weight_lr=WEIGHT_LR, gradnorm_alpha=1.5),
        _spec("pcgrad", "PCGrad", "multi-task: PCGrad, conflicting gradients projected (Yu et al. 2020)"),
    ]

"""``l2-sp`` and ``ewc``: fine-tuning pulled towards the pre-trained weights.

Both fine-tune everything as ``finetune`` does (new head at ``head_lr_mult`` times the rate,
frozen BatchNorm statistics) and add a penalty on the backbone's distance from its pre-trained
weights ``w0``, through the shared loop's ``extra_loss``:

- ``l2-sp`` (Li et al. 2018): ``l2sp_alpha / 2 * ||w - w0||^2``.
- ``ewc`` (Kirkpatrick et al. 2017): ``ewc_lambda / 2 * sum_i F_i (w_i - w0_i)^2`` with ``F`` a
  diagonal Fisher information. The pre-trained network's own task (ImageNet and its classifier)
  is not available, so the Fisher is estimated on the data at hand, without touching anything
  the protocol forbids: the labelled budget (at most ``ewc_fisher_items`` images), each labelled
  with the prediction of a linear probe fitted on the pre-trained encoder's cached features (the
  same probe LP-FT starts from), i.e. ``F_i = mean_x (d/dw_i log p(probe label | x))^2`` at
  ``w0``, one backward pass per image. ``F`` is divided by its mean, so ``ewc_lambda`` is on the
  same scale as ``l2sp_alpha`` (a uniform Fisher makes EWC equal to L2-SP).

The backbone's decoupled weight decay is switched off (the penalty replaces decay towards zero,
as in L2-SP); the head keeps it.
"""

from __future__ import annotations

import bench
from bench.recipes import RECIPE_DEFAULTS
from bench.specs import StrategySpec
from bench_plugins.strategies import lazy_exports


@bench.hookimpl
def bench_register_strategies():
    return [
        StrategySpec(
            name="l2-sp",
            description="fine-tune with an L2 penalty towards the pre-trained weights (L2-SP)",
            loader="bench_plugins.strategies._regularised:l2_sp",
            kind="train",
            requires=("pretrained", "trainable"),
            defaults={**RECIPE_DEFAULTS, "l2sp_alpha": 0.1},
        ),
        StrategySpec(
            name="ewc",
            description="fine-tune with an EWC penalty (diagonal Fisher on the budget, probe labels)",
            loader="bench_plugins.strategies._regularised:ewc",
            kind="train",
            requires=("pretrained", "trainable"),
            defaults={**RECIPE_DEFAULTS, "ewc_lambda": 0.1, "ewc_fisher_items": 64, "lp_C": 10.0},
        ),
    ]


__getattr__ = lazy_exports(__name__, "bench_plugins.strategies._regularised",
                           ["Regularised", "anchor_penalty", "ewc", "fisher_diagonal", "l2_sp", "normalise_importance"])

"""``tent``: test-time entropy minimisation (Wang et al., 2021) on unlabelled target batches.

1. A source model is trained on the labelled budget only. ``source = "linear-probe"`` (default):
   logistic regression on the frozen, L2-normalised features (unit rows on purpose: the head
   stays fixed while BatchNorm statistics move to the target; see docs/protocol.md), turned
   into a linear head on normalised backbone features.
   ``source = "finetune"``: the ``finetune`` recipe (every parameter trains).
2. Adaptation: every parameter is frozen except the affine weight and bias of the backbone's
   normalisation layers (BatchNorm, GroupNorm, LayerNorm). For ``tent_steps`` steps, a batch of
   unlabelled target images goes through the model with BatchNorm normalising by the batch's
   own statistics, and Adam (``tent_lr``) minimises the mean prediction entropy.
   ``info["entropy_before"]`` / ``["entropy_after"]`` score the same fixed target batches
   (``entropy_probe_batches``, drawn apart from the training stream) in that same mode before and
   after adaptation; ``entropy_first`` / ``entropy_last`` average the first / last five training
   batches' losses, which differ also by which images the batches hold (so only the former
   measure adaptation; see docs/tasks.md).
3. BatchNorm running statistics are then re-estimated on up to ``stat_batches`` target batches,
   and prediction runs in eval mode. Predictions therefore do not depend on which other items
   share a test batch; they use target statistics for every split, so the source-test accuracy
   of a ``tent`` cell is that of the target-adapted model (the transfer gap reads accordingly).
"""

from __future__ import annotations

import bench
from bench.recipes import RECIPE_DEFAULTS
from bench.specs import StrategySpec
from bench_plugins.strategies import lazy_exports

TENT_DEFAULTS = {**RECIPE_DEFAULTS, "source": "linear-probe", "C": 10.0, "tent_steps": 50, "tent_lr": 1e-3,
                 "tent_batch_size": 64, "stat_batches": 20, "entropy_probe_batches": 4}


@bench.hookimpl
def bench_register_strategies():
    return [
        StrategySpec(
            name="tent",
            description="test-time entropy minimisation on target batches; only normalisation affine params adapt",
            loader="bench_plugins.strategies._tent:Tent",
            kind="train",
            requires=("pretrained", "trainable", "unlabelled_target"),
            defaults=TENT_DEFAULTS,
        )
    ]


__getattr__ = lazy_exports(__name__, "bench_plugins.strategies._tent",
                           ["NormalisedLinear", "Tent", "configure_for_tent", "entropy", "mean_entropy", "norm_layers",
                            "probe_head"])

"""``tent``: test-time entropy minimisation (Wang et al., 2021) on unlabelled target batches.

1. The source model is the paired source-only baseline (:func:`bench.domain.loop.source_only`):
   backbone, bottleneck and head trained on the labelled budget the way ``finetune`` trains (backbone
   BatchNorm in eval mode on its pre-trained statistics, AdamW, the shared recipe), a normally trained
   source model as the paper adapts. It is also ``Fitted.baseline`` (shared with mcc, coral, importance).
2. Adaptation: every parameter is frozen except the affine weight and bias of the normalisation
   layers (BatchNorm, GroupNorm, LayerNorm; backbone and bottleneck). For ``tent_steps`` steps, a
   batch of ``tent_batch_size`` unlabelled target images goes through the model with BatchNorm
   normalising by the batch's own statistics, and Adam (``tent_lr``) minimises the mean
   prediction entropy. ``info["entropy_before"]`` / ``["entropy_after"]`` score the same fixed
   target batches (``entropy_probe_batches``, drawn apart from the training stream) before and after.
3. BatchNorm statistics are then re-estimated on up to ``adapt_images`` target images (AdaBN,
   as ``bn-adapt``) and prediction runs in eval mode, so predictions do not depend on which items
   share a test batch; the source-test accuracy of a ``tent`` cell is that of the target-adapted model.
"""

from __future__ import annotations

import bench
from bench.domain.recipe import DOMAIN_DEFAULTS
from bench.specs import StrategySpec
from bench_plugins.strategies import lazy_exports

TENT_DEFAULTS = {**DOMAIN_DEFAULTS, "tent_steps": 50, "tent_lr": 1e-3, "tent_batch_size": 64,
                 "adapt_images": 2048, "entropy_probe_batches": 4}


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
                           ["Tent", "configure_for_tent", "entropy", "mean_entropy", "norm_layers"])

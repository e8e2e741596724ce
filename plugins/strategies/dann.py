"""``dann``: domain-adversarial fine-tuning (Ganin & Lempitsky, 2015).

The encoder and a linear head are fine-tuned on the labelled source budget (the ``finetune``
recipe: head at ``head_lr_mult`` times the backbone's learning rate, frozen BatchNorm statistics)
while a domain classifier learns to tell source batches from equally sized unlabelled target
batches. Its gradient reaches the backbone through a gradient reversal layer scaled by
``domain_weight * lambda_p``, ``lambda_p = 2 / (1 + exp(-gamma * p)) - 1`` (``p`` = progress
0..1, ``gamma`` = 10): the backbone learns features the domain classifier cannot separate.

The domain classifier follows Ganin et al. (2016): two hidden ReLU layers (``domain_hidden``)
with dropout (``domain_dropout`` 0.5), trained at ``domain_lr_mult`` (10) times the backbone's
learning rate whatever the head's multiplier is, so that it keeps up with the features it judges
(measurements in docs/tasks.md).
"""

from __future__ import annotations

import bench
from bench.recipes import RECIPE_DEFAULTS
from bench.specs import StrategySpec
from bench_plugins.strategies import lazy_exports

DANN_DEFAULTS = {**RECIPE_DEFAULTS, "domain_weight": 1.0, "gamma": 10.0, "domain_hidden": 256,
                 "domain_dropout": 0.5, "domain_lr_mult": 10.0}


@bench.hookimpl
def bench_register_strategies():
    return [
        StrategySpec(
            name="dann",
            description="domain-adversarial fine-tune: gradient reversal against a domain classifier "
                        "on backbone features",
            loader="bench_plugins.strategies._dann:Dann",
            kind="train",
            requires=("pretrained", "trainable", "unlabelled_target"),
            defaults=DANN_DEFAULTS,
        )
    ]


__getattr__ = lazy_exports(
    __name__, "bench_plugins.strategies._dann",
    ["Dann", "GradReverse", "dann_lambda", "domain_classifier", "grad_reverse"],
    moved={name: "bench.adaptation" for name in ("TargetBatches", "FeatureClassifier", "feature_classifier",
                                                  "require_target")},
)

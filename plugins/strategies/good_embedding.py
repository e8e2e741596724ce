"""``good-embedding``: cross-entropy fine-tuning on the base classes, then a linear probe or prototypes per episode.

Tian, Wang, Krishnan, Tenenbaum & Isola (2020), "Rethinking Few-Shot Image Classification: a Good
Embedding Is All You Need?": supervised pre-training on the union of the base classes, no episodes;
each novel episode is then solved on the frozen embedding. Meta-training is the shared supervised
recipe (:func:`bench.training.train`: a linear head over the B base classes, the head at 10x the
backbone's lr, at most ``max_steps`` = 100 steps, the same cost as ``protonet``'s); the head is
dropped. ``classifier = "linear-probe"`` (default, the paper's logistic regression): the
``linear-probe`` strategy's classifier (centred, globally scaled features, ``C`` = 100, its default)
on the episode's support set; ``"prototype"``: nearest class mean of unit-norm features. Runs on the
episode protocol only (``bench run --episodes``).
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
            name="good-embedding",
            description="Tian et al. 2020: cross-entropy fine-tuning on base classes, then a linear probe "
                        "(or prototypes) per episode (--episodes only)",
            loader="bench_plugins.strategies._good_embedding:GoodEmbedding",
            kind="train",
            requires=("pretrained", "trainable"),
            defaults={**RECIPE_DEFAULTS, "classifier": "linear-probe", "C": 100.0, "max_iter": 2000},
        )
    ]


__getattr__ = lazy_exports(__name__, "bench_plugins.strategies._good_embedding", ["GoodEmbedding"])

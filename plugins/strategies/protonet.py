"""``protonet``: episodic fine-tuning with the prototypical loss on base classes, then prototypes per episode.

Snell, Swersky & Zemel (2017), "Prototypical Networks for Few-shot Learning": each meta-training
step draws an episode from the base classes of the train split (the evaluation's N-way K-shot,
``meta_query`` queries per class), embeds support and query with the encoder, and minimises the
cross-entropy of the query items under logits ``-||f(x) - c_j||^2`` (``c_j`` the class's mean
support embedding). The whole encoder trains (AdamW at the shared recipe's ``lr`` 3e-4 with its
warm-up and cosine decay, BatchNorm statistics frozen) for ``meta_steps`` = 100 steps, the recipe's
step cap (chosen for CPU cost, never on test data). Each evaluation episode then assigns a query to
the nearest prototype of the trained embedding (squared Euclidean, as in training). Runs on the
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
            name="protonet",
            description="ProtoNet (Snell et al. 2017): episodic fine-tuning with the prototypical loss on base "
                        "classes, then nearest prototype (--episodes only)",
            loader="bench_plugins.strategies._protonet:ProtoNet",
            kind="train",
            requires=("pretrained", "trainable"),
            defaults={"meta_steps": RECIPE_DEFAULTS["max_steps"], "meta_query": 15, "lr": RECIPE_DEFAULTS["lr"],
                      "weight_decay": RECIPE_DEFAULTS["weight_decay"],
                      "warmup_frac": RECIPE_DEFAULTS["warmup_frac"]},
        )
    ]


__getattr__ = lazy_exports(__name__, "bench_plugins.strategies._protonet", ["ProtoNet", "protonet_meta_train"])

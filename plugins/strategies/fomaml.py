"""``fomaml``: first-order MAML of a head on the frozen encoder's features, adapted by SGD per episode.

Finn, Abbeel & Levine (2017), "Model-Agnostic Meta-Learning", first-order variant (their section
5.2): the meta-learned parameters are a head on unit-norm frozen features scaled by
``feature_scale`` = 10 (a residual linear block ``h = x + x A^T`` and an N-way classifier
``h W^T + b``, all zero at the start). Each meta-training step draws an N-way K-shot episode from the
base classes (``meta_query`` = 15 queries per class), takes ``inner_steps`` = 5 SGD steps at
``inner_lr`` = 0.1 on the support cross-entropy (the parameters ``adapt`` names: ``all`` (default)
or ``head``, the classifier only), and updates the meta-parameters with the query loss's gradient
at the adapted weights (Adam, ``meta_lr`` = 1e-3, ``meta_steps`` = 300). Each evaluation episode
takes the same inner steps on its support set. The values are fixed in advance (MAML's 5 inner
steps; the scale makes one step's logit margin of order 1), never chosen on test data. Runs on the
episode protocol only (``bench run --episodes``).
"""

from __future__ import annotations

import bench
from bench.specs import StrategySpec
from bench_plugins.strategies import lazy_exports


@bench.hookimpl
def bench_register_strategies():
    return [
        StrategySpec(
            name="fomaml",
            description="first-order MAML (Finn et al. 2017) of a head on frozen features: inner SGD on the "
                        "support set, outer step from query gradients (--episodes only)",
            loader="bench_plugins.strategies._fomaml:FOMAML",
            kind="features",
            defaults={"meta_steps": 300, "meta_query": 15, "inner_steps": 5, "inner_lr": 0.1, "meta_lr": 1e-3,
                      "feature_scale": 10.0, "adapt": "all"},
        )
    ]


__getattr__ = lazy_exports(__name__, "bench_plugins.strategies._fomaml", ["FOMAML", "fomaml_loss"])

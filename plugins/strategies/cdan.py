"""``cdan``: conditional domain-adversarial training, CDAN+E (Long et al., 2018), on
:mod:`bench.domain.loop`'s loop.

As ``dann``, but the critic judges the multilinear map ``f (x) g`` of the bottleneck features ``f``
and the (detached) softmax predictions ``g``: their outer product, or the randomised map
``(f R_f) * (g R_g) / sqrt(random_dim)`` when ``D * K > max_full_dim``. Entropy conditioning
(``entropy_conditioning``): each example's critic loss is weighted by ``1 + exp(-H(g))`` (mean 1),
so confident predictions count more. ``Fitted.baseline``: the same loop without the critic.
"""

from __future__ import annotations

import bench
from bench.domain.recipe import CRITIC_DEFAULTS, DOMAIN_DEFAULTS
from bench.specs import StrategySpec
from bench_plugins.strategies import lazy_exports

CDAN_DEFAULTS = {**DOMAIN_DEFAULTS, **CRITIC_DEFAULTS, "entropy_conditioning": True, "max_full_dim": 4096,
                 "random_dim": 1024}


@bench.hookimpl
def bench_register_strategies():
    return [
        StrategySpec(
            name="cdan",
            description="conditional domain-adversarial fine-tune (CDAN+E): a critic on features x predictions "
                        "(paired source-only baseline)",
            loader="bench_plugins.strategies._cdan:Cdan",
            kind="train",
            requires=("pretrained", "trainable", "unlabelled_target"),
            defaults=CDAN_DEFAULTS,
        )
    ]


__getattr__ = lazy_exports(__name__, "bench_plugins.strategies._cdan",
                           ["Cdan", "CdanTerm", "entropy_weights", "multilinear_map"])

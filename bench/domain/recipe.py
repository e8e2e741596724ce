"""The domain-adaptation recipe every DA strategy shares: its defaults and :class:`DomainRecipe`, the
typed, frozen view the loop reads (torch-free, so registration modules can import it without torch);
:mod:`bench.domain.loop` says how each key is used.

Defaults follow the papers and Transfer-Learning-Library's conventions (bottleneck 256, critic
hidden 1024, critic at 10x, DANN lambda ramp with gamma 10), sized so the issue-11 grid runs in
about an hour on a 2-core CPU (numbers in docs/domain-adaptation.md). On a GPU raise the steps,
e.g. ``--set dann.min_steps=1000 --set dann.max_steps=5000 --set dann.target_epochs=20``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from bench.errors import UserError
from bench.recipes import RECIPE_DEFAULTS

#: The base recipe of the domain loop. Every key here is part of the paired source-only baseline's
#: identity: DA strategies that agree on them share one baseline (trained once per worker).
DOMAIN_DEFAULTS: dict[str, Any] = {
    **RECIPE_DEFAULTS,
    # steps = clamp(ceil(target_epochs * |target pool| / batch), min_steps, max_steps): 80 on a 2-core CPU
    # (the issue-11 grid in about an hour); raise max_steps on a GPU and the target pool sets them
    "min_steps": 80,
    "max_steps": 80,
    "target_epochs": 2.0,
    "bottleneck_dim": 256,  # Linear -> BatchNorm1d -> ReLU between backbone and head/critic (TLL)
    # "freeze_bn": True, from RECIPE_DEFAULTS: the backbone's BatchNorm keeps its pre-trained statistics
    # (batch statistics of 32 source images pull them to the source domain; docs/domain-adaptation.md).
    # The bottleneck's BatchNorm1d always trains. tent and bn-adapt adapt this normally trained source model.
    "optimizer": "adamw",  # the project's fine-tuning optimiser; or "sgd" (momentum 0.9, Nesterov)
    "schedule": "cosine",  # "cosine" (warm-up then cosine, the project's) or "anneal" (lr (1+10p)^-0.75)
    "stat_batches": 10,  # freeze_bn False: statistics re-estimated after training on batches like the training ones
}

#: The adversarial methods (dann, cdan): TLL's critic (hidden 1024, 10x the backbone's rate) and the
#: papers' optimiser: SGD (momentum 0.9, Nesterov) with ``lr (1 + 10 p)^-0.75``, backbone 1e-3 and
#: new layers 1e-2. AdamW breaks the gradient reversal's scaling once the source loss is ~0 on a
#: small budget (it rescales the reversed gradient to full-size steps; measured in docs/domain-adaptation.md).
#: ``domain_weight`` 0.3 (the papers' 1.0 before): chosen for dann and for cdan, each on its own, by
#: ``bench tune --criterion dev`` over three shifts (benchmarks/choose_defaults.py; docs/defaults.md).
CRITIC_DEFAULTS: dict[str, Any] = {"domain_weight": 0.3, "gamma": 10.0, "domain_hidden": 1024,
                                   "domain_dropout": 0.5, "domain_lr_mult": 10.0, "optimizer": "sgd", "lr": 1e-3,
                                   "schedule": "anneal", "weight_decay": 1e-3}

#: Keys that are the method's own, never part of the baseline's identity.
BASE_KEYS: tuple[str, ...] = tuple(DOMAIN_DEFAULTS)


#: The choices of the recipe's string keys (the first is the default where the key may be absent).
CHOICES: dict[str, tuple[str, ...]] = {"optimizer": ("sgd", "adamw"), "schedule": ("cosine", "anneal"),
                                       "critic_optimizer": ("shared", "adam")}


@dataclass(frozen=True)
class DomainRecipe:
    """The keys :func:`bench.domain.loop.train_domain` reads, typed: built once per run from the merged
    config by :meth:`of` (other keys are the method's own and stay in the config). ``max_steps`` None:
    uncapped. ``critic_optimizer``: ``shared`` (the critic in the main optimiser at ``domain_lr_mult``
    times the backbone's rate) or ``adam`` (its own Adam at ``critic_lr``: Adam is scale-free, so the
    critic learns at its own pace and the weight scales only the reversed gradient)."""

    lr: float
    head_lr_mult: float
    weight_decay: float
    warmup_frac: float
    batch_size: int
    min_steps: int
    max_steps: int | None
    target_epochs: float
    bottleneck_dim: int
    stat_batches: int
    freeze_bn: bool
    augment: str
    optimizer: str
    schedule: str
    critic_optimizer: str = "shared"
    domain_lr_mult: float = 10.0
    critic_lr: float = 1e-3

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> DomainRecipe:
        """The recipe in ``config`` (a key left out takes :data:`DOMAIN_DEFAULTS`' value, or the field's
        default); a value of the wrong type or an unknown choice is a one-line UserError naming the key."""
        values = {f.name: _typed(f.name, config.get(f.name, DOMAIN_DEFAULTS.get(f.name, f.default)), str(f.type))
                  for f in fields(cls)}
        return cls(**values)


def _typed(key: str, raw: Any, kind: str) -> Any:
    try:
        if kind == "bool":
            return bool(raw)
        if kind == "int | None":
            return int(raw) if raw else None
        if kind == "str":
            value = str(raw)
            if key in CHOICES and value not in CHOICES[key]:
                raise UserError(f"{key}={raw!r} is not known; use " + " or ".join(f"--set {key}={c}"
                                                                                 for c in CHOICES[key]))
            return value
        return {"int": int, "float": float}[kind](raw)
    except (TypeError, ValueError):
        raise UserError(f"{key}={raw!r} is not a valid {kind.split()[0]}; set it with --set {key}=VALUE") from None


def domain_steps(n_target: int, config: DomainRecipe | Mapping[str, Any]) -> int:
    """``ceil(target_epochs * n_target / batch_size)`` clamped to ``[min_steps, max_steps]``."""
    return step_rule(n_target, config)[0]


def step_rule(n_target: int, config: DomainRecipe | Mapping[str, Any]) -> tuple[int, int, bool]:
    """The DA loop's step rule: the steps run (:func:`domain_steps`), the steps the rule wants before
    the clamp (at least ``min_steps``) and whether ``max_steps`` cut them (the record's ``capped``)."""
    r = config if isinstance(config, DomainRecipe) else DomainRecipe.of(config)
    wanted = max(r.min_steps, math.ceil(r.target_epochs * n_target / r.batch_size))
    capped = bool(r.max_steps) and wanted > int(r.max_steps or 0)
    return (min(wanted, int(r.max_steps or 0)) if capped else wanted), wanted, capped


#: The frozen-feature DA protocol (:mod:`bench.domain.features`): Transfer-Learning-Library's recipe on
#: cached encoder features: bottleneck 256, SGD lr 0.01 (its new layers' rate), momentum 0.9 with
#: Nesterov, weight decay 1e-3, ``lr (1 + 10 p)^-0.75``, batch 32. Steps fixed, as the papers'
#: iteration counts: 2,000 (a tenth of TLL's 20 x 1,000, sized by cost: ~10 s a cell on an idle 2-core CPU;
#: ``--set min_steps=20000 --set max_steps=20000`` for TLL's). The source-only head shares every key.
FEATURE_DEFAULTS: dict[str, Any] = {"min_steps": 2000, "max_steps": 2000, "target_epochs": 0.0, "batch_size": 32,
                                    "lr": 0.01, "head_lr_mult": 1.0, "weight_decay": 1e-3, "optimizer": "sgd",
                                    "schedule": "anneal", "bottleneck_dim": 256}
#: The adversarial feature methods' critic: the papers' weight 1 and TLL's critic (hidden 1024, dropout
#: 0.5), at the head's rate (TLL trains it at the new layers' rate); the lambda ramp's gamma 10.
FEATURE_CRITIC_DEFAULTS: dict[str, Any] = {"domain_weight": 1.0, "gamma": 10.0, "domain_hidden": 1024,
                                           "domain_dropout": 0.5, "domain_lr_mult": 1.0}


#: The fine-tuning DA loop at the papers' scale, for GPUs (dann, cdan): Transfer-Learning-Library's
#: Office-31 recipe: 20 epochs x 1,000 iterations of batch 32, SGD (momentum 0.9, Nesterov), new layers
#: and critic at 0.01, the backbone at 0.001, weight decay 1e-3, ``lr (1 + 10 p)^-0.75``, the critic in the
#: shared optimiser, the adversarial weight 1. Given as ``--set`` options: :func:`profile_options`.
PAPER_PROFILE: dict[str, Any] = {"min_steps": 20000, "max_steps": 20000, "batch_size": 32, "lr": 1e-3,
                                 "head_lr_mult": 10.0, "optimizer": "sgd", "schedule": "anneal",
                                 "weight_decay": 1e-3, "critic_optimizer": "shared", "domain_lr_mult": 10.0,
                                 "domain_weight": 1.0}


def profile_options(strategy: str, defaults: Mapping[str, Any],
                    profile: Mapping[str, Any] = PAPER_PROFILE) -> list[str]:
    """``profile`` as ``--set STRATEGY.KEY=VALUE`` options of a strategy with these ``defaults`` (keys it
    lacks are left out: :class:`DomainRecipe` gives them its own default, e.g. cdan's shared critic)."""
    return [f"--set {strategy}.{k}={v}" for k, v in profile.items() if k in defaults]

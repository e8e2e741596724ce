"""The domain-adaptation recipe every DA strategy shares (torch-free, so registration modules can
import it without torch); :mod:`bench.domain.loop` says how each key is used.

Defaults follow the papers and Transfer-Learning-Library's conventions (bottleneck 256, critic
hidden 1024, critic at 10x, DANN lambda ramp with gamma 10), sized so the issue-11 grid runs in
about an hour on a 2-core CPU (numbers in docs/domain-adaptation.md). On a GPU raise the steps,
e.g. ``--set dann.min_steps=1000 --set dann.max_steps=5000 --set dann.target_epochs=20``.
"""

from __future__ import annotations

from typing import Any

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
    # The bottleneck's BatchNorm1d always trains. tent and bn-adapt set it False (batch statistics).
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

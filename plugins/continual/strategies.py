"""Continual strategies for task streams (``bench run --stream``; contract in :mod:`bench.continual.spec`).

Registered as ``continual:NAME``; with ``--stream``, ``--strategies NAME`` means ``continual:NAME``
(``finetune`` and ``ewc`` keep their familiar names: on a stream they are the sequential versions).
All share the fine-tuning recipe (:data:`bench.recipes.RECIPE_DEFAULTS`; per task, ten epochs of
its budget as for ``finetune``, with a floor of 20 steps instead of 50: :data:`RECIPE`), one
backbone, and a head per task (``task`` scenario) or one head over every class seen so far
(``class`` scenario):

- ``finetune``: sequential fine-tuning, nothing against forgetting (the lower bound).
- ``ewc``: online EWC (Schwarz et al. 2018): after each task a diagonal Fisher on (at most
  ``ewc_fisher_items``) labelled items of the task, ``F <- ewc_gamma * F + F_t``, and the penalty
  ``ewc_lambda / 2 * sum F (w - w*)^2`` towards the weights after the last task.
- ``si``: Synaptic Intelligence (Zenke et al. 2017), path-integral importance, strength ``si_c``.
- ``mas``: Memory Aware Synapses (Aljundi et al. 2018), importance from the output norm's
  gradient, strength ``mas_lambda``.
- ``lwf``: Learning without Forgetting (Li & Hoiem 2016), distillation of the previous model's
  old-task outputs on the new task's images.
- ``rehearsal``: a replay buffer of ``memory_size`` labelled items, reservoir sampling.
- ``joint``: the upper bound, every budget so far trained together from the pre-trained weights.
- ``lora-per-task``: one LoRA module (peft) and head per task on a frozen backbone (``task`` scenario).

The importances of EWC, SI and MAS are divided by their mean (as the single-task ``ewc`` does), so
one strength scale serves all three; the strengths are set a priori (1.0), not tuned on any test split.
"""

from __future__ import annotations

import bench
from bench.continual.spec import ContinualSpec
from bench.recipes import PEFT_DEFAULTS, RECIPE_DEFAULTS

_IMPL = "bench_plugins.continual._strategies"
#: The fine-tuning recipe, with a floor of 20 steps per task instead of 50: ten epochs of a task's
#: budget (20 steps at 20 labels per class on a 2-class task), so the issue's 3-seed split-mnist5k
#: run of six strategies fits in minutes on a CPU; records carry the steps taken.
RECIPE = {**RECIPE_DEFAULTS, "min_steps": 20}


def _spec(name: str, loader: str, description: str, **kw: object) -> ContinualSpec:
    return ContinualSpec(name=f"continual:{name}", description=description, loader=f"{_IMPL}:{loader}",
                         requires=("pretrained", "trainable"), **kw)  # type: ignore[arg-type]


@bench.hookimpl
def bench_register_strategies():
    return [
        _spec("finetune", "finetune", "continual: sequential fine-tuning, the lower bound",
              defaults=dict(RECIPE)),
        _spec("ewc", "ewc", "continual: online EWC (Schwarz et al. 2018)",
              defaults={**RECIPE, "ewc_lambda": 1.0, "ewc_gamma": 1.0, "ewc_fisher_items": 64}),
        _spec("si", "si", "continual: Synaptic Intelligence (Zenke et al. 2017)",
              defaults={**RECIPE, "si_c": 1.0, "si_xi": 1e-3}),
        _spec("mas", "mas", "continual: Memory Aware Synapses (Aljundi et al. 2018)",
              defaults={**RECIPE, "mas_lambda": 1.0, "mas_items": 64}),
        _spec("lwf", "lwf", "continual: Learning without Forgetting (Li & Hoiem 2016)",
              defaults={**RECIPE, "lwf_alpha": 1.0, "lwf_temperature": 2.0}),
        _spec("rehearsal", "rehearsal", "continual: replay buffer, reservoir sampling",
              defaults={**RECIPE, "memory_size": 100}),
        _spec("joint", "joint", "continual: joint training on every task so far, the upper bound",
              defaults=dict(RECIPE)),
        _spec("lora-per-task", "lora_per_task", "continual: one LoRA module and head per task, frozen backbone",
              defaults={**PEFT_DEFAULTS, "min_steps": RECIPE["min_steps"], "lora_rank": 8, "lora_alpha": 16,
                        "lora_dropout": 0.0},
              metadata={"scenarios": ("task",)}),
    ]

"""Default training recipe shared by every training strategy (torch-free, so plugin modules can
import it at registration time without importing torch: `bench list` stays fast).

See :mod:`bench.training` for how each key is used.
"""

from __future__ import annotations

from typing import Any

#: Recipe keys every training strategy accepts (its spec's ``defaults`` may override values).
#: Sized so the default benchmark's 30 training cells fit in minutes on a 2-core CPU; on a GPU
#: raise them (``--set epochs=30 --set max_steps=1000``): records carry the steps taken.
RECIPE_DEFAULTS: dict[str, Any] = {
    "epochs": 10,
    "min_steps": 50,
    "max_steps": 100,
    "batch_size": 32,
    "lr": 3e-4,  # full fine-tuning; chosen on a validation carve-out of the mnist5k pool (never test)
    "head_lr_mult": 10.0,
    "weight_decay": 0.01,
    "warmup_frac": 0.1,
    "freeze_bn": True,
    "augment": "shift",  # small random translations; no flips (they change digits' meaning)
}

#: ``--tune`` candidates (``StrategySpec.tunable``), chosen inside the budget by cross-validation
#: (:mod:`bench.run.tuning`). Learning rates span a factor of ten around each recipe's default.
FINETUNE_LR_GRID: tuple[float, ...] = (1e-4, 3e-4, 1e-3)
PEFT_LR_GRID: tuple[float, ...] = (1e-3, 3e-3, 1e-2)
SCRATCH_LR_GRID: tuple[float, ...] = (1e-3, 3e-3, 1e-2)

#: The parameter-efficient strategies' recipe (bitfit, lora, adapter, vpt): they train few
#: parameters, so a higher learning rate than full fine-tuning's, and the head at 3x that.
PEFT_DEFAULTS: dict[str, Any] = {**RECIPE_DEFAULTS, "lr": 3e-3, "head_lr_mult": 3.0}

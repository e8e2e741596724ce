"""Multi-task learning: the weighting contract, task sets, joint training and its driver.

- :mod:`~bench.multitask.spec`: the contract (``MultitaskSpec``, ``Weighting``), ``--multitask``
  task sets and the paired gains over single-task fine-tuning, ``Delta_m`` (torch-free).
- :mod:`~bench.multitask.joint`: one shared encoder and a head per task trained jointly on
  :func:`bench.loop.run_steps` with the fine-tuning recipe.
- :mod:`~bench.multitask.driver`: multi-task cells: the paired single-task ``finetune`` cells,
  one ``record_type: "multitask"`` record per cell, on every executor.

The contract's names are importable from this package (the path docs/plugins.md documents).
"""

from bench.multitask.spec import MultitaskSpec, Weighting, paired_gains

__all__ = ["MultitaskSpec", "Weighting", "paired_gains"]

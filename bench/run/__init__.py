"""Running a benchmark: from a configuration to ``results.jsonl``, in any executor.

Torch-free to import (``bench run --dry-run`` and ``bench list`` stay fast); the modules that
train import torch where they first need it.

- :mod:`~bench.run.plan`: the run configuration, the grid of cells, options, compatibility and
  skip reasons, resolution (torch-free).
- :mod:`~bench.run.compatibility`: what one cell needs: compatibility, resolution, weights file.
- :mod:`~bench.run.budgets`: label-budget manifests, shared by every encoder and strategy.
- :mod:`~bench.run.tunables`: what ``--tune`` may tune, checked at plan time (torch-free).
- :mod:`~bench.run.dispatch`: which driver a run gets (budget grid, ``--stream``, ``--episodes``).
- :mod:`~bench.run.folder`: the run folder every mode writes: writable check, lock, torn-tail
  repair, the done set, skip records, append-and-notify.
- :mod:`~bench.run.lock`: one ``bench run`` per run folder.
- :mod:`~bench.run.runner`: the Runner of budget grids: manifests, contamination reports, cell groups.
- :mod:`~bench.run.executors`: the executor protocol (where cell groups of every mode run).
- :mod:`~bench.run.worker`: picklable cell groups and running one group in any process.
- :mod:`~bench.run.identities`: each cell's identity (``cell_id``) from its ingredients.
- :mod:`~bench.run.cell`: one cell: fit, predict, metrics, overlap, forgetting.
- :mod:`~bench.run.tuning`: ``--tune``: cross-validation inside the budget.
- :mod:`~bench.run.features`: the content-addressed feature cache.
- :mod:`~bench.run.forgetting`: what adapting a backbone cost it on a reference task.
- :mod:`~bench.run.deadline`: ``--cell-timeout``.
- :mod:`~bench.run.records`: the record schema, cell identity and the append-only ``results.jsonl``.
"""

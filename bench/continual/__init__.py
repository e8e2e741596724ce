"""Continual learning: task streams, the continual-strategy contract, their driver and penalties.

- :mod:`~bench.continual.spec`: the contract (``ContinualSpec``, ``begin``/``learn``/``predict``),
  task streams (``split-TASK``, ``A,B``) and the GEM metrics (torch-free).
- :mod:`~bench.continual.driver`: stream cells: shared manifests, the accuracy matrix R after
  each task, one ``record_type: "stream"`` record per cell.
- :mod:`~bench.continual.penalties`: parameter-importance penalties (diagonal Fisher, MAS
  sensitivity, the anchored quadratic penalty) for EWC, SI and MAS.

The contract's names are importable from this package (the path docs/plugins.md documents).
"""

from bench.continual.spec import ContinualSpec, ContinualStrategy, StreamInfo, gem_metrics

__all__ = ["ContinualSpec", "ContinualStrategy", "StreamInfo", "gem_metrics"]

"""Domain adaptation: one training loop, plug-in loss terms, a torch-free recipe, label-free selection.

- :mod:`~bench.domain.loop`: the DA loop (on :func:`bench.loop.run_steps`) and its paired source-only
  baseline, memoised per cell group.
- :mod:`~bench.domain.features`: the frozen-feature DA protocol (bottleneck, head and critic on
  cached encoder features) and its memoised source-only baseline.
- :mod:`~bench.domain.terms`: the loss-term contract, gradient reversal, the critic, the
  adversarial term (DANN) and CDAN, MCC, CORAL and entropy terms.
- :mod:`~bench.domain.recipe`: the recipe every DA strategy shares and its typed view (torch-free).
- :mod:`~bench.domain.select`: density ratios and the IWV/DEV risks, for ``bench tune`` and the
  ``importance`` strategy (torch-free).
- :mod:`~bench.domain.validators`: the label-free validators (source, IWV, DEV, DEVN, entropy, IM,
  BNM, ClassAMI, SND), each a pure function of arrays, higher = better (torch-free).
- :mod:`~bench.domain.selection`: ``bench tune``'s criterion, the collapse guard and its veto
  (torch-free).

``bench.domain.fit_domain`` and the other names below stay importable from this package, the
path docs/plugins.md documents; they load on first use, so importing the package costs no torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_PUBLIC = {
    "DomainModel": "loop", "train_domain": "loop", "domain_steps": "loop", "source_model": "loop",
    "source_only": "loop", "adapt_batchnorm": "loop", "fit_domain": "loop", "batchnorm_layers": "loop",
    "DomainBatch": "terms", "DomainTerm": "terms", "WeightedTerm": "terms", "AdversarialTerm": "terms",
    "grad_reverse": "terms", "lambda_ramp": "terms", "domain_critic": "terms",
    "DOMAIN_DEFAULTS": "recipe", "DomainRecipe": "recipe", "BaselineMemo": "loop",
    "fit_features": "features", "FEATURE_DEFAULTS": "recipe",
}


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'bench.domain' has no attribute {name!r}")
    return getattr(importlib.import_module(f"bench.domain.{_PUBLIC[name]}"), name)


__all__ = sorted(_PUBLIC)

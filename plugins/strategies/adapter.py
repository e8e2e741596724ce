"""``adapter``: bottleneck adapters in a frozen backbone; only the adapters and the head train.

- ViTs (each of the encoder's ``adapter_targets`` is a transformer block with ``attn`` and
  ``mlp``): ``adapter_style = "houlsby"`` (Houlsby et al. 2019) puts a residual bottleneck
  ``y + up(act(down(y)))`` on the output of the attention and of the MLP sub-layers, before each
  block's residual sum; ``"adaptformer"`` (Chen et al. 2022) adds a scaled bottleneck parallel
  to the MLP, on the MLP's (normalised) input: ``mlp(h) + s * up(act(down(h)))``.
- CNNs (any other target module, e.g. a stage): a residual 1x1-convolution bottleneck on the
  module's output feature map.

The bottleneck width is ``channels // adapter_reduction`` (at least 1). The up-projection starts
at zero, so before the first step the network computes exactly the pre-trained function. The
backbone is frozen, its BatchNorm statistics too.
"""

from __future__ import annotations

import bench
from bench.recipes import PEFT_DEFAULTS, PEFT_LR_GRID
from bench.specs import StrategySpec
from bench_plugins.strategies import lazy_exports

STYLES = ("houlsby", "adaptformer")


@bench.hookimpl
def bench_register_strategies():
    return [
        StrategySpec(
            name="adapter",
            description="bottleneck adapters (Houlsby/AdaptFormer for ViTs, 1x1-conv for CNNs), zero-init, "
                        "backbone frozen",
            loader="bench_plugins.strategies._adapter:AdapterStrategy",
            kind="train",
            requires=("pretrained", "trainable"),
            defaults={**PEFT_DEFAULTS, "adapter_style": "houlsby", "adapter_reduction": 8, "adapter_scale": 0.1},
            tunable={"lr": PEFT_LR_GRID},
        )
    ]


__getattr__ = lazy_exports(__name__, "bench_plugins.strategies._adapter",
                           ["AdapterStrategy", "After", "Bottleneck", "Parallel", "add_adapters"])

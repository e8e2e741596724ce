"""``zero-shot``: classify by cosine similarity to text embeddings of class-name prompts (CLIP).

No labels are used. Each class is the normalised mean of its L2-normalised prompt embeddings
over a small template ensemble ("a photo of a {}.", "a drawing of a {}.", ...); an image goes to
the class whose embedding has the highest cosine with its (cached) image embedding.

Class names come from the task; a task may give prompt-friendly names in
``TaskData.extra["prompt_names"]`` (e.g. ``"zero"`` .. ``"nine"`` for digits whose classes are
``"0"`` .. ``"9"``) and its own templates in ``TaskData.extra["prompt_templates"]``.

The class embeddings come from :func:`bench.adaptation.zero_shot_head`, which ``--head-init
zero-shot`` of ``linear-probe`` and ``finetune`` share: they become the initial linear head.
"""

from __future__ import annotations

import bench
from bench.specs import StrategySpec
from bench_plugins.strategies import lazy_exports


@bench.hookimpl
def bench_register_strategies():
    return [
        StrategySpec(
            name="zero-shot",
            description="CLIP zero-shot: cosine to class-name prompt embeddings (template ensemble), "
                        "no labels used",
            loader="bench_plugins.strategies._zero_shot:ZeroShot",
            kind="features",
            requires=("text_tower",),
            defaults={"templates": "ensemble"},
        )
    ]


__getattr__ = lazy_exports(
    __name__, "bench_plugins.strategies._zero_shot", ["ZeroShot"]
)

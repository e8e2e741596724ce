"""``zero-shot``: classify by cosine similarity to text embeddings of class-name prompts (CLIP).

No labels are used. Each class is the normalised mean of its L2-normalised prompt embeddings
over a small template ensemble ("a photo of a {}.", "a drawing of a {}.", ...); an image goes to
the class whose embedding has the highest cosine with its (cached) image embedding.

Class names come from the task; a task may give prompt-friendly names in
``TaskData.extra["prompt_names"]`` (e.g. ``"zero"`` .. ``"nine"`` for digits whose classes are
``"0"`` .. ``"9"``) and its own templates in ``TaskData.extra["prompt_templates"]``.

:func:`zero_shot_head` is shared with ``--head-init zero-shot`` of ``linear-probe`` and
``finetune``: the same class embeddings become the initial linear head.
"""

from __future__ import annotations

from typing import Any

import bench
from bench.probe import l2_normalise
from bench.specs import StrategySpec

#: A handful of CLIP-style prompt templates (ensembling them is worth a few points over one).
TEMPLATES = (
    "a photo of a {}.",
    "a blurry photo of a {}.",
    "a photo of the small {}.",
    "a photo of the large {}.",
    "a low resolution photo of a {}.",
    "a drawing of a {}.",
    "a rendition of a {}.",
)
SINGLE_TEMPLATE = ("a photo of a {}.",)


@bench.hookimpl
def bench_register_strategies():
    return [
        StrategySpec(
            name="zero-shot",
            description="CLIP zero-shot: cosine to class-name prompt embeddings (template ensemble), no labels used",
            loader=lambda: ZeroShot(),
            kind="features",
            requires=("text_tower",),
            defaults={"templates": "ensemble"},
        )
    ]


def prompt_names(task: Any) -> list[str]:
    """The names put into prompts: the task's ``prompt_names`` if it gives them, else its classes."""
    names = list((task.extra or {}).get("prompt_names") or task.classes)
    if len(names) != task.num_classes:
        raise ValueError(f"task {task.name!r} gives {len(names)} prompt names for {task.num_classes} classes")
    return [str(n).replace("_", " ") for n in names]


def templates_for(task: Any, choice: str) -> tuple[str, ...]:
    own = (task.extra or {}).get("prompt_templates")
    if own:
        return tuple(own)
    if choice == "ensemble":
        return TEMPLATES
    if choice == "single":
        return SINGLE_TEMPLATE
    from bench.errors import UserError

    raise UserError(f"zero-shot option templates={choice!r} is not known; use ensemble or single")


def class_embeddings(encode_text, names: list[str], templates: tuple[str, ...]):
    """``[K, D]`` float32 numpy: per class, the re-normalised mean of its normalised prompt embeddings."""
    import numpy as np

    prompts = [t.format(name) for name in names for t in templates]
    emb = np.asarray(encode_text(prompts), dtype=np.float32).reshape(len(names), len(templates), -1)
    emb /= np.maximum(np.linalg.norm(emb, axis=-1, keepdims=True), 1e-12)
    cls = emb.mean(axis=1)
    return cls / np.maximum(np.linalg.norm(cls, axis=-1, keepdims=True), 1e-12)


def zero_shot_head(ctx: Any, encoder: Any | None = None) -> tuple[Any, dict[str, Any]]:
    """Class embeddings ``[K, D]`` for ``ctx.task`` from the encoder's text tower, with info to record.

    ``encoder`` defaults to a fresh pre-trained copy from ``ctx.load_encoder``. Raises when the
    encoder has no text tower (the cell is then recorded as failed with that message).
    """
    enc = encoder if encoder is not None else ctx.load_encoder(pretrained=True)
    if enc.encode_text is None:
        raise ValueError(f"zero-shot class embeddings need an encoder with a text tower (CLIP-like); "
                         f"{enc.name} has none")
    names = prompt_names(ctx.task)
    templates = templates_for(ctx.task, str(ctx.config.get("templates", "ensemble")))
    info = {"prompt_names": names, "templates": len(templates),
            "logit_scale": float(enc.extra.get("logit_scale", 100.0))}
    return class_embeddings(enc.encode_text, names, templates), info


class ZeroShot:
    def fit(self, ctx):
        from bench.strategies import Fitted

        encoder = ctx.load_encoder(pretrained=True)
        weights, info = zero_shot_head(ctx, encoder)
        # The harness adds the image tower's parameters for feature strategies; add the text tower's.
        text_params = int(encoder.extra.get("text_params", 0))

        def predict(split):
            return (l2_normalise(ctx.features(split)) @ weights.T).argmax(axis=1)

        return Fitted(predict=predict, trainable_params=0, total_params=text_params, info=info)


# -- --head-init zero-shot (linear-probe, finetune) ------------------------------------------------

HEAD_INITS = ("random", "zero-shot")


def wants_zero_shot_head(config: dict[str, Any]) -> bool:
    """Whether a strategy's ``head_init`` option asks for a text-initialised head (validated)."""
    choice = config.get("head_init") or "random"
    if choice not in HEAD_INITS:
        from bench.errors import UserError

        raise UserError(f"head_init={choice!r} is not known; use --head-init random or --head-init zero-shot")
    return choice == "zero-shot"


def init_head_from_text(ctx: Any, encoder: Any, head: Any) -> dict[str, Any]:
    """Set a ``Linear(D, K)`` head on raw (unnormalised) backbone features to the zero-shot
    classifier: weight = class embeddings scaled so initial logits are ``logit_scale * cosine``
    for a feature of the labelled set's mean norm; bias 0. Its argmax equals zero-shot's.
    """
    import numpy as np
    import torch

    weights, info = zero_shot_head(ctx, encoder)
    norms = np.linalg.norm(ctx.features(ctx.labelled), axis=1)
    scale = info["logit_scale"] / max(float(norms.mean()) if len(norms) else 1.0, 1e-12)
    with torch.no_grad():
        head.weight.copy_(torch.as_tensor(weights * scale, dtype=head.weight.dtype))
        head.bias.zero_()
    return {"head_init": "zero-shot", "zero_shot_templates": info["templates"]}

"""Building blocks shared by strategy plugins: new heads, frozen backbones, unlabelled target batches.

Public API for built-in and third-party strategies alike (the built-ins import only this module,
:mod:`bench.training` and :mod:`bench.probe`, never each other):

- :func:`fit_frozen_backbone` trains a new head on a backbone whose parameters say themselves
  whether they train (bitfit, lora, adapter, vpt);
- :func:`init_head_from_probe` / :func:`probe_head_weights` start a linear head at the linear
  probe of the budget's cached features (lp-ft, ewc); :func:`class_coefficients` turns a fitted
  scikit-learn logistic regression into one row per class;
- :func:`zero_shot_head` / :func:`init_head_from_text` build a head from class-name prompts
  through the encoder's text tower (zero-shot, ``--head-init zero-shot``);
- :func:`require_target`, :class:`TargetBatches` and :class:`FeatureClassifier` serve the domain
  adaptation strategies (the loop itself is :mod:`bench.domain.loop`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from torch import nn

from bench.encoders import Encoder, preprocess
from bench.errors import UserError
from bench.probe import FeatureScale, fit_logistic_info
from bench.strategies import FitContext, Fitted
from bench.tasks import Split
from bench.training import Classifier, augment, fit_classifier, head_and_backbone_groups

__all__ = ["HEAD_INITS", "SINGLE_TEMPLATE", "TEMPLATES", "FeatureClassifier", "TargetBatches", "class_coefficients",
           "class_embeddings", "feature_classifier", "fit_frozen_backbone", "init_head_from_probe",
           "init_head_from_text", "probe_head_weights", "prompt_names", "require_target", "templates_for",
           "wants_zero_shot_head", "zero_shot_head"]


def fit_frozen_backbone(ctx: FitContext, encoder: Encoder, backbone: nn.Module) -> Fitted:
    """Train a new head on ``backbone`` (whose parameters say themselves whether they train) with
    the shared loop; the head at ``head_lr_mult`` times the backbone's learning rate."""
    model = Classifier(backbone, encoder.feature_dim, ctx.num_classes)
    trainable = [p for p in model.backbone.parameters() if p.requires_grad]
    groups = head_and_backbone_groups(model, float(ctx.config["lr"]), float(ctx.config["head_lr_mult"]), trainable)
    return fit_classifier(ctx, encoder, model, groups)


# -- heads from a linear probe -----------------------------------------------------------------------


def class_coefficients(clf: LogisticRegression) -> tuple[np.ndarray, np.ndarray]:
    """``(coef [k, D], intercept [k])``: one row per class of ``clf.classes_``. scikit-learn keeps
    one row for two classes (the second's logit); it becomes the equivalent symmetric pair."""
    coef, intercept = clf.coef_, clf.intercept_
    if len(clf.classes_) == 2:
        coef, intercept = np.vstack([-coef / 2, coef / 2]), np.array([-intercept[0] / 2, intercept[0] / 2])
    return coef, intercept


def probe_head_weights(features: Any, labels: Any, num_classes: int, C: float, max_iter: int,
                       seed: int, info: dict[str, Any] | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """A linear head ``(W [K, D], b [K])`` on raw features from the logistic regression the linear
    probe fits (on features scaled by :class:`~bench.probe.FeatureScale`, the scaling folded into
    ``W`` and ``b``), plus its training accuracy; the fit's iteration count and convergence go into
    ``info`` when given.

    Classes absent from ``labels`` get zero weights and a bias 10 below the lowest fitted logit on
    the budget; with a single class present the head is all zeros except that class's bias (1)."""
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    W = np.zeros((num_classes, x.shape[1]))
    b = np.zeros(num_classes)
    present = np.unique(y)
    if len(present) < 2:
        b[present] = 1.0
        return W.astype(np.float32), b.astype(np.float32), 1.0
    scale = FeatureScale.by_norm(x)
    clf, fit_info = fit_logistic_info(scale(x), y, C, max_iter, seed)
    if info is not None:
        info.update(fit_info)
    W[present], b[present] = scale.fold(*class_coefficients(clf))
    absent = np.setdiff1d(np.arange(num_classes), present)
    b[absent] = (x @ W[present].T + b[present]).min() - 10.0  # below every fitted logit on the budget
    acc = float((clf.predict(scale(x)) == y).mean())
    return W.astype(np.float32), b.astype(np.float32), acc


def init_head_from_probe(ctx: FitContext, head: nn.Linear, C: float, max_iter: int,
                         info: dict[str, Any] | None = None) -> float:
    """Set ``head`` to the linear probe fitted on the budget's cached features; returns the probe's
    training accuracy (its iteration count and convergence go into ``info`` when given)."""
    W, b, acc = probe_head_weights(ctx.features(ctx.labelled), np.asarray(ctx.labelled.labels),
                                   head.out_features, C, max_iter, ctx.seed, info)
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(W))
        head.bias.copy_(torch.from_numpy(b))
    return acc


# -- heads from class-name prompts (encoders with a text tower) ------------------------------------

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
#: The values of the ``head_init`` option of ``linear-probe`` and ``finetune``.
HEAD_INITS = ("random", "zero-shot")


def prompt_names(ctx: Any) -> list[str]:
    """The names put into prompts: the task's ``extra["prompt_names"]`` if it gives them, else its
    classes (``ctx`` is a :class:`FitContext` or anything with ``classes`` and ``extra``)."""
    classes = list(ctx.classes)
    names = list((ctx.extra or {}).get("prompt_names") or classes)
    if len(names) != len(classes):
        task = getattr(ctx, "task_name", None) or getattr(ctx, "name", "?")
        raise ValueError(f"task {task!r} gives {len(names)} prompt names for {len(classes)} classes")
    return [str(n).replace("_", " ") for n in names]


def templates_for(ctx: Any, choice: str) -> tuple[str, ...]:
    """The task's own ``extra["prompt_templates"]`` if it gives them, else ``choice``'s templates."""
    own = (ctx.extra or {}).get("prompt_templates")
    if own:
        return tuple(own)
    if choice == "ensemble":
        return TEMPLATES
    if choice == "single":
        return SINGLE_TEMPLATE
    raise UserError(f"zero-shot option templates={choice!r} is not known; use ensemble or single")


def class_embeddings(encode_text: Callable[[list[str]], Any], names: Sequence[str],
                     templates: Sequence[str]) -> np.ndarray:
    """``[K, D]`` float32: per class, the re-normalised mean of its normalised prompt embeddings."""
    prompts = [t.format(name) for name in names for t in templates]
    emb = np.asarray(encode_text(prompts), dtype=np.float32).reshape(len(names), len(templates), -1)
    emb /= np.maximum(np.linalg.norm(emb, axis=-1, keepdims=True), 1e-12)
    cls = emb.mean(axis=1)
    return cls / np.maximum(np.linalg.norm(cls, axis=-1, keepdims=True), 1e-12)


def zero_shot_head(ctx: FitContext, encoder: Encoder | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Class embeddings ``[K, D]`` for the task from the encoder's text tower, with info to record.

    ``encoder`` defaults to a fresh pre-trained copy from ``ctx.load_encoder``. Raises when the
    encoder has no text tower (the cell is then recorded as failed with that message).
    """
    enc = encoder if encoder is not None else ctx.load_encoder(pretrained=True)
    if enc.encode_text is None:
        raise ValueError(f"zero-shot class embeddings need an encoder with a text tower (CLIP-like); "
                         f"{enc.name} has none")
    names = prompt_names(ctx)
    templates = templates_for(ctx, str(ctx.config.get("templates", "ensemble")))
    info = {"prompt_names": names, "templates": len(templates),
            "logit_scale": float(enc.extra.get("logit_scale", 100.0))}
    return class_embeddings(enc.encode_text, names, templates), info


def wants_zero_shot_head(config: dict[str, Any]) -> bool:
    """Whether a strategy's ``head_init`` option asks for a text-initialised head (validated)."""
    choice = config.get("head_init") or "random"
    if choice not in HEAD_INITS:
        raise UserError(f"head_init={choice!r} is not known; use --head-init random or --head-init zero-shot")
    return choice == "zero-shot"


def init_head_from_text(ctx: FitContext, encoder: Encoder, head: nn.Linear) -> dict[str, Any]:
    """Set a ``Linear(D, K)`` head on raw (unnormalised) backbone features to the zero-shot
    classifier: weight = class embeddings scaled so initial logits are ``logit_scale * cosine``
    for a feature of the labelled set's mean norm; bias 0. Its argmax equals zero-shot's.
    """
    weights, info = zero_shot_head(ctx, encoder)
    norms = np.linalg.norm(ctx.features(ctx.labelled), axis=1)
    scale = info["logit_scale"] / max(float(norms.mean()) if len(norms) else 1.0, 1e-12)
    with torch.no_grad():
        head.weight.copy_(torch.as_tensor(weights * scale, dtype=head.weight.dtype))
        head.bias.zero_()
    return {"head_init": "zero-shot", "zero_shot_templates": info["templates"]}


# -- unlabelled target images (domain adaptation) -------------------------------------------------


def require_target(ctx: FitContext, name: str) -> Split:
    """``ctx.unlabelled_target``, or a UserError naming strategy ``name`` when the task has none."""
    if ctx.unlabelled_target is None or len(ctx.unlabelled_target) < 2:
        raise UserError(f"{name} needs unlabelled target images; task {ctx.task_name!r} has none (use a shifted task)")
    return ctx.unlabelled_target


class TargetBatches:
    """Endless, seeded batches of preprocessed unlabelled target images (no labels are read),
    augmented like the source batches (``augment``, see :func:`bench.training.augment`).

    ``last`` holds the positions of the latest batch (:mod:`bench.domain.loop` draws labelled source
    batches with it, ``stream=0``; the default stream keeps target batches apart from the source's)."""

    def __init__(self, split: Split, encoder: Encoder, batch_size: int, seed: int, device: str = "cpu",
                 augment: str | None = "none", stream: int = 7919) -> None:
        self.split, self.encoder, self.device, self.augment = split, encoder, device, augment
        self.batch = max(2, min(int(batch_size), len(split)))
        self.gen = torch.Generator().manual_seed(seed + stream)
        self.order = torch.randperm(len(split), generator=self.gen)
        self.cursor = 0
        self.last: list[int] = []

    def next(self) -> torch.Tensor:
        if self.cursor + self.batch > len(self.order):
            self.order, self.cursor = torch.randperm(len(self.split), generator=self.gen), 0
        idx = self.order[self.cursor : self.cursor + self.batch].tolist()
        self.cursor += self.batch
        self.last = idx
        x = augment(preprocess(self.split.images(idx), self.encoder), self.augment, self.gen, self.encoder)
        return x.to(self.device)


class FeatureClassifier(Classifier):
    """A :class:`~bench.training.Classifier` that keeps its last batch's backbone output in
    ``features`` (for a loss term on them, e.g. DANN's or CORAL's)."""

    features: torch.Tensor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.features = self.backbone(x)
        return self.head(self.features)


def feature_classifier(encoder: Encoder, num_classes: int) -> FeatureClassifier:
    """A :class:`FeatureClassifier` on ``encoder.module`` with a new ``num_classes``-way head."""
    return FeatureClassifier(encoder.module, encoder.feature_dim, num_classes)

"""Frozen descriptions of what plugins register.

A spec is cheap: a name, a one-line description, metadata, and a *lazy* loader (a
``"module:function"`` string or a callable). ``bench list`` reads specs only, so listing never
imports model code. The loader is called when a run actually needs the thing:

- ``EncoderSpec.loader(request: EncoderRequest) -> bench.encoders.Encoder``
- ``StrategySpec.loader() -> bench.strategies.Strategy``
- ``TaskSpec.loader(request: TaskRequest) -> bench.tasks.TaskData``
- ``ExecutorSpec.loader() -> bench.executors.Executor``
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


def resolve_loader(loader: str | Callable[..., Any]) -> Callable[..., Any]:
    """Turn a ``"package.module:function"`` string into the callable it names."""
    if callable(loader):
        return loader
    module_name, _, attr = loader.partition(":")
    if not attr:
        raise ValueError(f"loader {loader!r} must look like 'package.module:function'")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class _Spec:
    name: str
    description: str
    loader: str | Callable[..., Any]
    metadata: Mapping[str, Any] = field(default_factory=dict)
    #: Filled in by the registry with the name of the plugin that registered the spec.
    plugin: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "metadata", _frozen(self.metadata))

    def load(self, *args: Any, **kwargs: Any) -> Any:
        return resolve_loader(self.loader)(*args, **kwargs)


@dataclass(frozen=True)
class EncoderSpec(_Spec):
    """A pre-trained backbone.

    ``pretraining_data`` drives contamination and zero-shot labels on the leaderboard (declare it
    honestly: ``("imagenet-1k",)``, ``("laion-2b",)``, ``("lvd-142m",)``, ``()`` for none).
    ``variants`` maps a variant name (``clip:ViT-L-14/openai`` -> ``"ViT-L-14/openai"``) to
    metadata that overrides the spec's own for that variant; ``default_variant`` is used when the
    user gives the bare name.

    Metadata keys the core understands (all optional):
    ``params`` (int), ``feature_dim`` (int), ``input_size`` (int), ``is_vit`` (bool),
    ``patch_size`` (int), ``has_text_tower`` (bool), ``trainable`` (bool, False for encoders with
    no learnable parameters such as raw pixels), ``license`` (str), ``weights`` (str: tag of the
    default weights), ``pretraining_index`` (path of a hash index of the pretraining corpus).
    """

    pretraining_data: tuple[str, ...] = ()
    variants: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    default_variant: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "pretraining_data", tuple(self.pretraining_data))
        object.__setattr__(
            self, "variants", MappingProxyType({k: _frozen(v) for k, v in dict(self.variants).items()})
        )

    def variant_metadata(self, variant: str | None) -> dict[str, Any]:
        """Metadata for one variant: the spec's own, overridden by the variant's entries."""
        merged = dict(self.metadata)
        merged.setdefault("pretraining_data", list(self.pretraining_data))
        key = variant if variant is not None else self.default_variant
        if key is not None and key in self.variants:
            merged.update(self.variants[key])
        return merged


@dataclass(frozen=True)
class StrategySpec(_Spec):
    """An adaptation strategy.

    ``kind`` is ``"features"`` for strategies that only read cached frozen features (linear
    probe, kNN, prototypes: cheap, no model is loaded for them) or ``"train"`` for strategies that
    load and adapt the encoder. ``requires`` lists what a cell needs; the harness skips cells that
    lack it and records the reason. Understood values:

    - ``"pretrained"``: the encoder must have learned weights (metadata ``trainable`` not False)
    - ``"trainable"``: the encoder must have parameters to train
    - ``"vit"``: the encoder must be a ViT (metadata ``is_vit``)
    - ``"text_tower"``: the encoder must have a text tower (metadata ``has_text_tower``)
    - ``"unlabelled_target"``: the task must be shifted (have ``target_train``)
    """

    kind: str = "train"
    requires: tuple[str, ...] = ()
    #: Default options (lr, steps, ...). Recorded in every record; ``--set KEY=VALUE`` overrides.
    defaults: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.kind not in ("features", "train"):
            raise ValueError(f"strategy {self.name!r}: kind must be 'features' or 'train', not {self.kind!r}")
        object.__setattr__(self, "requires", tuple(self.requires))
        object.__setattr__(self, "defaults", _frozen(self.defaults))


@dataclass(frozen=True)
class TaskSpec(_Spec):
    """A task: a labelled train pool and a test split, optionally a shifted target domain.

    ``dataset`` names where the images come from (``("mnist",)``, ``("uci-digits",)``,
    ``("imagenet-1k",)``); an encoder whose ``pretraining_data`` intersects it is flagged for
    declared overlap. ``shifted`` says whether the task has ``target_train``/``target_test``.

    ``pattern`` (a regular expression) makes a *parametric* task: a user-given name that matches
    it resolves to this spec, and the loader gets the full name as ``request.name``
    (e.g. ``folder:PATH``, ``mnist5k@blur:3``).
    """

    dataset: tuple[str, ...] = ()
    shifted: bool = False
    pattern: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "dataset", tuple(self.dataset))


@dataclass(frozen=True)
class ExecutorSpec(_Spec):
    """Where cells run: ``local`` (in this process) or a cluster backend."""


@dataclass(frozen=True)
class EncoderRequest:
    """What an encoder loader is asked for."""

    name: str
    variant: str | None = None
    #: ``False`` builds the same architecture with random initialisation (the ``scratch`` baseline).
    pretrained: bool = True
    #: A local checkpoint given with ``--weights NAME=PATH``; takes precedence over caches and hubs.
    weights: str | None = None
    #: Input resolution override (``--resolution``); ``None`` keeps the model's own input size.
    resolution: int | None = None
    #: Side length of the task's images when they all share one (e.g. 28 for MNIST), for encoders
    #: whose natural input is the image itself (raw pixels).
    native_size: int | None = None
    device: str = "cpu"
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskRequest:
    """What a task loader is asked for. ``resolve`` loads another task by name (for tasks that
    wrap a base task, such as corruption shifts)."""

    name: str
    data_dir: str | None = None
    download: bool = False
    resolve: Callable[[str], Any] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

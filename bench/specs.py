"""Frozen descriptions of what plugins register.

A spec is cheap: a name, a one-line description, metadata, and a *lazy* loader (a
``"module:function"`` string or a callable). ``bench list`` reads specs only, so listing never
imports model code. The loader is called when a run actually needs the thing:

- ``EncoderSpec.loader(request: EncoderRequest) -> bench.encoders.Encoder``
- ``StrategySpec.loader() -> bench.strategies.Strategy``
- ``TaskSpec.loader(request: TaskRequest) -> bench.tasks.TaskData``
- ``ExecutorSpec.loader() -> bench.run.executors.Executor``
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Literal, get_args

from bench import _compat


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
class EncoderMeta(Mapping[str, Any]):
    """What an encoder declares before it is loaded (read by ``--dry-run``, compatibility checks
    and ``bench list``, so no model code runs).

    Typed attributes give the core's defaults (``meta.trainable`` is True unless declared
    otherwise). The object is also a read-only mapping of the keys the plugin *declared*
    (``meta.get("is_vit", False)``, ``"params" in meta``, ``dict(meta)``), the API of the free
    metadata dicts it replaces. :meth:`EncoderMeta.of` builds one from such a dict and rejects
    unknown keys, listing the known ones.
    """

    #: Parameters of the image tower (without any classifier).
    params: int | None = None
    #: Parameters of a text tower (CLIP), counted apart from ``params``.
    text_params: int | None = None
    feature_dim: int | None = None
    input_size: int | None = None
    is_vit: bool = False
    patch_size: int | None = None
    has_text_tower: bool = False
    #: False for encoders with no learnable parameters (raw pixels).
    trainable: bool = True
    #: CNNs take any input size: ``--resolution auto`` keeps tiny images small for them.
    flexible_resolution: bool = False
    #: Any ``NAME:VARIANT`` is accepted, not only the listed variants (open_clip tags).
    open_variants: bool = False
    license: str | None = None
    #: Tag of the default weights, recorded when no ``--weights`` file is given.
    weights: str | None = None
    #: Path of a hash index of the pretraining corpus (exact-duplicate contamination check).
    pretraining_index: str | None = None
    pretraining_data: tuple[str, ...] = ()
    #: The keys the plugin declared (the mapping view); built directly, every non-default field.
    declared: frozenset[str] = field(default=frozenset(), repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pretraining_data", tuple(self.pretraining_data))
        if not self.declared:
            defaults = EncoderMeta.__dataclass_fields__
            given = {k for k in _META_KEYS if getattr(self, k) != defaults[k].default and k != "pretraining_data"}
            if self.pretraining_data:
                given.add("pretraining_data")
            object.__setattr__(self, "declared", frozenset(given))

    @classmethod
    def of(cls, metadata: Mapping[str, Any] | None, owner: str = "encoder") -> EncoderMeta:
        """An :class:`EncoderMeta` from a metadata dict; an unknown key is a ``ValueError``
        naming ``owner`` and the key (the plugin loader adds the plugin's name)."""
        if isinstance(metadata, EncoderMeta):
            return metadata
        given = dict(metadata or {})
        unknown = sorted(set(given) - set(_META_KEYS))
        if unknown:
            raise ValueError(f"{owner}: unknown metadata key {unknown[0]!r}; known keys: {', '.join(_META_KEYS)}")
        return cls(**given, declared=frozenset(given))

    def merged(self, overrides: Mapping[str, Any]) -> EncoderMeta:
        """This metadata with ``overrides``' declared keys replacing its own."""
        over = EncoderMeta.of(overrides)
        values = {k: over[k] for k in over}
        return dataclasses.replace(self, **values, declared=self.declared | frozenset(values))

    # The mapping view: declared keys only, in declaration order of the fields.
    def __getitem__(self, key: str) -> Any:
        if key not in self.declared:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return (k for k in _META_KEYS if k in self.declared)

    def __len__(self) -> int:
        return len(self.declared)


_META_KEYS = tuple(f.name for f in dataclasses.fields(EncoderMeta) if f.name != "declared")


@dataclass(frozen=True)
class EncoderSpec(_Spec):
    """A pre-trained backbone.

    ``pretraining_data`` drives contamination and zero-shot labels on the leaderboard (declare it
    honestly: ``("imagenet-1k",)``, ``("laion-2b",)``, ``("lvd-142m",)``, ``()`` for none).
    ``metadata`` is an :class:`EncoderMeta` or a dict of its fields (unknown keys fail at
    registration). ``variants`` maps a variant name (``clip:ViT-L-14/openai`` ->
    ``"ViT-L-14/openai"``) to metadata that overrides the spec's own for that variant;
    ``default_variant`` is used when the user gives the bare name.
    """

    metadata: EncoderMeta = field(default_factory=EncoderMeta)
    pretraining_data: tuple[str, ...] = ()
    variants: Mapping[str, EncoderMeta] = field(default_factory=dict)
    default_variant: str | None = None
    #: Optional lazy ``"module:function"`` (or callable): ``f(request: EncoderRequest)`` returns the
    #: :class:`bench.weights.WeightSource` of the request's pretrained weights, or None when there is
    #: nothing to fetch. ``bench run`` resolves every encoder's before the first cell
    #: (:func:`bench.weights.prefetch`); without one, the loader fetches on its own.
    weights_resolver: str | Callable[..., Any] | None = None

    def __post_init__(self) -> None:
        owner = f"encoder {self.name!r}"
        object.__setattr__(self, "metadata", EncoderMeta.of(self.metadata, owner))
        object.__setattr__(self, "pretraining_data", tuple(self.pretraining_data))
        variants = {k: EncoderMeta.of(v, f"{owner} variant {k!r}") for k, v in dict(self.variants).items()}
        object.__setattr__(self, "variants", MappingProxyType(variants))

    def variant_metadata(self, variant: str | None) -> EncoderMeta:
        """Metadata for one variant: the spec's own, overridden by the variant's entries; the
        spec's ``pretraining_data`` unless the metadata declares its own."""
        merged = self.metadata
        if "pretraining_data" not in merged:
            merged = merged.merged({"pretraining_data": self.pretraining_data})
        key = variant if variant is not None else self.default_variant
        if key is not None and key in self.variants:
            merged = merged.merged(self.variants[key])
        return merged


#: What a strategy's cells do: read cached frozen features, train (load and adapt the encoder),
#: learn a stream of tasks (:class:`bench.continual.ContinualSpec`) or several tasks jointly
#: (:class:`bench.multitask.MultitaskSpec`).
StrategyKind = Literal["features", "train", "continual", "multitask"]
#: What a strategy's cell needs; the planner skips a cell that lacks one and records why.
Requirement = Literal["pretrained", "trainable", "vit", "text_tower", "unlabelled_target"]
REQUIREMENTS: tuple[str, ...] = get_args(Requirement)


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

    kind: StrategyKind = "train"
    requires: tuple[Requirement, ...] = ()
    #: The kinds this spec class accepts (a subclass such as ContinualSpec names its own).
    KINDS: ClassVar[tuple[str, ...]] = ("features", "train")
    #: Default options (lr, steps, ...). Recorded in every record; ``--set KEY=VALUE`` overrides.
    defaults: Mapping[str, Any] = field(default_factory=dict)
    #: Options ``--tune`` chooses, each with its candidate values, e.g. ``{"lr": (1e-4, 3e-4, 1e-3)}``:
    #: selected by cross-validation inside the labelled budget (:mod:`bench.run.tuning`). Each must be a
    #: key of ``defaults``; declaring any adds the option ``tune`` (default False) to ``defaults``.
    tunable: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    #: Checks option values at plan time, before any cell runs: called with the effective options
    #: (``defaults`` with ``--set`` applied) of a run that selects the strategy, it raises a one-line
    #: :class:`~bench.errors.UserError` naming a bad value and the accepted ones. A callable or
    #: ``"package.module:function"`` (keep that module torch-free: ``--dry-run`` calls it); None: no check.
    check_config: str | Callable[[dict[str, Any]], None] | None = None

    def check(self, config: Mapping[str, Any]) -> None:
        """Run :attr:`check_config` on ``config`` (a strategy without one accepts any values)."""
        if self.check_config is not None:
            resolve_loader(self.check_config)(dict(config))

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.kind not in self.KINDS:
            raise ValueError(f"strategy {self.name!r}: kind must be {' or '.join(map(repr, self.KINDS))}, "
                             f"not {self.kind!r}")
        object.__setattr__(self, "requires", tuple(self.requires))
        unknown = [r for r in self.requires if r not in REQUIREMENTS]
        if unknown:
            raise ValueError(f"strategy {self.name!r}: unknown requirement {unknown[0]!r}; "
                             f"known: {', '.join(REQUIREMENTS)}")
        tunable = {str(k): tuple(v) for k, v in dict(self.tunable).items()}
        for key, values in tunable.items():
            if key not in self.defaults or key == "tune":
                raise ValueError(f"strategy {self.name!r}: tunable option {key!r} is not one of its defaults")
            if not values:
                raise ValueError(f"strategy {self.name!r}: tunable option {key!r} has no candidate values")
        defaults = dict(self.defaults)
        if tunable:
            defaults.setdefault("tune", False)
        object.__setattr__(self, "defaults", _frozen(defaults))
        object.__setattr__(self, "tunable", MappingProxyType(tunable))


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
    #: The task forgetting is measured on (``--forgetting auto``), e.g. ``"digits"`` for mnist5k.
    reference_task: str | None = None
    #: The images' side length when they all share one (lets ``--resolution auto`` plan without
    #: loading the task).
    native_size: int | None = None

    def __post_init__(self) -> None:
        meta = dict(self.metadata)
        for key in _TYPED_TASK_KEYS:
            if key in meta and getattr(self, key) is None:  # API version 1 declared them as metadata
                _compat.warn("TaskSpec.metadata", f"task {self.name!r}: metadata[{key!r}]", stacklevel=4)
                object.__setattr__(self, key, meta[key])
            elif getattr(self, key) is not None:
                meta[key] = getattr(self, key)  # readers of the old metadata key still find it
        object.__setattr__(self, "metadata", meta)
        super().__post_init__()
        object.__setattr__(self, "dataset", tuple(self.dataset))


_TYPED_TASK_KEYS = ("reference_task", "native_size")


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

"""The unit of work executors ship: a picklable :class:`CellGroup` and :func:`run_group`, which runs it.

A group is the cells of one (task, encoder) pair plus the run's settings. :func:`run_group`
works in any process: it loads the plugins, the task, the encoder, its frozen features (one pass
per split, through the on-disk feature cache) and the strategies itself, then yields one record
per cell. In the process that planned the run it reuses the driver's plugins and loaded tasks
(a *session*), so in-code plugins and the progress bar keep working with the local executor.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.budgets import Manifests, ids_digest
from bench.evaluate import CellJob, deterministic_settings, evaluate_cell
from bench.plan import Cell, Planner, RunConfig, weights_for
from bench.results import CellIdentity, base_record, digest, identity
from bench.specs import EncoderRequest
from bench.tasks import Split, SubsetSplit, TaskData

#: ``events(kind, text)``: ``"status"`` (what the group is doing) or ``"detail"`` (inside a cell)
Events = Callable[[str, str], None]


def _no_events(kind: str, text: str) -> None:
    pass


@dataclass(frozen=True, eq=False)
class CellGroup:
    """The cells of one (task, encoder) pair and what a worker needs to run them."""

    task: str
    encoder: str
    cells: tuple[Cell, ...]
    config: RunConfig
    #: the device (``cuda[:N]`` or ``cpu``, never ``auto``; from a ray/submitit driver unchecked: see worker_device)
    device: str
    #: ((budget label, seed), test items whose content is in that budget): from the driver's checks
    content_copies: tuple[tuple[tuple[str, int], int], ...] = ()
    #: the driver's session id: a worker in the same process reuses its plugins and tasks
    session: str = ""


@dataclass
class Session:
    """Plugins, planner and loaded tasks of one process, and where progress goes."""

    plugins: Any
    planner: Planner
    load_task: Callable[[str], TaskData]
    events: Events = field(default=_no_events)

    @classmethod
    def fresh(cls, config: RunConfig) -> Session:
        from bench.loading import TaskLoader
        from bench.plugins import load_plugins

        plugins = load_plugins()
        return cls(plugins, Planner(config, plugins), TaskLoader(plugins, config.data_dir, config.download).load)


_SESSIONS: dict[str, Session] = {}


def register_session(key: str, session: Session) -> None:
    _SESSIONS[key] = session


def close_session(key: str) -> None:
    _SESSIONS.pop(key, None)


def run_group(group: CellGroup) -> Iterator[dict[str, Any]]:
    """Run a group's cells one after another, yielding each record as it finishes."""
    session = _SESSIONS.get(group.session) if group.session else None
    state = GroupState(group, session or Session.fresh(group.config))
    for cell in group.cells:
        yield state.run(cell)


def run_group_records(group: CellGroup) -> list[dict[str, Any]]:
    """Every record of a group as a list (for pools whose workers return one value per task)."""
    return list(run_group(group))


class FeatureStore:
    """Frozen features of a task's splits, one encoder pass per split (subsets index their parent)."""

    def __init__(self, encoder: Any, device: str, status: Callable[[int], None]) -> None:
        from bench.features import FeatureCache

        self.encoder = encoder
        self.device = device
        self.status = status
        self.cache = FeatureCache()
        self.computed: dict[int, np.ndarray] = {}

    def __call__(self, split: Split) -> np.ndarray:
        if isinstance(split, SubsetSplit):
            return self(split.parent)[split.positions]
        if id(split) not in self.computed:
            self.status(len(split))
            self.computed[id(split)] = self.cache.get(self.encoder, split, device=self.device)
        return self.computed[id(split)]


class GroupState:
    """A group's loaded task, encoder, features, strategies and contamination report."""

    def __init__(self, group: CellGroup, session: Session) -> None:
        self.group = group
        self.session = session
        planner = session.planner
        events = session.events
        name = f"{group.task} | {group.encoder}"
        self.task = task = session.load_task(group.task)
        self.meta = planner.encoder_meta(group.encoder)
        events("status", f"{name}: loading encoder")
        self.device = worker_device(group)
        deterministic_settings(self.device)  # before CUDA starts: cuBLAS reads its workspace setting once
        self.encoder = self.load_encoder(pretrained=self.meta.trainable)
        self.features = FeatureStore(self.encoder, self.device,
                                     lambda n: events("status", f"{name}: encoding {n} images"))
        splits = task.splits()
        kinds = {c.strategy: planner.strategy(c.strategy).kind for c in group.cells}
        # the embedding detector needs the features too: computed whenever the checks are on, so a
        # cell's contamination block does not depend on which strategies share the run
        if "features" in kinds.values() or group.config.contamination:
            for split in splits.values():  # one pass per split, before any cell (cached on disk)
                self.features(split)
        self.encoder_total = sum(p.numel() for p in self.encoder.module.parameters())
        self.kinds = kinds
        self.strategies = {n: planner.strategy(n).load() for n in {c.strategy for c in group.cells}}
        self.report = None
        if group.config.contamination:
            events("status", f"{name}: contamination checks")
            computed = {n: self.features.computed[id(s)] for n, s in splits.items() if id(s) in self.features.computed}
            self.report = self._contamination(computed)
        ref = planner.reference_task_name(group.task)
        self.reference = session.load_task(ref) if ref else None
        self.manifests = Manifests(group.config.out)
        self.copies = dict(group.content_copies)
        self.identities = cell_identities(planner, task, group.encoder, group.cells, self.manifests,
                                          self.encoder, self.reference)

    def encoder_info(self, cell: Cell) -> dict[str, Any]:
        """The planner's ``encoder_info`` with the input size the loaded encoder really has (an
        encoder at its native size, such as raw pixels, only knows it once it sees the task)."""
        info = self.session.planner.encoder_info(cell.encoder, self.task)
        info["resolution"] = int(self.encoder.input_size)
        if getattr(self.encoder, "weights_source", None):  # what was loaded: repo, file, commit, endpoint
            info["weights_source"] = dict(self.encoder.weights_source)
        return info

    def load_encoder(self, pretrained: bool) -> Any:
        return load_encoder(self.session.planner, self.group.encoder, self.task, self.device, pretrained)

    def _contamination(self, features: dict[str, np.ndarray]) -> Any:
        from bench import contamination
        from bench.loading import cache_root

        return contamination.task_report(self.task, cache_root(), features=features or None,
                                         pretraining_indexes=pretraining_indexes(self.group.config, self.meta),
                                         encoder_pretraining_data=list(self.meta.pretraining_data))

    def _cell_encoder(self, cell: Cell) -> Callable[..., Any]:
        def load_encoder(pretrained: bool = True) -> Any:
            import torch

            if pretrained:
                return copy.deepcopy(self.encoder)
            torch.manual_seed(cell.seed)
            return self.load_encoder(pretrained=False)

        return load_encoder

    def run(self, cell: Cell) -> dict[str, Any]:
        """One cell's record."""
        planner, events = self.session.planner, self.session.events
        events("status", cell.label())
        budget = next(b for b in planner.budgets if b.label == cell.budget)
        job = CellJob(
            cell=cell, task=self.task, positions=self.manifests.positions(self.task, budget, cell.seed),
            strategy=self.strategies[cell.strategy], kind=self.kinds[cell.strategy], encoder=self.encoder,
            encoder_total=self.encoder_total, encoder_meta=self.meta, load_encoder=self._cell_encoder(cell),
            features=self.features, device=self.device,
            record=base_record(cell, self.task, self.device, self.encoder_info(cell),
                               self.identities[cell.key()]),
            report=self.report, reference=self.reference,
            budget_content_copies=self.copies.get((cell.budget, cell.seed)),
            spec=planner.strategy(cell.strategy),
            timeout=self.group.config.cell_timeout,
            progress=lambda msg: events("detail", msg),
        )
        return evaluate_cell(job)


def worker_device(group: CellGroup) -> str:
    """The group's device resolved in this process (ray and submitit drivers pass ``cuda`` on unchecked),
    and its ``--precision``/``--compile`` set for the training loop and encode passes (bench.accel)."""
    from bench.accel import configure
    from bench.runner import resolve_device

    configure(group.config.precision, group.config.compile)
    return resolve_device(group.device)


def load_encoder(planner: Planner, name: str, task: TaskData, device: str, pretrained: bool) -> Any:
    """Encoder ``name`` as the cells of ``task`` use it (weights, resolution), in eval mode on ``device``."""
    spec, variant = planner.encoder_specs[name]
    meta = planner.encoder_meta(name)
    request = EncoderRequest(name=spec.name, variant=variant, pretrained=pretrained,
                             weights=weights_for(planner.cfg.weights, name),
                             resolution=planner.resolution_for(meta, task),
                             native_size=task.native_size, device=device)
    encoder = spec.load(request)
    encoder.module.to(device).eval()
    return encoder


def cell_identities(planner: Planner, task: TaskData, encoder_name: str, cells: Sequence[Cell],
                    manifests: Manifests | None, encoder: Any = None,
                    reference: TaskData | None = None) -> dict[tuple[Any, ...], CellIdentity]:
    """Each cell's identity (:func:`bench.results.identity`), by :meth:`Cell.key`.

    With the loaded ``encoder`` its weight fingerprint and preprocessing are ingredients; without
    it (cells skipped as incompatible, which never load one) the declared weights and planned
    input size are. ``manifests`` None: no manifest digest (skipped cells have none).
    """
    cfg = planner.cfg
    meta = planner.encoder_meta(encoder_name)
    common: dict[str, Any] = {
        "encoder": encoder_name,
        "encoder.weights": encoder.weights if encoder is not None else weights_for(cfg.weights, encoder_name)
        or meta.weights,
        "encoder.fingerprint": encoder.fingerprint() if encoder is not None else None,
        **{f"encoder.{k}": v for k, v in (encoder.preprocessing() if encoder is not None else
                                          {"input_size": planner.resolution_for(meta, task) or meta.input_size}
                                          ).items()},
        "task": task.name,
        "task.fingerprint": task_fingerprint(task),
        "contamination": bool(cfg.contamination),
        "pretraining_indexes.fingerprint": digest([file_digest(p) for p in pretraining_indexes(cfg, meta)])
        if cfg.contamination else None,
        "forgetting": reference.name if reference is not None else None,
        "forgetting.fingerprint": task_fingerprint(reference) if reference is not None else None,
        # bf16 and torch.compile change the numbers: a cell of their own (fp32 eager keeps its old id)
        **({"precision": cfg.precision} if cfg.precision != "fp32" else {}),
        **({"compile": True} if cfg.compile else {}),
    }
    out = {}
    budgets = {b.label: b for b in planner.budgets}
    for cell in cells:
        options = {f"option.{k}": v for k, v in cell.config}
        if options.get("option.tune"):  # --tune: the candidates it chooses among change the numbers
            options["tune.candidates"] = dict(getattr(planner.strategy(cell.strategy), "tunable", {}))
        manifest = None
        if manifests is not None:
            positions = manifests.positions(task, budgets[cell.budget], cell.seed)
            manifest = ids_digest([task.train.ids[int(i)] for i in positions])
        ingredients = {"strategy": cell.strategy, **options, **common}
        out[cell.key()] = identity(ingredients, cell.budget, manifest, cell.seed)
    return out


def task_fingerprint(task: TaskData) -> str:
    """One digest of the content fingerprints of every split of ``task``."""
    return digest({name: split.fingerprint() for name, split in task.splits().items()})


def pretraining_indexes(cfg: RunConfig, meta: Any) -> list[str]:
    """The hash indexes a group's contamination checks read: ``--pretraining-index`` and the encoder's own."""
    return [*cfg.pretraining_indexes, *([str(meta.pretraining_index)] if meta.pretraining_index else [])]


def file_digest(path: str) -> str:
    """sha256 of a file's bytes (a path that cannot be read digests as its name: loading it fails later)."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError:
        h.update(f"unreadable:{path}".encode())
    return h.hexdigest()

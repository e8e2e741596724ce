"""The unit of work executors ship: a picklable :class:`CellGroup` and :func:`run_group`, which runs it.

A group is the cells of one (task, encoder) pair plus the run's settings; its ``kind`` says which
mode's cells they are (``grid``, ``stream``: one stream x encoder, ``episodes``), and
:data:`GROUP_KINDS` names the class that loads what the group's cells share and runs them one by
one (:class:`GroupState` for budget cells). :func:`run_group` works in any process: it loads the
plugins, the task, the encoder, its frozen features (one pass per split, through the on-disk
feature cache) and the strategies itself, then yields one record per cell. In the process that
planned the run it reuses the driver's plugins and loaded tasks (a *session*, :func:`hosted`), so
in-code plugins and the progress bar keep working with the local executor.
"""

from __future__ import annotations

import contextlib
import copy
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.run.budgets import Manifests
from bench.run.cell import CellJob, evaluate_cell
from bench.run.compatibility import weights_for
from bench.run.device import deterministic_settings
from bench.run.identities import cell_identities, pretraining_indexes
from bench.run.plan import Cell, Planner, RunConfig
from bench.run.records import base_record
from bench.specs import EncoderRequest, resolve_loader
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
    #: which mode's cells: a key of :data:`GROUP_KINDS`
    kind: str = "grid"


@dataclass
class Session:
    """Plugins, planner and loaded tasks of one process, and where progress goes."""

    plugins: Any
    planner: Planner
    load_task: Callable[[str], TaskData]
    events: Events = field(default=_no_events)
    #: where a stream's or episode group's progress lines go
    log: Callable[[str], None] = field(default=lambda msg: print(msg, file=sys.stderr))
    #: the driver object of the run (a stream group reuses its loaded tasks); None in another process
    driver: Any = None

    @classmethod
    def fresh(cls, config: RunConfig) -> Session:
        from bench.loading import TaskLoader
        from bench.plugins import load_plugins

        plugins = load_plugins()
        return cls(plugins, Planner(config, plugins), TaskLoader(plugins, config.data_dir, config.download).load)


_SESSIONS: dict[str, Session] = {}
#: group kind -> the class whose ``(group, session)`` instance runs its cells (``.run(cell)`` -> record);
#: strings for the drivers' kinds, which import this module
GROUP_KINDS = {"grid": "bench.run.worker:GroupState", "stream": "bench.continual.driver:StreamGroup",
               "episodes": "bench.episodes.driver:EpisodeGroup", "multitask": "bench.multitask.driver:MultitaskGroup"}


@contextlib.contextmanager
def hosted(session: Session) -> Iterator[str]:
    """The key under which groups run in this process find ``session``, for the block's duration."""
    key = str(uuid.uuid4())
    _SESSIONS[key] = session
    try:
        yield key
    finally:
        _SESSIONS.pop(key, None)


def open_group(group: CellGroup, session: Session | None = None) -> Any:
    """What the group's cells share, loaded (the driver's session in its process, else a fresh one)."""
    session = session or (_SESSIONS.get(group.session) if group.session else None) or Session.fresh(group.config)
    return resolve_loader(GROUP_KINDS[group.kind])(group, session)


def run_group(group: CellGroup) -> Iterator[dict[str, Any]]:
    """Run a group's cells one after another, yielding each record as it finishes."""
    state = open_group(group)
    for cell in group.cells:
        yield state.run(cell)


def run_group_records(group: CellGroup) -> list[dict[str, Any]]:
    """Every record of a group as a list (for pools whose workers return one value per task)."""
    return list(run_group(group))


class FeatureStore:
    """Frozen features of a task's splits, one encoder pass per split (subsets index their parent)."""

    def __init__(self, encoder: Any, device: str, status: Callable[[int], None]) -> None:
        from bench.run.features import FeatureCache

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
        self.shared: dict[str, Any] = {}  # FitContext.shared: what the group's cells share (the DA baseline memo)
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
            progress=lambda msg: events("detail", msg), shared=self.shared,
        )
        return evaluate_cell(job)


def worker_device(group: CellGroup) -> str:
    """The group's device resolved in this process (ray and submitit drivers pass ``cuda`` on unchecked),
    and its ``--precision``/``--compile`` set for the training loop and encode passes (bench.accel)."""
    from bench.accel import configure
    from bench.run.device import resolve_device

    configure(group.config.precision, group.config.compile)
    return resolve_device(group.device)


def group_device(cfg: RunConfig) -> str:
    """The device a driver writes into its groups and skip records: resolved here, except ``cuda`` with
    ray or submitit, whose workers check it (:func:`worker_device`; a login node has no GPU)."""
    from bench.run.device import resolve_device

    remote = cfg.executor != "local" and cfg.device.startswith("cuda")
    return cfg.device if remote else resolve_device(cfg.device)


def load_encoder(planner: Planner, name: str, task: TaskData, device: str, pretrained: bool) -> Any:
    """Encoder ``name`` as the cells of ``task`` use it (weights, resolution), in eval mode on ``device``."""
    spec, variant = planner.encoder_specs[name]
    meta = planner.encoder_meta(name)
    request = EncoderRequest(name=spec.name, variant=variant, pretrained=pretrained,
                             weights=weights_for(planner.cfg.weights, name),
                             resolution=planner.resolution_for(meta, task, name),
                             native_size=task.native_size, device=device)
    encoder = spec.load(request)
    encoder.module.to(device).eval()
    return encoder


__all__ = ["CellGroup", "GroupState", "Session", "hosted", "load_encoder", "open_group", "run_group",
           "run_group_records", "worker_device"]

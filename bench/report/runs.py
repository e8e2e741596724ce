"""Loading run folders for the report: one :class:`Runs` with their records, episodes and estimator results.

A run folder (``bench run --out DIR``) may hold, beside each other:

- ``results.jsonl``: the cell records; per configuration the last record of each cell wins (a
  retried failure), and records of different configurations are all kept (the board keeps them apart);
- ``episodes.jsonl`` (``bench run --episodes``): few-shot episode records, the last per cell;
- ``rank.json`` (``bench rank ... --against DIR``): the transferability estimators' scores and
  their correlations with that run's accuracies;
- ``estimators.jsonl`` (a published site, ``bench publish``): every run's ``rank.json``, one a line.

A folder with only the last two is a run too. :class:`Runs` is a plain value: nothing is kept
between loads, and filtering returns a new one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.errors import UserError
from bench.report.aggregate import config_key
from bench.run.records import ResultsFile, latest

RESULTS_FILE = "results.jsonl"
EPISODES_FILE = "episodes.jsonl"
RANK_FILE = "rank.json"
ESTIMATORS_FILE = "estimators.jsonl"

Record = dict[str, Any]


@dataclass(frozen=True)
class Runs:
    """What the report reads from a set of run folders."""

    #: cell records (``results.jsonl``), each with ``provenance`` (the run folder it came from)
    records: tuple[Record, ...] = ()
    #: few-shot episode records (``episodes.jsonl``)
    episodes: tuple[Record, ...] = ()
    #: estimator results (``rank.json``), each with ``run``: its folder's name
    estimators: tuple[Record, ...] = ()
    #: the folders they were read from
    dirs: tuple[Path, ...] = ()

    @classmethod
    def of(cls, records: Iterable[Record]) -> Runs:
        """Records alone (no folders: no episodes, no estimator results)."""
        return cls(records=tuple(records))

    def where(self, keep: Callable[[Record], bool]) -> Runs:
        """A new Runs with the records ``keep`` accepts (episodes, estimators and folders as they are)."""
        return replace(self, records=tuple(r for r in self.records if keep(r)))


def has_side_files(folder: Path) -> bool:
    """True when ``folder`` holds episodes or estimator results (a run without ``results.jsonl``)."""
    return folder.is_dir() and any((folder / f).exists() for f in (EPISODES_FILE, RANK_FILE, ESTIMATORS_FILE))


def _folder(path: Path) -> Path:
    return path.parent if path.suffix == ".jsonl" else path


def _records(path: Path) -> list[Record]:
    file = path if path.suffix == ".jsonl" else path / RESULTS_FILE
    if not file.exists() and has_side_files(path):
        return []
    if not file.exists():
        raise UserError(f"no results found at {str(file)!r}; pass a folder written by `bench run --out DIR`")
    source = _folder(path).resolve().name
    return [{**r, "provenance": r.get("provenance") or {"source": source}} for r in ResultsFile(file).load()]


def _rank_result(path: Path) -> Record | None:
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("correlations"), list) else None


def _published_estimators(path: Path) -> list[Record]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rank = json.loads(line)
        except ValueError:
            raise UserError(f"{path}: a line that is not JSON ({line[:40]!r}); republish the site") from None
        if isinstance(rank, dict) and isinstance(rank.get("correlations"), list):
            out.append(rank)
    return out


def load(dirs: Iterable[str | Path]) -> Runs:
    """Every run folder's records, episode records and estimator results (see the module doc)."""
    paths = [Path(d) for d in dirs]
    records: list[Record] = []
    episodes: list[Record] = []
    estimators: list[Record] = []
    for p in paths:
        records += _records(p)
    for p in paths:
        folder = _folder(p)
        file = folder / EPISODES_FILE
        episodes += latest(ResultsFile(file).load()) if file.exists() else []
        rank = _rank_result(folder / RANK_FILE)
        if rank is not None:
            estimators.append({**rank, "run": folder.name})
        estimators += _published_estimators(folder / ESTIMATORS_FILE)
    by_config: dict[str, list[Record]] = {}
    for r in records:
        by_config.setdefault(config_key(r), []).append(r)
    return Runs(tuple(r for group in by_config.values() for r in latest(group)), tuple(episodes),
                tuple(estimators), tuple(paths))

"""Every deprecated name of transfer-bench in one place: what replaces it and the release that removes it.

On the model of pytest's ``deprecated.py``: each deprecation is one named entry here, and the code
that still honours an old spelling calls :func:`warn` with that entry, so the message, the
replacement and the removal release are written once. The project's own code and tests use none
of these (the test suite turns transfer-bench's DeprecationWarnings into errors); they exist for
third-party plugins written against an older plugin API (``tests/fixtures/bench-toy`` is one).

- :data:`MODULES`: old module paths (the flat ``bench/*.py`` layout before the subsystem packages),
  served by an import hook that warns and hands out the module at its new home.
- :data:`FACADES`: old modules whose names now live in several modules.
- :data:`NAMES`: old spellings inside the API (keyword arguments, attributes, metadata keys,
  the executor protocol of API 1).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
import warnings
from dataclasses import dataclass
from typing import Any

#: The release that removes everything below (the plugin API generation after the next).
REMOVED_IN = "0.3.0"


@dataclass(frozen=True)
class Deprecation:
    """One deprecated spelling: what to use instead and the release that removes it."""

    old: str
    new: str
    removed_in: str = REMOVED_IN

    def message(self) -> str:
        return f"{self.old} is deprecated and will be removed in transfer-bench {self.removed_in}; use {self.new}"


#: Old module path -> its new home (plugin API 2 -> 3: subsystems became packages).
MODULES: dict[str, str] = {
    "bench.plan": "bench.run.plan", "bench.budgets": "bench.run.budgets", "bench.runner": "bench.run.runner",
    "bench.worker": "bench.run.worker", "bench.evaluate": "bench.run.cell", "bench.results": "bench.run.records",
    "bench.executors": "bench.run.executors", "bench.runlock": "bench.run.lock",
    "bench.deadline": "bench.run.deadline", "bench.features": "bench.run.features",
    "bench.forgetting": "bench.run.forgetting", "bench.tune": "bench.run.tuning",
    "bench.tunables": "bench.run.tunables",
    "bench.domain_terms": "bench.domain.terms", "bench.domain_recipe": "bench.domain.recipe",
    "bench.da_select": "bench.domain.select",
    "bench.stream_run": "bench.continual.driver", "bench.penalties": "bench.continual.penalties",
    "bench.episode_runner": "bench.episodes.driver",
    "bench.board": "bench.report.aggregate", "bench.board_da": "bench.report.domain",
    "bench.board_stream": "bench.report.stream", "bench.board_episodes": "bench.report.episodes",
    "bench.ranking": "bench.report.ranking", "bench.leaderboard": "bench.report.tables",
    "bench.plots": "bench.report.plots", "bench.validate": "bench.report.validate",
    "bench.site": "bench.report.site", "bench.site.pages": "bench.report.site.pages",
}

#: Old modules whose names now live in several modules: name -> new home.
FACADES: dict[str, dict[str, str]] = {
    # plugin API 1's harness (split in API 2)
    "bench.harness": {
        "RunConfig": "bench.run.plan", "Cell": "bench.run.plan", "Plan": "bench.run.plan",
        "incompatibility": "bench.run.plan", "strategy_config": "bench.run.plan", "config_id": "bench.run.plan",
        "check_options": "bench.run.plan", "Runner": "bench.run.runner", "run": "bench.run.dispatch",
        "resolve_device": "bench.run.device", "classification_metrics": "bench.run.cell",
        "PeakMemory": "bench.run.cell", "cell_key": "bench.run.records", "versions": "bench.run.records",
    },
    # plugin API 1's image hashing and hash index (now the contamination package)
    "bench.hashindex": {"*": "bench.contamination.hashing bench.contamination.index bench.contamination.corpus"},
}

#: Old spellings inside the API.
NAMES: dict[str, Deprecation] = {
    "FitContext(task=)": Deprecation("FitContext(task=...)", "FitContext(task_name=, classes=, extra=)"),
    "ctx.task": Deprecation("ctx.task", "ctx.task_name, ctx.classes, ctx.num_classes and ctx.extra"),
    "TaskSpec.metadata": Deprecation("a typed TaskSpec field given as metadata[KEY]", "TaskSpec(KEY=...)"),
    "run(cells, run_cell)": Deprecation(
        "an executor implementing run(cells, run_cell), the protocol of plugin API 1",
        "run(groups), calling bench.run.worker.run_group(group) in the worker"),
}


def warn(key: str, detail: str = "", stacklevel: int = 3) -> None:
    """Warn that the deprecated spelling ``NAMES[key]`` was used (``detail`` names where)."""
    text = NAMES[key].message()
    warnings.warn(f"{detail}: {text}" if detail else text, DeprecationWarning, stacklevel=stacklevel)


def _module_message(old: str, new: str) -> str:
    return Deprecation(f"the module {old}", new).message()


def _warn_importer(message: str) -> None:
    """Warn on behalf of the module whose import statement named the old path (the first frame
    outside the import machinery), so warning filters see who used it."""
    frame = sys._getframe(1)
    while frame.f_back is not None and (frame.f_code.co_filename.startswith("<frozen")
                                         or frame.f_globals.get("__name__", "").startswith(("importlib", __name__))):
        frame = frame.f_back
    module = frame.f_globals.get("__name__", "<unknown>")
    warnings.warn_explicit(message, DeprecationWarning, frame.f_code.co_filename, frame.f_lineno, module=module,
                           registry=frame.f_globals.setdefault("__warningregistry__", {}))


class _Facade(types.ModuleType):
    """A deprecated module that forwards each name to its new home, warning once per access."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # tools that walk sys.modules ask every module for __file__ & co.
            raise AttributeError(name)
        homes = FACADES[self.__name__]
        if name in homes:
            warnings.warn(Deprecation(f"{self.__name__}.{name}", f"{homes[name]}.{name}").message(),
                          DeprecationWarning, stacklevel=2)
            return getattr(importlib.import_module(homes[name]), name)
        for module in homes.get("*", "").split():
            found = importlib.import_module(module)
            if hasattr(found, name):
                warnings.warn(Deprecation(f"{self.__name__}.{name}", f"{module}.{name}").message(),
                              DeprecationWarning, stacklevel=2)
                return getattr(found, name)
        raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")


class _AliasFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the old module paths of :data:`MODULES` and :data:`FACADES` (and nothing else)."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname in MODULES or fullname in FACADES:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        if spec.name in FACADES:
            return _Facade(spec.name, f"Deprecated: see bench._compat.FACADES[{spec.name!r}].")
        new = MODULES[spec.name]
        _warn_importer(_module_message(spec.name, new))
        return importlib.import_module(new)

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing to run: the module is the one at its new home (or a forwarding facade)."""


def install() -> None:
    """Serve the old module paths (idempotent; called by ``bench/__init__``)."""
    if not any(isinstance(f, _AliasFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _AliasFinder())  # before PathFinder, which would load a second copy

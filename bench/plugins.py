"""The plugin manager: loads the ``bench`` entry points one by one and fills the registries.

- A plugin that fails to import (or whose hooks raise) is reported as
  ``plugin NAME failed to load: ...`` and skipped; ``BENCH_STRICT_PLUGINS=1`` makes it fatal.
- ``BENCH_DISABLE_PLUGINS=a,b`` blocks plugins by entry-point name.
- Built-in plugins are found through the same entry-point group as third-party packages.
- Registries are filled in plugin-name order, so results never depend on load order.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

import pluggy

from bench import hookspecs
from bench.errors import PluginError
from bench.registry import Registry
from bench.specs import EncoderSpec, ExecutorSpec, StrategySpec, TaskSpec

ENTRY_POINT_GROUP = "bench"

_REGISTRATION_HOOKS = {
    "bench_register_encoders": ("encoders", EncoderSpec),
    "bench_register_strategies": ("strategies", StrategySpec),
    "bench_register_tasks": ("tasks", TaskSpec),
    "bench_register_executors": ("executors", ExecutorSpec),
}


def _env_list(var: str) -> set[str]:
    return {part.strip() for part in os.environ.get(var, "").split(",") if part.strip()}


def _strict() -> bool:
    return os.environ.get("BENCH_STRICT_PLUGINS", "") not in ("", "0", "false", "no")


@dataclass
class Plugins:
    """The loaded plugins and the registries they filled."""

    pm: pluggy.PluginManager
    encoders: Registry[EncoderSpec] = field(default_factory=lambda: Registry("encoder"))
    strategies: Registry[StrategySpec] = field(default_factory=lambda: Registry("strategy"))
    tasks: Registry[TaskSpec] = field(default_factory=lambda: Registry("task"))
    executors: Registry[ExecutorSpec] = field(default_factory=lambda: Registry("executor"))
    #: plugin name -> distribution that provides it ("" for plugins registered in code)
    sources: dict[str, str] = field(default_factory=dict)
    #: plugin name -> why it failed to load
    failures: dict[str, str] = field(default_factory=dict)
    blocked: list[str] = field(default_factory=list)

    def registry(self, kind: str) -> Registry[Any]:
        return {"encoders": self.encoders, "strategies": self.strategies, "tasks": self.tasks,
                "executors": self.executors}[kind]

    def notify_cell_finished(self, record: dict[str, Any]) -> None:
        for impl in self.pm.hook.bench_cell_finished.get_hookimpls():
            try:
                impl.function(record=record)
            except Exception as exc:  # an observer must never stop the run
                print(f"bench: plugin {impl.plugin_name} failed in bench_cell_finished: {exc}", file=sys.stderr)


def _fail(plugins: Plugins, name: str, message: str) -> None:
    if _strict():
        raise PluginError(f"plugin {name} failed to load: {message}")
    plugins.failures[name] = message
    print(f"bench: plugin {name} failed to load: {message}", file=sys.stderr)


def load_plugins(extra: Iterable[tuple[str, Any]] = (), entry_point_group: str | None = ENTRY_POINT_GROUP) -> Plugins:
    """Load every plugin of the entry-point group (plus ``extra`` ``(name, module)`` pairs).

    ``entry_point_group=None`` loads only ``extra`` (for tests of the core in isolation).
    """
    pm = pluggy.PluginManager("bench")
    pm.add_hookspecs(hookspecs)
    plugins = Plugins(pm=pm)
    disabled = _env_list("BENCH_DISABLE_PLUGINS")

    candidates: list[tuple[str, Any, str]] = []  # (name, loader, distribution)
    if entry_point_group:
        seen: set[str] = set()
        for ep in sorted(entry_points(group=entry_point_group), key=lambda e: e.name):
            if ep.name in seen:  # the same distribution seen twice on sys.path
                continue
            seen.add(ep.name)
            dist = ep.dist.name if getattr(ep, "dist", None) is not None else ""
            candidates.append((ep.name, ep.load, dist))
    for name, module in extra:
        candidates.append((name, (lambda m=module: m), ""))

    for name, loader, dist in candidates:
        if name in disabled:
            plugins.blocked.append(name)
            continue
        try:
            module = loader()
        except Exception as exc:
            _fail(plugins, name, f'Error importing plugin "{name}": {type(exc).__name__}: {exc}')
            continue
        try:
            pm.register(module, name=name)
        except Exception as exc:
            _fail(plugins, name, f"{type(exc).__name__}: {exc}")
            continue
        plugins.sources[name] = dist

    _fill_registries(plugins)
    return plugins


def _fill_registries(plugins: Plugins) -> None:
    for hook_name, (kind, spec_type) in _REGISTRATION_HOOKS.items():
        registry = plugins.registry(kind)
        impls = sorted(getattr(plugins.pm.hook, hook_name).get_hookimpls(), key=lambda i: i.plugin_name)
        for impl in impls:
            if impl.plugin_name in plugins.failures:
                continue
            try:
                specs = impl.function() or []
                for spec in specs:
                    if not isinstance(spec, spec_type):
                        raise PluginError(f"{hook_name} returned {type(spec).__name__}, expected {spec_type.__name__}")
            except Exception as exc:
                _fail(plugins, impl.plugin_name, f"{hook_name}: {type(exc).__name__}: {exc}")
                continue
            for spec in specs:
                registry.add(spec, impl.plugin_name)  # duplicates are always fatal: results would be ambiguous

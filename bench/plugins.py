"""The plugin manager: loads the ``bench`` entry points one by one and fills the registries.

- A plugin that fails to import (or whose hooks raise) is reported as
  ``plugin NAME failed to load: ...`` and skipped; ``BENCH_STRICT_PLUGINS=1`` makes it fatal.
- ``BENCH_DISABLE_PLUGINS=a,b`` blocks plugins by entry-point name.
- Built-in plugins are found through the same entry-point group as third-party packages.
- Registries are filled in plugin-name order, so results never depend on load order.
- Hooks are called through pluggy (``pm.hook.NAME(...)``), so ``tryfirst``/``trylast`` and hook
  wrappers apply. Each non-wrapper implementation is guarded, because pluggy's call loop stops at
  the first exception: a failing implementation is reported naming its plugin and the call goes
  on with the others.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterable
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


#: (plugin name, hook name, returned value, raised exception or None) for each guarded call
Outcome = Callable[[str, str, Any, "Exception | None"], None]


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
        registries: dict[str, Registry[Any]] = {"encoders": self.encoders, "strategies": self.strategies,
                                                "tasks": self.tasks, "executors": self.executors}
        return registries[kind]

    def notify_cell_finished(self, record: dict[str, Any]) -> None:
        """Call every ``bench_cell_finished`` observer (through pluggy); nothing they raise stops the run."""
        try:
            self.pm.hook.bench_cell_finished(record=record)
        except Exception as exc:  # only a hook wrapper can get here: implementations are guarded
            wrappers = [i.plugin_name for i in self.pm.hook.bench_cell_finished.get_hookimpls()
                        if i.wrapper or i.hookwrapper]
            print(f"bench: plugin {', '.join(wrappers)} failed wrapping bench_cell_finished: {exc}", file=sys.stderr)


def _report_observer_failure(plugin: str, hook: str, result: Any, exc: Exception | None) -> None:
    if exc is not None:  # an observer must never stop the run
        print(f"bench: plugin {plugin} failed in {hook}: {exc}", file=sys.stderr)


def _guarded(function: Callable[..., Any], plugin: str, hook: str, outcome: Outcome) -> Callable[..., Any]:
    """``function`` reporting its result or exception to ``outcome`` instead of raising.

    ``functools.wraps`` keeps the signature pluggy and the tests read (``__wrapped__``)."""

    @functools.wraps(function)
    def call(*args: Any) -> Any:
        try:
            result = function(*args)
        except Exception as exc:
            outcome(plugin, hook, None, exc)
            return None
        outcome(plugin, hook, result, None)
        return result

    return call


def _guard_hookimpls(pm: pluggy.PluginManager, outcomes: dict[str, Outcome]) -> None:
    """Guard every non-wrapper implementation of each hook in ``outcomes`` (wrappers run as written)."""
    for hook, outcome in outcomes.items():
        for impl in getattr(pm.hook, hook).get_hookimpls():
            if not (impl.wrapper or impl.hookwrapper):
                # pluggy marks it Final, but offers no per-implementation error handling
                impl.function = _guarded(impl.function, impl.plugin_name, hook, outcome)


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
            dist = ep.dist.name if ep.dist is not None else ""
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

    returned: dict[str, dict[str, tuple[Any, Exception | None]]] = {hook: {} for hook in _REGISTRATION_HOOKS}

    def record(plugin: str, hook: str, result: Any, exc: Exception | None) -> None:
        returned[hook][plugin] = (result, exc)

    outcomes: dict[str, Outcome] = {**dict.fromkeys(_REGISTRATION_HOOKS, record),
                                    "bench_cell_finished": _report_observer_failure}
    _guard_hookimpls(pm, outcomes)
    for hook_name in _REGISTRATION_HOOKS:
        getattr(pm.hook, hook_name)()
    _fill_registries(plugins, returned)
    return plugins


def _fill_registries(plugins: Plugins, returned: dict[str, dict[str, tuple[Any, Exception | None]]]) -> None:
    """Each plugin's own return value, in plugin-name order (whatever order pluggy called them in)."""
    for hook_name, (kind, spec_type) in _REGISTRATION_HOOKS.items():
        registry = plugins.registry(kind)
        for plugin in sorted(returned[hook_name]):
            if plugin in plugins.failures:
                continue
            result, exc = returned[hook_name][plugin]
            specs = list(result or [])
            wrong = [s for s in specs if not isinstance(s, spec_type)]
            if exc is None and wrong:
                exc = PluginError(f"{hook_name} returned {type(wrong[0]).__name__}, expected {spec_type.__name__}")
            if exc is not None:
                _fail(plugins, plugin, f"{hook_name}: {type(exc).__name__}: {exc}")
                continue
            for spec in specs:
                registry.add(spec, plugin)  # duplicates are always fatal: results would be ambiguous

"""Every hook of the plugin contract is documented and exercised by a test (as datasette does)."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from bench import hookspecs
from bench.hookspecs import hookimpl

ROOT = Path(__file__).resolve().parents[1]
HOOKS = sorted(n for n, f in inspect.getmembers(hookspecs, inspect.isfunction) if n.startswith("bench_"))


def test_there_are_hooks():
    assert HOOKS == ["bench_cell_finished", "bench_register_encoders", "bench_register_executors",
                     "bench_register_strategies", "bench_register_tasks"]


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_documented(hook):
    assert (getattr(hookspecs, hook).__doc__ or "").strip(), f"{hook} has no docstring"
    assert f"### `{hook}(" in (ROOT / "docs" / "plugins.md").read_text(), f"{hook} is not in docs/plugins.md"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_a_test(hook):
    tested = " ".join(p.read_text() for p in (ROOT / "tests").rglob("*.py") if p.name != "test_hooks.py")
    assert f"def {hook}(" in tested, f"no test implements {hook}"


def test_hookimpls_in_builtins_have_no_default_arguments():
    from bench.plugins import load_plugins

    plugins = load_plugins()
    for hook in HOOKS:
        for impl in getattr(plugins.pm.hook, hook).get_hookimpls():
            params = inspect.signature(impl.function).parameters.values()
            assert all(p.default is inspect.Parameter.empty for p in params), impl.plugin_name


# -- hooks are called through pluggy: ordering and wrappers apply, failures stay isolated ---------


def _observer(calls, tag, fail=False, **opts):
    class Observer:
        @staticmethod
        @hookimpl(**opts)
        def bench_cell_finished(record):
            calls.append((tag, record["seed"]))
            if fail:
                raise RuntimeError(f"{tag} is broken")

    return Observer


def test_tryfirst_observer_runs_before_a_plain_one():
    from bench.plugins import load_plugins

    calls: list = []
    # registered (and named) so that pluggy's default order would call "b-plain" first
    plugins = load_plugins(extra=[("a-first", _observer(calls, "first", tryfirst=True)),
                                  ("b-plain", _observer(calls, "plain")),
                                  ("c-last", _observer(calls, "last", trylast=True))], entry_point_group=None)
    plugins.notify_cell_finished({"seed": 0})
    assert [tag for tag, _ in calls] == ["first", "plain", "last"]


def test_hook_wrapper_around_bench_cell_finished_sees_the_call():
    from bench.plugins import load_plugins

    calls: list = []

    class Wrapper:
        @staticmethod
        @hookimpl(wrapper=True)
        def bench_cell_finished(record):
            calls.append(("before", record["seed"]))
            result = yield
            calls.append(("after", record["seed"]))
            return result

    plugins = load_plugins(extra=[("obs", _observer(calls, "obs")), ("wrap", Wrapper)], entry_point_group=None)
    plugins.notify_cell_finished({"seed": 7})
    assert calls == [("before", 7), ("obs", 7), ("after", 7)]


def test_failing_observer_is_reported_by_name_and_does_not_stop_the_others(capsys):
    from bench.plugins import load_plugins

    calls: list = []
    plugins = load_plugins(extra=[("a-ok", _observer(calls, "a")), ("b-bad", _observer(calls, "b", fail=True)),
                                  ("c-ok", _observer(calls, "c"))], entry_point_group=None)
    plugins.notify_cell_finished({"seed": 1})
    plugins.notify_cell_finished({"seed": 2})
    assert sorted(calls) == [("a", 1), ("a", 2), ("b", 1), ("b", 2), ("c", 1), ("c", 2)]
    err = capsys.readouterr().err
    assert err.count("bench: plugin b-bad failed in bench_cell_finished: b is broken") == 2
    assert "a-ok" not in err and "c-ok" not in err


def test_registration_goes_through_pluggy_but_registries_follow_plugin_names():
    from bench.plugins import load_plugins
    from bench.specs import StrategySpec

    seen: list = []

    def provider(name, **opts):
        class Provider:
            @staticmethod
            @hookimpl(**opts)
            def bench_register_strategies():
                seen.append(name)
                return [StrategySpec(name=name, description="", loader="x:y")]

        return Provider

    class Wrapper:
        @staticmethod
        @hookimpl(wrapper=True)
        def bench_register_strategies():
            result = yield
            seen.append(("wrapped", len(result)))
            return result

    plugins = load_plugins(extra=[("zz", provider("zz", tryfirst=True)), ("aa", provider("aa")), ("w", Wrapper)],
                           entry_point_group=None)
    assert seen == ["zz", "aa", ("wrapped", 2)]  # pluggy's order: tryfirst first
    assert plugins.strategies.names() == ["aa", "zz"]
    assert plugins.strategies.get("zz").plugin == "zz"


def test_failing_registration_hook_names_its_plugin_and_the_others_still_register(capsys):
    from bench.plugins import load_plugins
    from bench.specs import StrategySpec

    class Bad:
        @staticmethod
        @hookimpl
        def bench_register_strategies():
            raise RuntimeError("no such file")

    class Good:
        @staticmethod
        @hookimpl
        def bench_register_strategies():
            return [StrategySpec(name="good", description="", loader="x:y")]

    plugins = load_plugins(extra=[("bad", Bad), ("good", Good)], entry_point_group=None)
    assert plugins.strategies.names() == ["good"]
    assert plugins.failures["bad"] == "bench_register_strategies: RuntimeError: no such file"
    assert "plugin bad failed to load: bench_register_strategies: RuntimeError: no such file" in capsys.readouterr().err

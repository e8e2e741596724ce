"""Every hook of the plugin contract is documented and exercised by a test (as datasette does)."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from bench import hookspecs

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

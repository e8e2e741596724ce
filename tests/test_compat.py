"""The deprecated spellings of bench._compat: each old module path still imports, warns once with
its replacement and the release that removes it, and hands out the very object at its new home."""

from __future__ import annotations

import importlib
import subprocess
import sys
import warnings

import pytest

from bench import _compat
from bench.contamination import HashIndex, build_index, exact_digest


@pytest.mark.parametrize("old, new", sorted(_compat.MODULES.items()))
def test_every_old_module_path_is_the_module_at_its_new_home(old, new):
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=rf"{old} is deprecated and will be removed in transfer-bench "
                                                rf"{_compat.REMOVED_IN}; use {new}"):
        module = importlib.import_module(old)
    assert module is importlib.import_module(new)


def test_old_harness_names_forward_with_a_warning():
    from bench.run import cell, plan, runner

    harness = importlib.import_module("bench.harness")
    with pytest.warns(DeprecationWarning, match="use bench.run.plan.RunConfig"):
        assert harness.RunConfig is plan.RunConfig
    with pytest.warns(DeprecationWarning, match="use bench.run.runner.Runner"):
        assert harness.Runner is runner.Runner
    with pytest.warns(DeprecationWarning):
        assert harness.classification_metrics is cell.classification_metrics
    with pytest.raises(AttributeError):
        harness.no_such_name  # noqa: B018


def test_old_hashindex_names_come_from_the_contamination_package():
    old = importlib.import_module("bench.hashindex")
    with pytest.warns(DeprecationWarning, match="bench.contamination"):
        assert old.HashIndex is HashIndex
    with pytest.warns(DeprecationWarning):
        assert old.build_index is build_index and old.exact_digest is exact_digest
    with pytest.raises(AttributeError):
        old.no_such_name  # noqa: B018


def test_every_api_deprecation_names_a_replacement_and_a_release():
    for key, dep in _compat.NAMES.items():
        assert dep.new and dep.removed_in == _compat.REMOVED_IN, key
        with pytest.warns(DeprecationWarning, match="will be removed in transfer-bench"):
            _compat.warn(key)


def test_the_suite_turns_the_projects_deprecations_into_errors():
    with pytest.raises(DeprecationWarning):
        _compat.warn("ctx.task", stacklevel=2)  # attributed to this test module
    # ...while a third party's own DeprecationWarning is left alone
    with warnings.catch_warnings(record=True):
        warnings.warn("someone else's deprecation", DeprecationWarning, stacklevel=1)


def test_the_projects_own_code_imports_no_deprecated_path():
    """Importing every module of bench/ and plugins/ with warnings as errors: nothing uses an alias."""
    code = ("import warnings, pkgutil, importlib, bench, bench_plugins; "
            "warnings.simplefilter('error', DeprecationWarning);"
            "[importlib.import_module(m.name) for pkg in (bench, bench_plugins) "
            " for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.') if not m.name.endswith('__main__')]")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]


def test_no_import_anywhere_in_the_project_names_an_old_module_path():
    """An AST scan of bench/, plugins/, benchmarks/ and tests/, imports inside functions included
    (importing the modules cannot see those)."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    old = set(_compat.MODULES) | set(_compat.FACADES)
    found = []
    for folder in ("bench", "plugins", "benchmarks", "tests"):
        for path in (root / folder).rglob("*.py"):
            if path.name == "test_compat.py" or "fixtures" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
                found += [f"{path.relative_to(root)}:{node.lineno} {n}" for n in names if n in old]
    assert found == []

"""The import rules of docs/architecture.md: the core never imports the built-in plugins, and the
planning and contract modules import no torch (so `bench list` and `--dry-run` stay fast)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "bench"

#: modules that must import without torch, timm, open_clip or torchvision
TORCH_FREE = ("bench", "bench.plan", "bench.specs", "bench.registry", "bench.plugins", "bench.cli",
              "bench.hookspecs", "bench.errors", "bench.extras", "bench.loading", "bench.recipes", "bench.tunables")
MODEL_PACKAGES = ("torch", "torchvision", "timm", "open_clip", "peft")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_names(path: Path) -> list[tuple[int, str]]:
    """Every module an ``import`` statement (anywhere in the file, also inside functions) or an
    ``importlib.import_module("...")`` call with a literal name refers to."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            found.append((node.lineno, node.args[0].value))
    return found


def test_the_scan_sees_every_core_module():
    modules = {_module_name(p) for p in CORE.rglob("*.py")}
    assert {"bench", "bench.plugins", "bench.specs"} <= modules


def test_core_never_imports_the_builtin_plugins():
    offenders = [f"{p.relative_to(ROOT)}:{line} imports {name}"
                 for p in sorted(CORE.rglob("*.py")) for line, name in _imported_names(p)
                 if name == "bench_plugins" or name.startswith("bench_plugins.")]
    assert offenders == [], "bench/ must not import the built-in plugins:\n" + "\n".join(offenders)


def test_relative_imports_stay_inside_bench():
    # a relative import cannot reach bench_plugins (a sibling top-level package), but say so
    for p in CORE.rglob("*.py"):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                depth = len(p.relative_to(CORE).parts) - 1
                assert node.level <= depth + 1, f"{p.relative_to(ROOT)}:{node.lineno} climbs out of bench/"


@pytest.mark.parametrize("module", TORCH_FREE)
def test_planning_and_contract_modules_import_no_torch(module):
    if module == "bench.plan" and not (CORE / "plan.py").exists():
        pytest.skip("bench/plan.py (the torch-free planning module) does not exist yet")
    code = (f"import sys, {module}; "
            f"print(sorted(m for m in {MODEL_PACKAGES!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]", f"importing {module} imports {out.stdout.strip()}"


def test_every_core_module_says_what_it_is_for():
    missing = [str(p.relative_to(ROOT)) for p in sorted(CORE.rglob("*.py"))
               if p.name != "__main__.py" and not (ast.get_docstring(ast.parse(p.read_text())) or "").strip()]
    assert missing == [], "modules without a docstring whose first line says what they are for: " + ", ".join(missing)


#: A core module past this many lines is doing more than one job: split it along its seams.
MAX_CORE_LINES = 320


def test_every_core_module_stays_small():
    big = {str(p.relative_to(ROOT)): n for p in sorted(CORE.rglob("*.py"))
           if (n := len(p.read_text().splitlines())) > MAX_CORE_LINES}
    assert big == {}, f"core modules over {MAX_CORE_LINES} lines: {big}"


def test_architecture_doc_names_every_core_module():
    doc = (ROOT / "docs" / "architecture.md").read_text()
    unnamed = []
    for p in sorted(CORE.rglob("*.py")):
        rel = p.relative_to(CORE)
        if rel.name in ("__init__.py", "__main__.py") and len(rel.parts) == 1:
            continue
        name = f"{rel.parts[0]}/" if len(rel.parts) > 1 else rel.name
        if name not in doc:
            unnamed.append(name)
    assert unnamed == [], "docs/architecture.md does not mention: " + ", ".join(sorted(set(unnamed)))


def test_every_package_is_in_the_wheel():
    """pyproject lists packages explicitly (the plugins ship as ``bench_plugins``): a new package left
    out works in an editable install and breaks a wheel install."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {_module_name(p.parent / "__init__.py") for p in CORE.rglob("__init__.py")}
    found |= {"bench_plugins" + _module_name(p)[len("plugins"):] for p in (ROOT / "plugins").rglob("__init__.py")}
    assert found - listed == set()

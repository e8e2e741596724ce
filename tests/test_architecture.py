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
TORCH_FREE = ("bench", "bench.run", "bench.run.plan", "bench.run.budgets", "bench.run.tunables",
              "bench.run.compatibility", "bench.specs", "bench.registry", "bench.plugins", "bench.cli",
              "bench.hookspecs", "bench.errors", "bench.extras", "bench.loading", "bench.recipes", "bench.domain",
              "bench.domain.recipe", "bench.domain.validators", "bench.domain.selection", "bench.continual",
              "bench.episodes", "bench.multitask", "bench.multitask.spec", "bench.report")
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


#: The layer of every core module (docs/architecture.md): a module imports only its own layer or
#: lower ones. Keys are module names or package prefixes; the longest matching key wins.
LAYERS = {
    "bench": 0, "bench._compat": 0, "bench.specs": 0, "bench.hookspecs": 0, "bench.registry": 0,
    "bench.plugins": 0, "bench.errors": 0, "bench.extras": 0, "bench.loading": 0, "bench.recipes": 0,
    "bench.tasks": 0, "bench.views": 0, "bench.record": 0,
    "bench.encoders": 1, "bench.strategies": 1, "bench.adaptation": 1, "bench.training": 1, "bench.loop": 1,
    "bench.accel": 1, "bench.probe": 1, "bench.weights": 1, "bench.hub": 1, "bench.timm_encoder": 1,
    "bench.run": 2, "bench.run.plan": 2, "bench.run.compatibility": 2, "bench.run.budgets": 2,
    "bench.run.tunables": 2, "bench.run.records": 2,
    "bench.domain": 2, "bench.domain.validators": 2, "bench.domain.selection": 2, "bench.domain.features": 2,
    "bench.continual": 2, "bench.continual.spec": 2, "bench.continual.penalties": 2,
    "bench.episodes": 2, "bench.episodes.spec": 2, "bench.episodes.classes": 2,
    "bench.episodes.meta": 2, "bench.contamination": 2,
    "bench.multitask": 2, "bench.multitask.spec": 2, "bench.multitask.joint": 2,
    "bench.run.runner": 3, "bench.run.executors": 3, "bench.run.worker": 3, "bench.run.cell": 3,
    "bench.run.tuning": 3, "bench.run.features": 3, "bench.run.forgetting": 3, "bench.run.deadline": 3,
    "bench.run.lock": 3, "bench.run.estimate": 3, "bench.run.task_set": 3,
    "bench.run.folder": 3, "bench.run.dispatch": 3, "bench.run.identities": 3,
    "bench.continual.driver": 3, "bench.episodes.driver": 3, "bench.multitask.driver": 3,
    "bench.report": 4, "bench.transferability": 4,
    "bench.cli": 5, "bench.__main__": 5,
}


def _layer(module: str) -> int:
    key = max((k for k in LAYERS if module == k or module.startswith(k + ".")), key=len)
    return LAYERS[key]


def _core_graph() -> dict[str, set[str]]:
    """Module -> the core modules it imports (anywhere in the file, inside functions too)."""
    modules = {_module_name(p): p for p in CORE.rglob("*.py")}

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package
                    for _ in range(node.level - 1):
                        up = up.rpartition(".")[0]
                    base = f"{up}.{base}" if base else up
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for t in targets:
                if t == "bench" or t.startswith("bench."):
                    r = resolve(t)
                    if r and r != name and r != "bench":  # the root package re-exports the contract only
                        found.add(r)
        graph[name] = found
    return graph


def test_every_core_module_has_a_layer():
    assert all(_layer(m) is not None for m in _core_graph())


def test_no_module_imports_a_higher_layer():
    up = sorted(f"{m} (layer {_layer(m)}) imports {t} (layer {_layer(t)})"
                for m, targets in _core_graph().items() for t in targets if _layer(t) > _layer(m))
    assert up == [], "imports that climb a layer (docs/architecture.md):\n" + "\n".join(up)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_planted_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_in_the_core():
    cycles = _cycles(_core_graph())
    assert cycles == [], "import cycles (function-level imports count): " + "; ".join(" <-> ".join(c) for c in cycles)

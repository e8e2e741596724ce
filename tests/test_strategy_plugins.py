"""The built-in strategies are written like third-party plugins: cheap, torch-free registration
with string loaders, implementations that import at the top, shared code only from the core."""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import bench.adaptation
from bench.plugins import load_plugins

STRATEGIES = Path(__file__).resolve().parent.parent / "plugins" / "strategies"
REGISTRATION = sorted(p.stem for p in STRATEGIES.glob("*.py") if not p.stem.startswith("_"))


def test_registering_every_builtin_strategy_imports_no_torch():
    code = ("import json, sys; from bench.plugins import load_plugins; names = load_plugins().strategies.names(); "
            "print(json.dumps({'names': sorted(names), "
            "'heavy': [m for m in ('torch', 'sklearn', 'peft', 'timm') if m in sys.modules]}))")
    out = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert {"finetune", "lora", "dann", "tent", "zero-shot", "l2-sp", "ewc"} <= set(out["names"])
    assert out["heavy"] == []


def test_every_builtin_strategy_loads_through_a_string_loader_to_its_implementation_module():
    entry_points = {n.replace("_", "-") for n in REGISTRATION}
    builtin = [s for s in load_plugins().strategies if s.plugin in entry_points]
    assert len(builtin) == 31  # 17 + cdan, mcc, bn-adapt + protonet, fomaml, reptile, good-embedding + 7 *-features
    for spec in builtin:
        assert isinstance(spec.loader, str), spec.name
        assert spec.loader.startswith("bench_plugins.strategies._"), spec.loader
        assert hasattr(spec.load(), "fit")


def _imports(path: Path) -> tuple[list[str], list[int]]:
    """(every module ``path`` imports, the line numbers of imports inside functions or classes)."""
    tree = ast.parse(path.read_text())
    names, nested = [], []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names.append(node.module or "")
    top = {id(n) for n in tree.body}
    nested = [n.lineno for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) and id(n) not in top]
    return names, nested


@pytest.mark.parametrize("path", sorted(STRATEGIES.glob("*.py")), ids=lambda p: p.name)
def test_a_strategy_module_imports_at_the_top_and_never_another_strategy(path):
    names, nested = _imports(path)
    assert nested == [], f"{path.name}: imports inside functions at lines {nested}"
    own = {"bench_plugins.strategies", f"bench_plugins.strategies.{path.stem.lstrip('_')}"}
    siblings = [n for n in names if n.startswith("bench_plugins.") and n not in own]
    assert siblings == [], f"{path.name} imports {siblings}; shared code belongs in bench.adaptation"
    if not path.stem.startswith("_"):  # registration modules stay cheap
        assert not {n.split(".")[0] for n in names} & {"torch", "numpy", "sklearn", "peft", "timm"}, path.name


def test_implementation_names_stay_importable_from_the_registration_modules_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from bench_plugins.strategies.coral import Coral, coral_loss
        from bench_plugins.strategies.lora import apply_lora
        from bench_plugins.strategies.regularised import fisher_diagonal
    assert Coral.__module__ == "bench_plugins.strategies._coral" and callable(coral_loss)
    assert callable(apply_lora) and callable(fisher_diagonal)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        importlib.import_module("bench_plugins.strategies.coral").nothing  # noqa: B018


def test_peft_defaults_are_one_recipe_in_the_core():
    from bench.recipes import PEFT_DEFAULTS
    from bench_plugins.strategies import bitfit

    assert bitfit.PEFT_DEFAULTS is PEFT_DEFAULTS
    specs = {s.name: s for s in load_plugins().strategies}
    for name in ("bitfit", "lora", "adapter", "vpt"):
        assert specs[name].defaults["lr"] == PEFT_DEFAULTS["lr"] == 3e-3
        assert specs[name].defaults["head_lr_mult"] == PEFT_DEFAULTS["head_lr_mult"] == 3.0


@pytest.mark.parametrize("classes", [2, 3])
def test_class_coefficients_reproduce_scikit_learns_decisions(classes):
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    y = np.arange(40) % classes
    x[:, 0] += y
    clf = LogisticRegression(C=1.0).fit(x, y)
    coef, intercept = bench.adaptation.class_coefficients(clf)
    assert coef.shape == (classes, 3)
    logits = x @ coef.T + intercept
    np.testing.assert_array_equal(logits.argmax(1), clf.predict(x))
    if classes == 2:  # the symmetric pair keeps scikit-learn's one logit as their difference
        np.testing.assert_allclose(logits[:, 1] - logits[:, 0], clf.decision_function(x), rtol=1e-6)

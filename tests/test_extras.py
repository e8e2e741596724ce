"""Optional dependencies: a missing one is one line naming the extra, never a traceback."""

from __future__ import annotations

import json
import re
import sys
import tomllib
from pathlib import Path

import pytest

from bench.errors import UserError
from bench.extras import EXTRAS, require

ROOT = Path(__file__).resolve().parents[1]


def test_require_returns_the_module_when_installed():
    assert require("json", "plots", "--anything") is json


def test_missing_package_names_the_feature_and_the_extra():
    with pytest.raises(UserError) as err:
        require("ray_is_not_installed_here", "ray", "--executor ray")
    assert str(err.value) == ("--executor ray needs the 'ray_is_not_installed_here' package; "
                              "pip install 'transfer-bench[ray]'")


def test_missing_submodule_of_a_missing_package_is_the_same_message():
    with pytest.raises(UserError, match=r"^--contact-sheet needs the 'nomatplotlib' package; "
                                        r"pip install 'transfer-bench\[plots\]'$"):
        require("nomatplotlib.pyplot", "plots", "--contact-sheet")


def test_a_broken_installed_package_keeps_its_own_error(tmp_path, monkeypatch):
    # installed, but one of its own imports fails: that is a bug to see, not "pip install"
    (tmp_path / "halfthere").mkdir()
    (tmp_path / "halfthere" / "__init__.py").write_text("import dependency_that_is_missing\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="dependency_that_is_missing"):
        require("halfthere", "ray", "--executor ray")
    sys.modules.pop("halfthere", None)


def test_unknown_extra_is_a_programming_error():
    with pytest.raises(ValueError, match=r"unknown extra 'rays'; declared extras: plots, ray, submitit"):
        require("json", "rays", "--executor ray")


def test_extras_table_matches_pyproject():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for extra, modules in EXTRAS.items():
        packages = {re.split(r"[<>=!~\[; ]", req)[0].lower() for req in declared[extra]}
        assert set(modules) <= packages, (extra, packages)


def test_design_card_packages_are_core_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {re.split(r"[<>=!~\[; ]", req)[0].lower() for req in project["dependencies"]}
    assert {"torch", "timm", "open_clip_torch", "peft", "scikit-learn", "pluggy", "tabulate", "scipy"} <= core
    assert any(req.startswith("numpy>=2") for req in project["dependencies"])  # np.bitwise_count
    assert {"all", "test", "plots", "ray", "submitit"} <= set(project["optional-dependencies"])

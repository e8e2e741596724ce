"""The plugin system: entry points, third-party packages, broken plugins, registries."""

from __future__ import annotations

import json

import pytest

import bench
from bench.errors import PluginError, UserError
from bench.plugins import load_plugins
from bench.registry import Registry
from bench.specs import EncoderSpec, StrategySpec
from tests.conftest import run_cli

BUILTIN_ENCODERS = {"efficientnet-lite0", "pixels"}
BUILTIN_STRATEGIES = {"scratch", "linear-probe", "finetune"}


def test_builtins_are_registered_through_the_entry_point_group():
    from importlib.metadata import entry_points

    names = {ep.value for ep in entry_points(group="bench")}
    assert "bench_plugins.encoders.efficientnet" in names
    assert "bench_plugins.strategies.finetune" in names
    plugins = load_plugins()
    assert BUILTIN_ENCODERS <= set(plugins.encoders.names())
    assert BUILTIN_STRATEGIES <= set(plugins.strategies.names())
    assert {"digits", "mnist5k"} <= set(plugins.tasks.names())
    assert plugins.encoders.get("efficientnet-lite0").plugin == "efficientnet"


def test_third_party_package_shows_up_in_bench_list(plugin_site):
    result = run_cli("list", "encoders", "--json", env={"PYTHONPATH": str(plugin_site)})
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["toy-cnn"]["plugin"] == "toy"
    assert rows["toy-cnn"]["description"] == "tiny CNN with fixed-seed weights"
    assert rows["toy-cnn"]["pretraining_data"] == ["toy-pretraining"]
    assert BUILTIN_ENCODERS <= set(rows)
    plugins = json.loads(run_cli("list", "plugins", "--json", env={"PYTHONPATH": str(plugin_site)}).stdout)
    by_name = {p["name"]: p for p in plugins}
    assert by_name["toy"]["distribution"] == "bench-toy" and by_name["toy"]["status"] == "loaded"


def test_broken_plugin_is_reported_by_name_and_skipped(plugin_site):
    result = run_cli("list", "strategies", env={"PYTHONPATH": str(plugin_site)})
    assert result.returncode == 0
    assert 'plugin broken failed to load: Error importing plugin "broken": ModuleNotFoundError' in result.stderr
    assert "toy-centroid" in result.stdout and "finetune" in result.stdout
    plugins = json.loads(run_cli("list", "plugins", "--json", env={"PYTHONPATH": str(plugin_site)}).stdout)
    assert {p["name"]: p["status"] for p in plugins}["broken"] == "failed"


def test_strict_plugins_makes_a_broken_plugin_fatal(plugin_site):
    result = run_cli("list", "encoders", env={"PYTHONPATH": str(plugin_site), "BENCH_STRICT_PLUGINS": "1"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]  # one line
    assert "plugin broken failed to load" in result.stderr and "Traceback" not in result.stderr


def test_disabled_plugins_are_blocked(plugin_site):
    env = {"PYTHONPATH": str(plugin_site), "BENCH_DISABLE_PLUGINS": "broken,toy,pixels"}
    result = run_cli("list", "encoders", "--json", env=env)
    names = {r["name"] for r in json.loads(result.stdout)}
    assert "toy-cnn" not in names and "pixels" not in names and "efficientnet-lite0" in names
    assert "failed to load" not in result.stderr


def test_duplicate_names_fail_naming_both_plugins():
    class A:
        @staticmethod
        @bench.hookimpl
        def bench_register_encoders():
            return [EncoderSpec(name="pixels", description="again", loader="x:y")]

    with pytest.raises(PluginError, match=r"encoder 'pixels' is registered by two plugins: 'pixels' and 'zz-dupe'"):
        load_plugins(extra=[("zz-dupe", A)])


def test_hook_returning_wrong_type_is_a_plugin_failure(capsys):
    class Bad:
        @staticmethod
        @bench.hookimpl
        def bench_register_strategies():
            return ["not a spec"]

    plugins = load_plugins(extra=[("bad", Bad)], entry_point_group=None)
    assert "bad" in plugins.failures and "expected StrategySpec" in plugins.failures["bad"]
    assert "plugin bad failed to load" in capsys.readouterr().err


def test_unknown_names_suggest_close_matches():
    reg: Registry[StrategySpec] = Registry("strategy")
    for name in ("linear-probe", "finetune", "lora"):
        reg.add(StrategySpec(name=name, description="", loader="x:y"), "p")
    with pytest.raises(UserError, match=r"unknown strategy 'fine-tune'; did you mean finetune\?"):
        reg.get("fine-tune")
    with pytest.raises(UserError, match=r"unknown strategy 'xyzzy' \(see `bench list strategies`\)"):
        reg.get("xyzzy")


def test_variants_resolve_and_unknown_variants_are_named():
    reg: Registry[EncoderSpec] = Registry("encoder")
    reg.add(EncoderSpec(name="fam", description="", loader="x:y", variants={"a": {"feature_dim": 3}, "b": {}},
                        default_variant="a", metadata={"feature_dim": 9}), "p")
    spec, variant = reg.resolve("fam:b")
    assert variant == "b" and spec.variant_metadata("b")["feature_dim"] == 9
    assert reg.resolve("fam")[0].variant_metadata(None)["feature_dim"] == 3
    with pytest.raises(UserError, match=r"unknown variant 'c' of encoder 'fam'; known: a, b"):
        reg.resolve("fam:c")


def test_bench_list_does_not_import_model_code():
    import subprocess
    import sys

    code = ("import sys; from bench.cli import main; main(['list', 'encoders']); "
            "bad = [m for m in ('timm', 'open_clip', 'torchvision', 'torch') if m in sys.modules]; "
            "print('IMPORTED', bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert "IMPORTED []" in out


def test_plugin_api_version_is_exposed_and_documented():
    import re
    from pathlib import Path

    assert bench.PLUGIN_API_VERSION == 3
    doc = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text()
    assert f"Plugin API {bench.PLUGIN_API_VERSION}" in doc.splitlines()[2]
    changelog = doc[doc.index("## Changelog"):]
    assert re.search(rf"^### Plugin API {bench.PLUGIN_API_VERSION}\b", changelog, re.M)


def test_unknown_encoder_metadata_key_fails_at_registration_naming_the_plugin(capsys):
    class Typo:
        @staticmethod
        @bench.hookimpl
        def bench_register_encoders():
            return [EncoderSpec(name="typo-enc", description="", loader="x:y", metadata={"feature_dims": 8})]

    plugins = load_plugins(extra=[("typo", Typo)], entry_point_group=None)
    assert "typo-enc" not in plugins.encoders
    assert "unknown metadata key 'feature_dims'" in plugins.failures["typo"]
    err = capsys.readouterr().err
    assert "plugin typo failed to load: bench_register_encoders: ValueError: encoder 'typo-enc'" in err

"""Typed spec fields: EncoderMeta (validated, with the old mapping API) and TaskSpec's typed fields."""

from __future__ import annotations

import types
import warnings

import pytest

import bench
from bench.plugins import load_plugins
from bench.specs import EncoderMeta, EncoderSpec, TaskSpec


def test_encoder_meta_is_typed_with_core_defaults_and_maps_only_declared_keys():
    meta = EncoderMeta.of({"feature_dim": 8, "trainable": False, "pretraining_data": ["x"]})
    assert meta.feature_dim == 8 and meta.trainable is False and meta.pretraining_data == ("x",)
    assert meta.is_vit is False and meta.has_text_tower is False  # typed defaults
    assert dict(meta) == {"feature_dim": 8, "trainable": False, "pretraining_data": ("x",)}
    assert meta.get("is_vit", "unset") == "unset" and "params" not in meta and meta["feature_dim"] == 8
    with pytest.raises(KeyError):
        meta["is_vit"]
    assert EncoderMeta(params=3, is_vit=True) == EncoderMeta.of({"params": 3, "is_vit": True})
    assert dict(EncoderMeta(params=3, is_vit=True)) == {"params": 3, "is_vit": True}


def test_unknown_metadata_key_fails_naming_the_encoder_the_key_and_the_known_keys():
    with pytest.raises(ValueError, match=r"encoder 'e': unknown metadata key 'feat_dim'; known keys: params, "):
        EncoderSpec(name="e", description="", loader="x:y", metadata={"feat_dim": 3})
    with pytest.raises(ValueError, match=r"encoder 'e' variant 'v': unknown metadata key 'colour'"):
        EncoderSpec(name="e", description="", loader="x:y", variants={"v": {"colour": "red"}})


def test_unknown_metadata_key_is_reported_as_a_plugin_load_failure(capsys):
    plugin = types.SimpleNamespace(bench_register_encoders=bench.hookimpl(
        lambda: [EncoderSpec(name="typo-enc", description="", loader="x:y", metadata={"featuredim": 3})]))
    plugins = load_plugins(extra=[("typo-plugin", plugin)], entry_point_group=None)
    assert "typo-enc" not in plugins.encoders
    assert "featuredim" in plugins.failures["typo-plugin"]
    assert "plugin typo-plugin failed to load" in capsys.readouterr().err


def test_variant_metadata_merges_variant_over_spec_and_fills_pretraining_data():
    spec = EncoderSpec(name="fam", description="", loader="x:y", pretraining_data=("d",), default_variant="a",
                       metadata={"feature_dim": 9, "license": "mit"}, variants={"a": {"feature_dim": 3}, "b": {}})
    a, b = spec.variant_metadata(None), spec.variant_metadata("b")
    assert isinstance(a, EncoderMeta) and a.feature_dim == 3 and b.feature_dim == 9
    assert dict(b) == {"feature_dim": 9, "license": "mit", "pretraining_data": ("d",)}


def test_task_reference_and_native_size_are_typed_and_still_readable_as_metadata():
    spec = TaskSpec(name="t", description="", loader="x:y", reference_task="r", native_size=8, metadata={"k": 1})
    assert (spec.reference_task, spec.native_size) == ("r", 8)
    assert spec.metadata.get("reference_task") == "r" and spec.metadata["native_size"] == 8
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old = TaskSpec(name="t", description="", loader="x:y", metadata={"reference_task": "r"})
    assert old.reference_task == "r" and old.native_size is None
    assert any(issubclass(w.category, DeprecationWarning) and "reference_task" in str(w.message) for w in caught)


def test_builtin_specs_use_the_typed_fields():
    plugins = load_plugins()
    assert plugins.tasks.get("mnist5k").reference_task == "digits"
    assert plugins.tasks.get("mnist5k").native_size == 28
    assert plugins.encoders.get("pixels").metadata.trainable is False
    assert plugins.encoders.get("clip").metadata.open_variants is True


def test_strategy_kinds_and_requirements_are_closed_sets():
    from bench.continual import ContinualSpec
    from bench.specs import REQUIREMENTS, StrategySpec

    assert REQUIREMENTS == ("pretrained", "trainable", "vit", "text_tower", "unlabelled_target")
    with pytest.raises(ValueError, match="unknown requirement 'pretraned'; known: pretrained, trainable"):
        StrategySpec(name="s", description="d", loader="m:f", requires=("pretraned",))
    with pytest.raises(ValueError, match="kind must be 'features' or 'train', not 'continual'"):
        StrategySpec(name="s", description="d", loader="m:f", kind="continual")
    spec = ContinualSpec(name="continual:x", description="d", loader="m:f", requires=("trainable",))
    assert spec.kind == "continual" and spec.requires == ("trainable",)
    with pytest.raises(ValueError, match="kind must be 'continual', not 'train'"):
        ContinualSpec(name="continual:y", description="d", loader="m:f", kind="train")


def test_a_strategy_checks_its_option_values_when_the_run_is_planned(tmp_path, with_plugins, monkeypatch):
    """StrategySpec.check_config gets the effective options (defaults, then --set) once, at plan time."""
    from bench.errors import UserError
    from bench.run.plan import Planner, RunConfig
    from bench.specs import StrategySpec

    seen = []

    def check(config):
        seen.append(config)
        if config["width"] <= 0:
            raise UserError(f"toy width={config['width']!r} is not positive")

    class Plugin:
        @staticmethod
        @bench.hookimpl
        def bench_register_strategies():
            return [StrategySpec(name="toy-wide", description="d", loader="m:f", kind="features",
                                 defaults={"width": 3, "depth": 1}, check_config=check)]

    monkeypatch.setenv("BENCH_DISABLE_PLUGINS", "broken")
    plugins = load_plugins(extra=[("wide", Plugin)])
    cfg = RunConfig(encoders=["pixels"], strategies=["toy-wide", "knn"], tasks=["digits"], out=tmp_path)
    Planner(cfg, plugins)
    assert seen == [{"width": 3, "depth": 1}]
    cfg.options = [("toy-wide", "width", -2)]
    with pytest.raises(UserError, match=r"^toy width=-2 is not positive$"):
        Planner(cfg, plugins)
    assert seen[-1] == {"width": -2, "depth": 1}
    assert StrategySpec(name="s", description="d", loader="m:f").check({"anything": object()}) is None

"""linear-probe's ``C = "auto"``: a C per labels-per-class budget from the carve-out's table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.errors import UserError
from bench_plugins.strategies import linear_probe
from bench_plugins.strategies.linear_probe import C_BY_BUDGET, ZERO_SHOT_C, auto_C, check_C, resolve_C
from tests.test_probe import ctx_for, magnitude_task

TABLE_JSON = Path(__file__).resolve().parents[1] / "benchmarks" / "defaults" / "probe_C_by_budget.json"


def test_default_C_is_auto_and_the_table_is_the_carve_outs():
    """The table in code is the one benchmarks/probe_C.py --by-budget wrote, key for key."""
    from bench.plugins import load_plugins

    assert load_plugins().strategies.get("linear-probe").defaults["C"] == "auto"
    if not TABLE_JSON.exists():
        pytest.skip("no benchmarks/defaults/probe_C_by_budget.json: run benchmarks/probe_C.py --by-budget")
    table = json.loads(TABLE_JSON.read_text())["table"]
    assert [(int(k), float(v)) for k, v in table.items()] == list(C_BY_BUDGET)
    assert [k for k, _ in C_BY_BUDGET] == sorted(k for k, _ in C_BY_BUDGET) and C_BY_BUDGET[0][0] == 1
    assert all(C in linear_probe.C_GRID for _, C in C_BY_BUDGET)


def test_auto_C_takes_the_row_of_the_largest_key_at_or_below_the_budget(monkeypatch):
    monkeypatch.setattr(linear_probe, "C_BY_BUDGET", ((1, 0.3), (5, 3.0), (20, 30.0)))
    assert [auto_C(m) for m in (0.5, 1, 4.9, 5, 19, 20, 400)] == [0.3, 0.3, 0.3, 3.0, 3.0, 30.0, 30.0]
    # 10 labels over 10 classes is 1/class; 50 over 10 is 5/class, whatever the budget's kind
    assert resolve_C("auto", 10, 10) == 0.3 and resolve_C("auto", 50, 10) == 3.0
    assert resolve_C("auto", 10, 10, zero_shot=True) == ZERO_SHOT_C


def test_one_per_class_cell_fits_with_the_tables_C_and_records_it():
    from bench_plugins.strategies._linear_probe import LinearProbe

    x, y = magnitude_task(1, seed=0)  # 4 classes, 1 item each
    fitted = LinearProbe().fit(ctx_for(x, y, {"C": "auto", "max_iter": 2000, "head_init": "random"}))
    assert fitted.info["C"] == C_BY_BUDGET[0][1]
    x, y = magnitude_task(20, seed=0)
    fitted = LinearProbe().fit(ctx_for(x, y, {"C": "auto", "max_iter": 2000, "head_init": "random"}))
    assert fitted.info["C"] == auto_C(20)


def test_explicit_C_overrides_the_table():
    from bench_plugins.strategies._linear_probe import LinearProbe

    x, y = magnitude_task(1, seed=0)
    fitted = LinearProbe().fit(ctx_for(x, y, {"C": 7.5, "max_iter": 2000, "head_init": "random"}))
    assert fitted.info["C"] == 7.5
    assert check_C(3) == 3.0 and check_C("AUTO") == "auto" and check_C("1e2") == 100.0
    assert resolve_C(0.01, 10, 10) == 0.01


@pytest.mark.parametrize("bad", ["foo", -1.0, 0, float("nan"), float("inf"), True, None])
def test_bad_C_is_one_line_naming_the_value_and_the_fix(bad):
    with pytest.raises(UserError) as err:
        check_C(bad)
    msg = str(err.value)
    assert "\n" not in msg and f"C={bad!r}" in msg and "--set C=auto" in msg


def test_auto_C_changes_the_fit_at_one_per_class():
    """The table's C is what the solver sees: at 1/class a small C shrinks the weights."""
    from bench.probe import FeatureScale, fit_logistic_info

    x, y = magnitude_task(1, seed=4)
    z = FeatureScale.fit(x)(x)
    small, _ = fit_logistic_info(z, y, 0.1, 2000, 0)
    large, _ = fit_logistic_info(z, y, 100.0, 2000, 0)
    assert np.linalg.norm(small.coef_) < np.linalg.norm(large.coef_)


def test_the_engine_is_part_of_the_configuration_and_a_bad_one_is_named():
    """``engine`` is a default of the strategy, so it enters the cell's identity; a bad value is one line."""
    from bench.plugins import load_plugins
    from bench_plugins.strategies._linear_probe import LinearProbe

    assert load_plugins().strategies.get("linear-probe").defaults["engine"] == "direct"
    x, y = magnitude_task(5, seed=0)
    with pytest.raises(UserError, match="engine='fast'.*--set engine=direct"):
        LinearProbe().fit(ctx_for(x, y, {"C": "auto", "max_iter": 2000, "head_init": "random", "engine": "fast"}))
    direct = LinearProbe().fit(ctx_for(x, y, {"C": 100.0, "max_iter": 2000, "head_init": "random"}))
    sk = LinearProbe().fit(ctx_for(x, y, {"C": 100.0, "max_iter": 2000, "head_init": "random", "engine": "sklearn"}))
    assert direct.info["C"] == sk.info["C"] == 100.0

"""Property-based tests (issue 12, hypothesis): budgets, seeds, names, ``--set`` values, run.toml
values, results lines and file names generated at random. The property is always the same: a
value is accepted and round-trips, or it is a one-line :class:`UserError`; nothing else escapes.

1,900 generated cases per suite run (derandomized: the same cases every time, a few seconds).
``BENCH_FUZZ_SCALE=50`` multiplies every count (the nightly-sized run in BENCHMARKS.md).
"""

from __future__ import annotations

import os
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.errors import PluginError, UserError
from bench.run.budgets import Budget, parse_budget, parse_budgets
from bench.run.records import ResultsFile
from bench.tasks import printable

SCALE = int(os.environ.get("BENCH_FUZZ_SCALE", "1"))


def fuzz(n: int):
    return settings(max_examples=n * SCALE, deadline=None, derandomize=SCALE == 1,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


budget_text = st.one_of(st.text(max_size=12), st.from_regex(r"\s*(n?\d{1,6}(/class)?|full|FULL)\s*", fullmatch=True))


@fuzz(400)
@given(budget_text)
def test_a_budget_parses_and_round_trips_or_is_a_user_error(text):
    try:
        b = parse_budget(text)
    except UserError as exc:
        assert "\n" not in str(exc) and "malformed budget" in str(exc)
        return
    assert isinstance(b, Budget) and parse_budget(b.label) == b
    assert b.kind == "full" or (b.n is not None and b.n > 0)


@fuzz(200)
@given(st.lists(budget_text, max_size=5))
def test_budget_lists(parts):
    try:
        budgets = parse_budgets(",".join(parts))
    except UserError:
        return
    assert budgets == sorted(set(budgets)) and budgets


@fuzz(300)
@given(st.text(max_size=30), st.text(max_size=30))
def test_set_values_parse_or_are_one_line_errors(key, value):
    from bench.cli import build_parser, run_config_from_args

    try:
        cfg = run_config_from_args(build_parser().parse_args(["run", f"--set={key}={value}"]))
    except UserError as exc:
        assert "\n" not in str(exc)
        return
    target, name, parsed = cfg.options[-1]
    assert "-" not in name and (target is None or isinstance(target, str))
    if value.strip().lower() in ("true", "yes", "on"):
        assert parsed is True


@fuzz(300)
@given(seeds=st.integers(-10**6, 10**6), timeout=st.floats(allow_nan=True, allow_infinity=True),
       resolution=st.one_of(st.integers(-5, 10**4), st.text(string.printable, max_size=6)))
def test_seeds_timeouts_and_resolutions_from_a_toml(tmp_path_factory, seeds, timeout, resolution):
    from bench.cli import build_parser, run_config_from_args

    path = tmp_path_factory.mktemp("toml") / "run.toml"
    res = f'"{resolution}"' if isinstance(resolution, str) else str(resolution)
    tval = repr(timeout).replace("inf", "inf").replace("nan", "nan")
    path.write_text(f"seeds = {seeds}\ncell_timeout = {tval}\nresolution = {res.replace(chr(92), '')}\n")
    try:
        cfg = run_config_from_args(build_parser().parse_args(["run", "-c", str(path)]))
    except UserError as exc:
        assert "\n" not in str(exc).strip()
        return
    assert cfg.seeds == seeds
    assert cfg.cell_timeout is not None and 0 < cfg.cell_timeout < float("inf")


@pytest.fixture(scope="module")
def registry():
    from bench.plugins import load_plugins

    return load_plugins()


@fuzz(300)
@given(st.text(max_size=40))
def test_names_of_encoders_strategies_and_tasks(registry, name):
    for kind in (registry.encoders, registry.strategies, registry.tasks, registry.executors):
        try:
            spec = kind.get(name)
        except (UserError, PluginError) as exc:
            assert "\n" not in str(exc).strip()
        else:
            assert spec is not None


@fuzz(200)
@given(st.lists(st.binary(max_size=60), min_size=1, max_size=4))
def test_results_lines_load_or_are_one_line_errors(tmp_path_factory, lines):
    path = tmp_path_factory.mktemp("res") / "results.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    try:
        records = ResultsFile(path).load()
    except UserError as exc:
        assert "\n" not in str(exc)
        return
    assert all(isinstance(r, dict) for r in records)


@fuzz(200)
@given(st.binary(min_size=1, max_size=40))
def test_any_file_name_becomes_a_printable_id(raw):
    text = os.fsdecode(raw)
    out = printable(text)
    assert out.isprintable() and out.encode("utf-8")
    if text.isprintable():
        assert out == text

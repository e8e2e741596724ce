"""Every user mistake: exit status 2 and one line on stderr naming the bad value, no traceback."""

from __future__ import annotations

import pytest

from bench.cli import main
from tests.conftest import run_cli


@pytest.fixture(autouse=True)
def _no_broken_plugin(monkeypatch):
    monkeypatch.setenv("BENCH_DISABLE_PLUGINS", "broken")


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("bench: error: ")
    return lines[0]


TOY = ["--tasks", "toy-blobs", "--encoders", "toy-cnn", "--strategies", "toy-centroid", "--seeds", "1",
       "--no-progress", "--forgetting", "off"]


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["run", "--encoders", "efficientnet-lte0", "--dry-run"], "unknown encoder 'efficientnet-lte0'; did you mean efficientnet-lite0"),
        (["run", "--strategies", "linear_probe", "--dry-run"], "unknown strategy 'linear_probe'; did you mean linear-probe"),
        (["run", "--tasks", "mnist5", "--dry-run"], "unknown task 'mnist5'; did you mean mnist5k"),
        (["run", "--budgets", "5,x", "--dry-run"], "malformed budget 'x'; use labels per class (e.g. 5), a stratified total (e.g. n100), or full"),
        (["run", "--tasks", "digits", "--budgets", "200", "--dry-run"], "budget 200/class is larger than class '0' of task 'digits', which has"),
        (["run", "--seeds", "0", "--dry-run"], "--seeds must be a positive integer, not 0"),
        (["run", "--set", "no_such_option=1", "--dry-run"], "option 'no_such_option' is not an option of any selected strategy"),
        (["run", "--set", "lr", "--dry-run"], "--set 'lr': expected KEY=VALUE"),
        (["run", "--weights", "clip", "--dry-run"], "--weights 'clip': expected NAME=PATH"),
        (["run", "--device", "tpu", "--dry-run"], "unknown device 'tpu'; use auto, cpu or cuda"),
        (["run", "--resolution", "big", "--dry-run"], "--resolution big: 'big' is not a positive integer or auto; use"),
        (["run", "--resolution", "clip=0", "--dry-run"], "--resolution clip=0: '0' for clip is not a positive integer"),
        (["run", "--encoders", "clip,dinov2", "--resolution", "clp=32", "--dry-run"],
         "--resolution names clp, not among --encoders clip,dinov2; name an encoder of the run"),
        (["run", "-c", "/nonexistent/run.toml"], "config file '/nonexistent/run.toml' does not exist"),
        (["leaderboard", "/nonexistent/dir"], "no results found at '/nonexistent/dir/results.jsonl'"),
        (["leaderboard", "--format", "pdf", "."], "unknown format 'pdf'"),
    ],
)
def test_user_errors_exit_2_with_one_line(argv, expected, capsys, with_plugins):
    assert main(argv) == 2
    line = one_error_line(capsys)
    assert expected in line, line


def test_unwritable_output_folder(tmp_path, capsys, with_plugins):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert main(["run", *TOY, "--out", str(blocker / "out")]) == 2
    line = one_error_line(capsys)
    assert f"output folder '{blocker / 'out'}' is not writable" in line and "--out" in line


def test_results_file_that_is_not_jsonl(tmp_path, capsys, with_plugins):
    out = tmp_path / "run"
    out.mkdir()
    (out / "results.jsonl").write_text('{"encoder": "e", "status": "ok"}\n{not json\n')
    assert main(["run", *TOY, "--out", str(out)]) == 2
    assert f"{out / 'results.jsonl'}:2 is not valid JSONL" in one_error_line(capsys)
    assert main(["leaderboard", str(out)]) == 2
    assert "is not valid JSONL" in one_error_line(capsys)


def test_bad_toml_is_named(tmp_path, capsys):
    bad = tmp_path / "run.toml"
    bad.write_text("encoders = [\n")
    assert main(["run", "-c", str(bad)]) == 2
    assert f"config file '{bad}' is not valid TOML" in one_error_line(capsys)
    bad.write_text('encoderz = ["pixels"]\n')
    assert main(["run", "-c", str(bad)]) == 2
    assert "unknown key 'encoderz'" in one_error_line(capsys)


def test_user_error_in_a_subprocess_has_no_traceback():
    result = run_cli("run", "--encoders", "clipp", "--dry-run")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("bench: error: unknown encoder 'clipp'; did you mean clip")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("option, expected", [
    ("engine=foo", "linear-probe engine='foo' is not direct or sklearn; use --set engine=direct"),
    ("linear-probe.engine=1", "linear-probe engine=1 is not direct or sklearn; use --set engine=direct"),
    ("C=-1", "linear-probe C=-1 is not a positive number or auto; use e.g. --set C=auto"),
    ("C=abc", "linear-probe C='abc' is not a positive number or auto; use e.g. --set C=auto"),
    ("linear-probe.C=0", "linear-probe C=0 is not a positive number or auto"),
])
def test_a_bad_linear_probe_option_stops_the_run_before_any_cell(tmp_path, capsys, with_plugins, option, expected):
    """Checked at plan time (StrategySpec.check_config), not in each cell (which would record failures)."""
    out = tmp_path / "run"
    argv = ["run", "--tasks", "digits", "--encoders", "pixels", "--strategies", "knn,linear-probe", "--budgets", "1",
            "--seeds", "1", "--no-progress", "--forgetting", "off", "--out", str(out), "--set", option]
    assert main(argv) == 2
    line = one_error_line(capsys)
    assert line.startswith(f"bench: error: {expected}"), line
    assert not (out / "results.jsonl").exists()  # no cell ran, not even knn's
    assert main([*argv[:-1], "C=auto" if option.startswith("engine") else "engine=sklearn", "--dry-run"]) == 0
    capsys.readouterr()


def test_a_bad_linear_probe_option_from_the_command_line_is_one_line(tmp_path, with_plugins):
    done = run_cli("run", "--tasks", "digits", "--encoders", "pixels", "--strategies", "linear-probe", "--budgets", "1",
                   "--seeds", "1", "--no-progress", "--out", str(tmp_path / "run"), "--set", "C=-1", "--set",
                   "engine=foo", env={"BENCH_DISABLE_PLUGINS": "broken"})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "bench: error: linear-probe C=-1 is not a positive number or auto; use e.g. --set C=auto (per budget, the "
        "default) or --set C=100"]
    assert not (tmp_path / "run" / "results.jsonl").exists()

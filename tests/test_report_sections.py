"""The report's explicit Runs (bench.report.runs) and its one ordered list of sections (bench.report.sections).

Guards against: the report guessing a filtered copy's run folders from module state (a list
subclass plus the last load matched by ``id()``), and sections wired by hand into the text board,
the formats and the site separately (a new one missing from some of them, or in another order).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from site_fixture import record, records, write_run

from bench.cli import main
from bench.errors import UserError
from bench.report import sections
from bench.report import tables as leaderboard
from bench.report.runs import Runs, load


def episode(seed: int, mean: float, cell: str = "c") -> dict:
    return {"schema": 2, "cell_id": f"{cell}{seed}", "status": "ok", "task": "digits", "encoder": "pixels",
            "strategy": "knn", "config_id": "default", "seed": seed, "budget": "5-way 1-shot", "wall_s": 2.0,
            "versions": {"git_commit": "abc1234"},
            "episodes": {"n_way": 5, "k_shot": 1, "q_query": 15, "mean": mean, "std": 0.0, "n": 10}}


def rank(tau: float) -> dict:
    return {"budget": "10/class", "correlations": [
        {"task": "mnist5k", "strategy": "linear-probe", "budget": "10/class", "estimator": "logme", "n": 3,
         "kendall_tau": tau, "weighted_tau": tau}]}


def run_folder(folder: Path, recs: list[dict], eps: list[dict] | None = None, tau: float | None = None) -> Path:
    write_run(folder, recs)
    if eps is not None:
        (folder / "episodes.jsonl").write_text("".join(json.dumps(e) + "\n" for e in eps))
    if tau is not None:
        (folder / "rank.json").write_text(json.dumps(rank(tau)))
    return folder


def test_runs_hold_the_latest_records_episodes_and_estimators_of_their_folders(tmp_path):
    retried = [record("mnist5k", "enc", "scratch", "1/class", 0, 0.1, status="failed"),
               record("mnist5k", "enc", "scratch", "1/class", 0, 0.3)]
    folder = run_folder(tmp_path / "alice", retried, [episode(0, 0.2), episode(0, 0.4), episode(1, 0.6)], tau=0.5)
    runs = load([folder])
    assert [(r["status"], r["metrics"].get("accuracy")) for r in runs.records] == [("ok", 0.3)]
    assert runs.records[0]["provenance"] == {"source": "alice"}
    assert [(e["seed"], e["episodes"]["mean"]) for e in runs.episodes] == [(0, 0.4), (1, 0.6)]
    assert [(e["run"], e["correlations"][0]["kendall_tau"]) for e in runs.estimators] == [("alice", 0.5)]
    assert runs.dirs == (folder,)
    board = leaderboard.aggregate(runs)
    assert board["episodes"][0]["mean"] == pytest.approx(0.5) and board["episodes"][0]["n"] == 20
    assert board["estimator_correlations"][0]["run"] == "alice"
    with pytest.raises(UserError, match="no results found"):
        load([tmp_path / "nothing-here"])


def test_filtering_returns_new_runs_and_keeps_the_folders_sections(tmp_path):
    runs = load([run_folder(tmp_path / "a", records(), [episode(0, 0.5)], tau=0.5)])
    only = runs.where(lambda r: r["task"] == "shift-task")
    assert {r["task"] for r in only.records} == {"shift-task"} and len(only.records) == 18
    assert len(runs.records) == len(records())  # the original is untouched
    assert only.episodes == runs.episodes and only.estimators == runs.estimators and only.dirs == runs.dirs
    board = leaderboard.aggregate(only)
    assert list(board["tasks"]) == ["shift-task"] and len(board["episodes"]) == 1


def test_two_interleaved_loads_are_independent(tmp_path):
    a = load([run_folder(tmp_path / "a", records()[:3], [episode(0, 0.25)], tau=0.5)])
    b = load([run_folder(tmp_path / "b", records()[3:6], tau=-0.5)])
    # a filtered copy of the first load keeps its own sections after the second load
    board_a = leaderboard.aggregate(a.where(lambda r: True))
    board_b = leaderboard.aggregate(b)
    assert board_a["episodes"][0]["mean"] == 0.25 and "episodes" not in board_b
    assert [e["correlations"][0]["kendall_tau"] for e in board_a["estimator_correlations"]] == [0.5]
    assert [e["correlations"][0]["kendall_tau"] for e in board_b["estimator_correlations"]] == [-0.5]
    # records without folders have no sections, whatever was loaded before
    assert set(leaderboard.aggregate(list(a.records))) == {"tasks", "failed", "skipped", "warnings", "streams"}
    assert Runs.of(a.records).episodes == ()


def toy_section(label: str) -> sections.Section:
    def collect(runs: Runs) -> dict:
        return {f"toy_{label}": {"records": len(runs.records)}}

    def tables(board: dict) -> list:
        return [(f"Toy section {label}", ["records"], [[str(board[f"toy_{label}"]["records"])]])]

    return sections.Section(f"toy {label}", collect, tables)


def test_a_registered_section_reaches_the_text_board_json_and_the_site(tmp_path, monkeypatch, capsys):
    run = run_folder(tmp_path / "run", records(), [episode(0, 0.5)])
    monkeypatch.setattr(sections, "SECTIONS", [*sections.SECTIONS, toy_section("x")])
    assert main(["leaderboard", str(run)]) == 0
    text = capsys.readouterr().out
    assert "### Toy section x\n\n| records   |\n|-----------|\n| 63        |" in text
    assert text.index("Few-shot episodes") < text.index("Toy section x")
    assert main(["leaderboard", str(run), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["toy_x"] == {"records": len(records())}
    assert main(["publish", str(run), "--site", str(tmp_path / "site")]) == 0
    index = (tmp_path / "site" / "index.html").read_text()
    assert "Toy section x" in index and index.index("Few-shot episodes") < index.index("Toy section x")
    assert json.loads((tmp_path / "site" / "results.json").read_text())["board"]["toy_x"] == {"records": 63}
    assert not any("Toy section" in p.read_text() for p in (tmp_path / "site").glob("task-*.html"))


def test_the_section_list_order_is_the_output_order(tmp_path, monkeypatch):
    runs = load([run_folder(tmp_path / "run", records(), [episode(0, 0.5)], tau=0.5)])
    default = [t[0].split(":")[0] for t in leaderboard.tables(leaderboard.aggregate(runs))]
    assert default.index("Few-shot episodes") < default.index("Transferability estimators vs measured accuracy (run)")
    budget, *others = sections.SECTIONS
    monkeypatch.setattr(sections, "SECTIONS", [toy_section("b"), *reversed(others), budget, toy_section("a")])
    text = leaderboard.render(leaderboard.aggregate(runs))
    titles = [line[4:].split(":")[0] for line in text.splitlines() if line.startswith("### ")]
    assert titles[0] == "Toy section b" and titles[-1] == "Toy section a"
    assert titles[1].startswith("Transferability estimators") and titles[2] == "Few-shot episodes"
    assert titles[3] == "mnist5k"  # the budget tables follow, then toy a

"""Every flag a record carries is shown wherever its row is, with one legend, and reaches the index (issue 23)."""

from __future__ import annotations

import re

from site_fixture import records, write_run

from bench.report import tables as leaderboard
from bench.report.flags import MEANINGS, UNKNOWN, board_flags, meaning
from bench.report.site import publish


def _flagged() -> list[dict]:
    recs = records()
    for r in recs:
        if r["task"] == "mnist5k" and r["strategy"] == "knn" and r["seed"] == 1:
            r["flags"] = ["collapsed"]
        if r["task"] == "shift-task" and r["strategy"] == "finetune":
            r["flags"] = ["from-a-plugin"]
    stream = {**records()[0], "record_type": "stream", "task": "split-x", "strategy": "continual:finetune",
              "cell_id": "s0", "config_digest": "s", "flags": ["chance-level"],
              "stream": {"name": "split-x", "tasks": ["a"]},
              "metrics": {"accuracy": 0.5, "acc": 0.5, "bwt": 0.0, "fwt": 0.0, "R": [[0.5]]}}
    return [*recs, stream]


def test_meanings_cover_the_vocabulary_and_unknown_flags_keep_their_name():
    vocabulary = ("collapsed", "chance-level", "baseline-at-chance", "weak-source-model", "capped", "dirty",
                  "no-commit")
    for flag in vocabulary:
        assert meaning(flag) == MEANINGS[flag] != UNKNOWN
    assert meaning("declared-overlap:mnist") == MEANINGS["declared-overlap"]
    assert meaning("from-a-plugin") == UNKNOWN


def test_a_flag_raised_by_any_section_reaches_the_board_list():
    board = leaderboard.aggregate(_flagged())
    assert {(f["section"], f["where"], f["row"], tuple(f["flags"])) for f in board_flags(board)} == {
        ("budget tables", "mnist5k", "enc / knn", ("collapsed",)),
        ("budget tables", "shift-task", "enc / finetune", ("from-a-plugin",)),
        ("streams", "split-x", "enc / finetune", ("chance-level",)),
        # the baselines' annotation (bench.report.baselines) marks the fixture's probe at chance
        ("budget tables", "mnist5k", "<img src=x onerror=alert(1)> / linear-probe", ("chance-level",))}
    text = leaderboard.render(board)
    assert "| enc [collapsed] | knn" in text and "collapsed: " + MEANINGS["collapsed"] in text
    assert "| finetune [chance-level] |" in text


def test_a_collapsed_record_is_marked_on_the_index_and_its_task_page_with_the_legend(tmp_path):
    site = publish([write_run(tmp_path / "run", _flagged())], tmp_path / "site")
    index = (site / "index.html").read_text()
    page = next(site.glob("task-mnist5k-*.html")).read_text()
    other = next(site.glob("task-shift-task-*.html")).read_text()
    knn_line = re.search(r'<tr data-task="mnist5k" data-encoder="enc" data-strategy="knn".*?</tr>', index, re.S)
    assert knn_line and "[collapsed]" in knn_line.group()
    for html in (index, page):
        assert "<dt>collapsed</dt><dd>" + MEANINGS["collapsed"] + "</dd>" in html
    assert "<dt>chance-level</dt>" in index and "<dt>from-a-plugin</dt><dd>" + UNKNOWN in index
    assert "[collapsed]" not in other and "<dt>from-a-plugin</dt>" in other
    assert "[collapsed]" in page.split("Rows in detail")[0].split("Ranking by")[1]  # the rank table too

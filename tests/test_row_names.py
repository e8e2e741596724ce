"""Row names say in words what a configuration changes from its strategy's registered default (issue 23)."""

from __future__ import annotations

from site_fixture import records, write_run

from bench.report import names
from bench.report.aggregate import aggregate
from bench.report.site import publish


def test_changes_from_the_default_in_words():
    defaults = {"lr": 0.001, "critic_lr": 0.001, "critic_optimizer": "adam", "freeze_bn": True}
    assert names.changes(dict(defaults), defaults) == []
    assert names.changes({"lr": 0.001, "freeze_bn": True}, defaults) == ["no critic lr", "no critic optimizer"]
    assert names.changes({**defaults, "lr": 0.01, "freeze_bn": False, "tune": True}, defaults) == [
        "frozen BN off", "lr 0.01"]
    assert names.changes({**defaults, "extra": [1, 2]}, defaults) == ["extra 1+2 (not a current option)"]


def _two_configs() -> list[dict]:
    recs = [r for r in records() if r["task"] == "mnist5k" and r["strategy"] == "finetune"]
    changed = [{**r, "config": {"lr": 0.01}, "config_digest": "other", "cell_id": r["cell_id"] + "x"} for r in recs]
    return recs + changed


def test_rows_are_named_against_the_registered_default_and_marked():
    rows = aggregate(_two_configs(), {"finetune": {"lr": 0.001}})["tasks"]["mnist5k"]["rows"]
    assert sorted((r["strategy"], r["default"]) for r in rows) == [("finetune", True), ("finetune (lr 0.01)", False)]
    # an option neither configuration recorded is shared, so it does not name them; the mark still says
    rows = aggregate(_two_configs(), {"finetune": {"lr": 0.001, "epochs": 5}})["tasks"]["mnist5k"]["rows"]
    assert [r["default"] for r in rows] == [False, False] and all(r["strategy"].startswith("finetune [") for r in rows)
    # without a registered default the configurations are named as they differ, default unknown
    rows = aggregate(_two_configs())["tasks"]["mnist5k"]["rows"]
    assert {r["default"] for r in rows} == {None} and all(r["strategy"].startswith("finetune [") for r in rows)


def test_the_site_marks_the_default_and_shows_the_full_config_one_click_away(tmp_path, monkeypatch):
    monkeypatch.setattr(names, "registered_defaults", lambda: {"finetune": {"lr": 0.001}})
    site = publish([write_run(tmp_path / "run", _two_configs())], tmp_path / "site")
    index = (site / "index.html").read_text()
    assert 'data-strategy="finetune (lr 0.01)"' in index
    assert '<summary class="default-mark">default</summary><table><tbody><tr><td class="t">lr</td>' \
           '<td class="t">0.001</td>' in index
    assert ('<summary>changed from the default</summary><table><tbody><tr><td class="t">lr</td>'
            '<td class="t">0.01') in index
    page = next(site.glob("task-mnist5k-*.html")).read_text()
    assert page.count('<summary class="default-mark">default</summary>') == 3  # a rank table per budget

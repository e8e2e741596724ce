"""`bench publish` refuses dirty and commit-less records unless --allow-dirty, and `bench validate SITE`
recomputes a published site's numbers from the files it publishes (issue 23)."""

from __future__ import annotations

import json

from site_fixture import XSS, records, write_run

from bench.cli import main
from bench.report.flags import MEANINGS
from bench.transferability.estimators import correlate


def _mixed() -> list[dict]:
    recs = records()
    for r in recs[:3]:
        r["versions"] = {**r["versions"], "git_commit": "abc1234-dirty"}
    for r in recs[3:5]:
        r["versions"] = {k: v for k, v in r["versions"].items() if k != "git_commit"}
    return recs


def _rank(recs: list[dict]) -> dict:
    scores = {("enc", "mnist5k"): {"logme": 0.9, "knn": 0.2}, (XSS, "mnist5k"): {"logme": 0.1, "knn": 0.8}}
    return {"budget": "5/class", "seeds": 3, "correlations": correlate(scores, recs),
            "scores": [{"task": t, "encoder": e, **s} for (e, t), s in scores.items()]}


def test_publish_refuses_dirty_and_commitless_records_naming_how_many(tmp_path, capsys):
    run = write_run(tmp_path / "run", _mixed())
    assert main(["publish", str(run), "--site", str(tmp_path / "site")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert "3 record(s) from a tree with uncommitted changes (-dirty) and 2 record(s) without a source commit" in err
    assert "--allow-dirty" in err
    assert not (tmp_path / "site" / "index.html").exists()


def test_allow_dirty_flags_the_records_on_every_page_that_shows_them(tmp_path):
    run = write_run(tmp_path / "run", _mixed())
    site = tmp_path / "site"
    assert main(["publish", str(run), "--site", str(site), "--allow-dirty"]) == 0
    published = [json.loads(line) for line in (site / "results.jsonl").read_text().splitlines()]
    assert sum("dirty" in r["flags"] for r in published) == 3
    assert sum("no-commit" in r["flags"] for r in published) == 2
    assert sum(bool(r["flags"]) for r in published) == 5
    index = (site / "index.html").read_text()
    page = next(p for p in site.glob("task-mnist5k-*.html")).read_text()
    for html in (index, page):
        assert "enc [dirty, no-commit]" in html or ">[dirty, no-commit]<" in html  # the scratch row has both
        assert MEANINGS["dirty"] in html and MEANINGS["no-commit"] in html


def test_the_published_folder_recomputes_and_a_changed_number_is_named(tmp_path, capsys):
    recs = records()
    run = write_run(tmp_path / "run", recs)
    (run / "rank.json").write_text(json.dumps(_rank(recs)))
    (run / "episodes.jsonl").write_text(json.dumps(
        {"schema": 2, "cell_id": "e0", "status": "ok", "task": "mnist5k", "encoder": "enc", "strategy": "knn",
         "config_id": "default", "seed": 0, "budget": "5-way 1-shot", "versions": {"git_commit": "abc1234"},
         "episodes": {"n_way": 5, "k_shot": 1, "q_query": 15, "mean": 0.5, "std": 0.1, "n": 10}}) + "\n")
    site = tmp_path / "site"
    assert main(["publish", str(run), "--site", str(site)]) == 0
    assert len((site / "episodes.jsonl").read_text().splitlines()) == 1
    assert json.loads((site / "estimators.jsonl").read_text())["scores"][0]["logme"] == 0.9
    capsys.readouterr()
    assert main(["validate", str(site)]) == 0
    assert "ok: every number" in capsys.readouterr().out
    # a tampered score and a tampered tau: both named, exit 1
    data = json.loads((site / "results.json").read_text())
    cell = data["board"]["tasks"]["mnist5k"]["rows"][0]["budgets"]["1/class"]
    cell["accuracy"]["mean"] += 0.01
    data["board"]["estimator_correlations"][0]["correlations"][0]["kendall_tau"] = 0.123
    (site / "results.json").write_text(json.dumps(data))
    assert main(["validate", str(site)]) == 1
    out = capsys.readouterr().out
    assert "board.tasks.mnist5k.rows[0].budgets.1/class.accuracy.mean: published" in out
    assert "kendall_tau: published 0.123, recomputed" in out
    assert "2 number(s)" in out


def test_a_rank_measured_on_an_unpublished_run_and_the_validator_study_recompute_from_the_site(tmp_path, capsys):
    """rank.json keeps the accuracies it correlated with (``measured``), so its taus recompute where the
    run it was measured against is not published; the study reports are copied into the site."""
    from bench.transferability.estimators import measured_rows
    from tests.test_validator_study import _report

    recs = records()
    rank = {**_rank(recs), "measured": measured_rows(recs)}
    run = write_run(tmp_path / "run", [r for r in recs if r["strategy"] != "knn"])  # not all the rank's records
    (run / "rank.json").write_text(json.dumps(rank))
    (run / "validator-study").mkdir()
    (run / "validator-study" / "dann.json").write_text(json.dumps(_report("dann", "a->b", [0.3, 0.6, 0.5],
                                                                          {"iwv": [0.1, 0.2, 0.3]})))
    site = tmp_path / "site"
    assert main(["publish", str(run), "--site", str(site)]) == 0
    assert len(list((site / "validator-study").glob("*.json"))) == 1
    assert json.loads((site / "results.json").read_text())["board"]["validator_study"]
    capsys.readouterr()
    assert main(["validate", str(site)]) == 0, capsys.readouterr().out
    # the taus recompute from the published accuracies: reverse the encoders' order and they no longer do
    published = json.loads((site / "estimators.jsonl").read_text())
    for m in published["measured"]:
        m["accuracy"] = 0.0 if m["encoder"] == "enc" else 1.0
    (site / "estimators.jsonl").write_text(json.dumps(published) + "\n")
    assert main(["validate", str(site)]) == 1
    assert "kendall_tau: published" in capsys.readouterr().out

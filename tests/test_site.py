"""`bench publish --site` and `bench validate` (issue 14), without a browser.

Guards against: the old single page (no task pages, no results.json, no ranks, names put into
HTML unescaped by string formatting), publishing folders whose manifests, seeds or failures do
not hold up, and merged folders losing where each record came from.
"""

from __future__ import annotations

import json

from site_fixture import XSS, record, records, write_run

from bench.cli import main
from bench.report import validate


def test_publish_writes_pages_plots_and_machine_readable_results(tmp_path, capsys):
    run = write_run(tmp_path / "alice")
    assert main(["publish", str(run), "--site", str(tmp_path / "site")]) == 0
    site = tmp_path / "site"
    names = {p.name for p in site.iterdir()}
    assert {"index.html", "results.json", "results.jsonl", "curves.png", "shift.png", "cost.png"} <= names
    assert len([n for n in names if n.startswith("task-")]) == 2
    data = json.loads((site / "results.json").read_text())
    assert data["ranking"]["overall"]["rows"][0]["row"] == "enc / finetune"
    assert "Holm" in data["ranking"]["test"] and data["validation"] == []
    lines = [json.loads(line) for line in (site / "results.jsonl").read_text().splitlines()]
    assert len(lines) == len(records()) and {r["provenance"]["source"] for r in lines} == {"alice"}
    index = (site / "index.html").read_text()
    assert "Holm" in index and "paired t-test" in index and "little power" in index
    # escaped everywhere: the plugin's text never becomes a tag, on any page
    for page in site.glob("*.html"):
        html = page.read_text()
        assert "<img src=x" not in html, page.name
    assert "&lt;img src=x onerror=alert(1)&gt;" in index
    assert "http://" not in index and "https://" not in index  # nothing loaded from the network


def test_publish_merges_folders_keeping_provenance(tmp_path):
    recs = records()
    alice = [r for r in recs if r["strategy"] != "knn"]
    bob = [r for r in recs if r["strategy"] == "knn"]
    assert main(["publish", str(write_run(tmp_path / "alice", alice)), str(write_run(tmp_path / "bob", bob)),
                 "--site", str(tmp_path / "site")]) == 0
    lines = [json.loads(line) for line in (tmp_path / "site" / "results.jsonl").read_text().splitlines()]
    src = {r["strategy"]: r["provenance"]["source"] for r in lines}
    assert src["knn"] == "bob" and src["finetune"] == "alice"
    task_page = next((tmp_path / "site").glob("task-mnist5k-*.html")).read_text()
    assert "run folder" in task_page and ">bob<" in task_page


def test_validate_finds_hidden_failures_foreign_manifests_and_bad_records(tmp_path, capsys):
    recs = records()
    assert main(["validate", str(write_run(tmp_path / "good", recs))]) == 0
    assert capsys.readouterr().out.startswith("ok:")
    dropped = [r for r in recs if not (r["task"] == "mnist5k" and r["strategy"] == "finetune" and r["seed"] == 2
                                       and r["budget"] == "5/class")]
    foreign = [dict(r, manifest_sha256="other") if r["strategy"] == "knn" and r["seed"] == 0
               and r["budget"] == "1/class" else r for r in dropped]
    silent = record("mnist5k", "enc", "finetune", "5/class", 2, 0.0, status="failed")
    silent["error"] = ""
    broken = {k: v for k, v in recs[0].items() if k != "config_digest"}
    write_run(tmp_path / "bad", [*foreign, silent, broken])
    assert main(["validate", str(tmp_path / "bad")]) == 1
    out = capsys.readouterr().out
    assert "a failed record that does not say why" in out
    assert "missing field(s) config_digest for schema 2" in out
    assert "mnist5k 1/class seed 0: label manifests differ" in out
    problems = validate.problems([write_run(tmp_path / "gap", dropped)])
    assert problems == ["mnist5k enc finetune 5/class: no record for seed(s) 2 (run them, or keep their failed "
                        "records: a missing seed hides a failure)"]
    # against the published records: a submission drawn on other manifests is refused
    other = [dict(r, manifest_sha256="x" + r["manifest_sha256"]) for r in recs if r["strategy"] == "knn"]
    write_run(tmp_path / "published", recs)
    assert main(["validate", str(write_run(tmp_path / "carol", other)), "--against", str(tmp_path / "published")]) == 1
    assert "label manifests differ" in capsys.readouterr().out


def test_publish_refuses_invalid_folders_with_one_line(tmp_path, capsys):
    recs = [r for r in records() if not (r["strategy"] == "knn" and r["seed"] == 1)]
    run = write_run(tmp_path / "run", recs)
    assert main(["publish", str(run), "--site", str(tmp_path / "site")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "no record for seed(s) 1" in err and "--allow-invalid" in err
    assert main(["publish", str(run), "--site", str(tmp_path / "site"), "--allow-invalid"]) == 0
    assert "validation: mnist5k enc knn 1/class" in (tmp_path / "site" / "index.html").read_text()
    assert XSS not in (tmp_path / "site" / "index.html").read_text()


def test_publish_shows_continual_results_on_the_index_not_as_task_rows(tmp_path):
    """Guards against the site aggregating stream records (bench run --stream) as an ordinary task
    row, and against the continual/few-shot/estimator sections missing from the published site or
    repeated on every task page."""
    from bench.continual.spec import gem_metrics

    R, baseline = [[0.9, 0.5], [0.6, 0.9]], [0.5, 0.5]
    stream = [{"schema": 2, "record_type": "stream", "encoder": "enc", "strategy": "continual:finetune",
               "task": "split-x", "budget": "20/class", "seed": seed, "config_id": "default", "status": "ok",
               "versions": {"git_commit": "abc1234"},
               "stream": {"name": "split-x", "scenario": "task", "tasks": ["a", "b"]},
               "metrics": {**gem_metrics(R, baseline), "R": R, "baseline": baseline}} for seed in (0, 1)]
    run = write_run(tmp_path / "alice", records() + stream)
    assert main(["publish", str(run), "--site", str(tmp_path / "site"), "--allow-invalid"]) == 0
    site = tmp_path / "site"
    index = (site / "index.html").read_text()
    assert "Continual learning: split-x" in index and (site / "continual.png").exists()
    assert "split-x" not in json.loads((site / "results.json").read_text())["board"]["tasks"]
    assert len(list(site.glob("task-*.html"))) == 2  # no page for the stream
    for page in site.glob("task-*.html"):
        assert "Continual learning" not in page.read_text(), page.name


def test_the_index_orders_charts_classic_first_then_by_plotted_points():
    """Same-domain before shifted; the task with scratch, linear probe and fine-tune curves first; then
    the chart with more points; the name breaks ties."""
    from bench.report.site import _figure_order

    def task(strategies, shifted=False):
        return {"shifted": shifted, "rows": [{"strategy": s} for s in strategies]}

    def fig(n):
        return [{"meta": {"points": [[0, 0]] * n}}]

    tasks = {"b-one-point": (task(["finetune"]), fig(1)), "a-one-point": (task(["finetune"]), fig(1)),
             "fashion": (task(["linear-probe", "finetune"]), fig(25)),
             "mnist5k": (task(["scratch", "linear-probe", "finetune"]), fig(15)),
             "x->y": (task(["scratch", "linear-probe", "finetune"], shifted=True), fig(40))}
    order = sorted(tasks, key=lambda n: _figure_order(n, *tasks[n]))
    assert order == ["mnist5k", "fashion", "a-one-point", "b-one-point", "x->y"]

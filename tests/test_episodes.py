"""Few-shot episodes (``bench run --episodes``), their CI, the leaderboard sections and ``rank.json``."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from bench.cli import main
from bench.episodes.classes import class_split
from bench.episodes.spec import (
    EpisodeSpec,
    mean_ci,
    meta_train,
    parse_episodes,
    run_episode,
    sample_episodes,
    summarise,
)
from bench.errors import UserError
from bench.report import episodes as board_episodes
from bench.report import estimators
from bench.report import tables as leaderboard
from bench.report.runs import load
from bench.strategies import Fitted
from bench.tasks import ArraySplit, TaskData
from bench.views import ProtocolError

PIXELS = ["--tasks", "digits", "--encoders", "pixels", "--seeds", "1", "--no-progress", "--forgetting", "off",
          "--no-contamination"]


def labels_ids(per_class=(30, 30, 30, 30, 30, 30, 4)):
    labels = np.concatenate([np.full(n, c) for c, n in enumerate(per_class)])
    return labels, [f"item{i}" for i in range(len(labels))]


def test_episodes_draw_n_distinct_classes_k_support_q_query_disjoint():
    """Guards the sampling protocol: N distinct eligible classes, K+Q items of each, support and
    query disjoint, class-ordered; a class with fewer than K+Q items (class 6) is never drawn."""
    labels, ids = labels_ids()
    eps = sample_episodes(labels, ids, EpisodeSpec(5, 2, 3, 50), seed=0)
    assert eps.support.shape == (50, 10) and eps.query.shape == (50, 15) and eps.classes.shape == (50, 5)
    for e in range(50):
        assert len(set(eps.classes[e])) == 5 and 6 not in eps.classes[e]
        assert not set(eps.support[e]) & set(eps.query[e])
        assert list(labels[eps.support[e]]) == [c for c in eps.classes[e] for _ in range(2)]
        assert list(labels[eps.query[e]]) == [c for c in eps.classes[e] for _ in range(3)]
    assert len({tuple(c) for c in eps.classes}) > 1  # the classes change between episodes


def test_episodes_are_seeded_and_content_addressed():
    """Guards pairing: the same (labels, ids, spec, seed) gives the same episodes (every strategy and
    encoder of a run sees them); another seed or other content gives other episodes."""
    labels, ids = labels_ids()
    a = sample_episodes(labels, ids, EpisodeSpec(5, 1, 5, 20), seed=3)
    b = sample_episodes(labels.copy(), list(ids), EpisodeSpec(5, 1, 5, 20), seed=3)
    assert a.digest == b.digest and np.array_equal(a.support, b.support) and np.array_equal(a.query, b.query)
    assert sample_episodes(labels, ids, EpisodeSpec(5, 1, 5, 20), seed=4).digest != a.digest
    assert sample_episodes(labels, [i + "x" for i in ids], EpisodeSpec(5, 1, 5, 20), seed=3).digest != a.digest


def test_ci_is_1_96_std_over_sqrt_e_and_seeds_pool_exactly():
    """Guards the CI arithmetic (ddof=0 std, as Chen et al.) and the board's pooling of seeds."""
    mean, ci = mean_ci([1.0, 0.0, 1.0, 0.0])
    assert mean == 0.5 and ci == pytest.approx(1.96 * 0.5 / 2)
    a, b = [0.2, 0.4, 0.9], [0.6, 0.8]
    pooled = board_episodes.pooled([summarise(a), summarise(b)])
    m, c = mean_ci(a + b)
    assert pooled["n"] == 5 and pooled["mean"] == pytest.approx(m) and pooled["ci95"] == pytest.approx(c, abs=1e-6)
    s = summarise([0.5, 0.75])
    assert s["std"] == 0.125 and s["min"] == 0.5 and s["max"] == 0.75 and len(s["accuracies_sha256"]) == 64


@pytest.mark.parametrize("text", ["5:1", "5w1s15q600", "5:1:15:x", "5:1:15:600:2", "", "1:1:15:600", "5:0:15:600"])
def test_a_bad_spec_is_one_line(text):
    with pytest.raises(UserError, match="--episodes"):
        parse_episodes(text)


def test_spec_parses_and_labels():
    spec = parse_episodes(" 5:1:15:600 ")
    assert spec == EpisodeSpec(5, 1, 15, 600) and spec.label == "5-way 1-shot 15-query x600"


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def test_cli_mistakes_exit_2_with_one_line(tmp_path, capsys):
    """`--episodes 5:1` and N above the test classes are one line, exit 2, before any work."""
    assert main(["run", "--episodes", "5:1", *PIXELS, "--out", str(tmp_path / "a")]) == 2
    assert "--episodes '5:1': expected N-way:K-shot:Q-query:E" in one_line(capsys)
    assert main(["run", "--episodes", "11:1:15:10", *PIXELS, "--out", str(tmp_path / "b")]) == 2
    err = one_line(capsys)
    assert "the test split of 'digits' has 5 novel classes with at least K+Q = 16 items, fewer than N = 11" in err
    assert main(["run", "--episodes", "5:1:15:10", "--tune", *PIXELS, "--strategies", "linear-probe",
                 "--out", str(tmp_path / "c")]) == 2
    assert "--tune does not apply to --episodes" in one_line(capsys)
    assert not (tmp_path / "b" / "episodes.jsonl").exists()


def test_run_pairs_strategies_on_the_same_episodes_and_resumes(tmp_path, capsys):
    """Guards the driver: one record per (encoder, task, strategy, spec, seed) in episodes.jsonl,
    every strategy on the same episodes (same digest), nothing in results.jsonl, and a second
    run appends nothing (resume by cell_id)."""
    out = tmp_path / "run"
    argv = ["run", "--episodes", "5:1:4:6", *PIXELS, "--strategies", "prototype,knn,linear-probe,finetune",
            "--out", str(out)]
    assert main(argv) == 0
    table = capsys.readouterr().out
    recs = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    by = {r["strategy"]: r for r in recs}
    assert by["finetune"]["status"] == "skipped"  # pixels has no pre-trained weights
    ok = [by[s] for s in ("prototype", "knn", "linear-probe")]
    assert all(r["status"] == "ok" and r["budget"] == "5-way 1-shot 4-query x6" for r in ok)
    assert len({r["episodes"]["episodes_sha256"] for r in ok}) == 1
    assert all(r["episodes"]["n"] == 6 and r["metrics"]["accuracy"] == r["episodes"]["mean"] for r in ok)
    # 1-shot: the nearest prototype is the nearest neighbour, so the two agree episode by episode
    assert by["prototype"]["episodes"]["accuracies_sha256"] == by["knn"]["episodes"]["accuracies_sha256"]
    assert not (out / "results.jsonl").exists()
    assert "Few-shot episodes" in table and "5-way 1-shot" in table
    assert main(argv) == 0
    assert len((out / "episodes.jsonl").read_text().splitlines()) == len(recs)
    board = leaderboard.aggregate(load([out]))  # a folder of episodes only
    assert {r["strategy"] for r in board["episodes"]} == {"prototype", "knn", "linear-probe"}


def toy_task(n_classes=6, per_class=10) -> TaskData:
    labels = np.repeat(np.arange(n_classes), per_class)
    images = np.zeros((len(labels), 4, 4, 3), dtype=np.uint8)
    split = ArraySplit([f"t{i}" for i in range(len(labels))], images, labels)
    train = ArraySplit([f"r{i}" for i in range(len(labels))], images.copy(), labels.copy())
    return TaskData(name="toy", classes=[f"c{i}" for i in range(n_classes)], train=train, test=split,
                    extra={"prompt_names": [f"name{i}" for i in range(n_classes)]})


def fake_features(split):
    # a feature that is the item's class label, so a correct strategy can be checked exactly
    return np.asarray(split.labels, dtype=np.float32)[:, None]


class Recorder:
    """Records what fit() sees; predicts the support label of the nearest support feature."""

    def __init__(self):
        self.seen = []

    def fit(self, ctx):
        x = ctx.features(ctx.labelled)
        self.seen.append({"labels": list(ctx.labelled.labels), "classes": ctx.classes, "extra": ctx.extra})
        y = np.asarray(ctx.labelled.labels)

        def predict(split):
            q = ctx.features(split)
            return y[np.abs(q - x.T).argmin(axis=1)]

        return Fitted(predict=predict, trainable_params=0, total_params=0)


def context():
    return {"config": {}, "seed": 0, "device": "cpu", "load_encoder": None, "encoder_meta": None,
            "progress": lambda m: None}


def test_support_is_relabelled_and_the_query_is_sealed():
    """Guards the sealed episode: support labels 0..N-1 in the episode's class order, per-class
    extra lists cut to the episode's classes, query labels hidden and its features only after fit."""
    task = toy_task()
    eps = sample_episodes(task.test.labels, task.test.ids, EpisodeSpec(3, 2, 2, 4), seed=0)
    rec = Recorder()
    acc, _ = run_episode(rec, task, eps, 1, fake_features, context())
    assert acc == 1.0
    seen = rec.seen[0]
    assert seen["labels"] == [0, 0, 1, 1, 2, 2]
    assert seen["classes"] == [f"c{c}" for c in eps.classes[1]]
    assert seen["extra"]["prompt_names"] == [f"name{c}" for c in eps.classes[1]]
    assert seen["extra"]["episode"]["index"] == 1

    class Peeker(Recorder):
        def fit(self, ctx):
            return Fitted(predict=lambda split: split.labels, trainable_params=0, total_params=0)

    with pytest.raises(ProtocolError):
        run_episode(Peeker(), task, eps, 0, fake_features, context())


def test_meta_training_hook_gets_the_base_classes_and_its_state_reaches_episodes():
    """Guards the ProtoNet/MAML hook: ``meta_train(ctx)`` sees the train split's base classes (3 of
    the 6); its return value is ``ctx.extra["meta_state"]`` in every episode."""
    task = toy_task()

    class Meta(Recorder):
        def meta_train(self, ctx):
            self.meta_seen = (len(ctx.labelled), ctx.num_classes)
            return {"trained": True}

    strategy = Meta()
    split = class_split(task, 0)
    state = meta_train(strategy, task, fake_features, context(), split, EpisodeSpec(2, 1, 1, 2))
    assert strategy.meta_seen == (30, 3) and state == {"trained": True}
    eps = sample_episodes(task.test.labels, task.test.ids, EpisodeSpec(2, 1, 1, 2), seed=0)
    run_episode(strategy, task, eps, 0, fake_features, context(), state)
    assert strategy.seen[0]["extra"]["meta_state"] == {"trained": True}
    assert meta_train(Recorder(), task, fake_features, context(), split, EpisodeSpec(2, 1, 1, 2)) is None


def rank_result(n: int) -> dict:
    return {"budget": "10/class", "seeds": 1, "scores": [], "correlations": [
        {"task": "mnist5k", "strategy": "linear-probe", "budget": "10/class", "estimator": e, "n": n,
         "kendall_tau": t, "weighted_tau": w} for e, t, w in (("logme", 0.6667, 0.8), ("knn", 1.0, 1.0))]}


def test_estimator_table_renders_taus_and_refuses_fewer_than_three_encoders(tmp_path):
    """Guards the table from a saved rank result: tau / weighted tau per estimator with 3+ encoders;
    with 2 the +-1 is meaningless and the row says so instead."""
    headers, rows = estimators.correlation_table(rank_result(3))
    assert headers == ["task", "strategy", "budget", "encoders", "LogME", "kNN"]
    assert rows == [["mnist5k", "linear-probe", "10/class", estimators.THREE, "+0.67 / +0.80", "+1.00 / +1.00"]]
    _, rows = estimators.correlation_table(rank_result(2))
    assert rows[0][4] == estimators.TOO_FEW and "+1.00" not in " ".join(rows[0])
    run = tmp_path / "run"
    run.mkdir()
    (run / "rank.json").write_text(json.dumps(rank_result(4)))
    text = leaderboard.render(leaderboard.aggregate(load([run])))
    assert "Transferability estimators vs measured accuracy (run)" in text and "+0.67 / +0.80" in text
    # such a folder validates and publishes (guards `bench publish` refusing it for lack of results.jsonl)
    from bench.cli import main
    from bench.report import validate

    assert validate.problems([run]) == []
    assert main(["publish", str(run), "--site", str(tmp_path / "site")]) == 0
    assert "+0.67 / +0.80" in (tmp_path / "site" / "index.html").read_text()


def test_episode_table_from_hand_made_records():
    """Guards the few-shot table: one row per (task, encoder, strategy, N-way K-shot), seeds pooled,
    failed records left out."""
    def rec(seed, accs, status="ok"):
        return {"task": "mnist5k", "encoder": "e0", "strategy": "knn", "config_id": "default", "seed": seed,
                "status": status, "wall_s": 1.0,
                "episodes": {"n_way": 5, "k_shot": 1, "q_query": 15, **summarise(accs)}}

    rows = board_episodes.episode_rows([rec(0, [0.5, 1.0]), rec(1, [0.5, 1.0]), rec(2, [0.0], "failed")])
    assert len(rows) == 1 and rows[0]["n"] == 4 and rows[0]["seeds"] == [0, 1]
    (title, headers, body), = board_episodes.tables({"episodes": rows})
    assert headers == ["encoder", "task", "strategy", "N-way K-shot", "accuracy %", "E"]
    ci = 100 * 1.96 * 0.25 / math.sqrt(4)
    assert body == [["e0", "mnist5k", "knn", "5-way 1-shot", f"75.00 ± {ci:.2f}", "4"]]

"""Transferability estimates (bench.transferability.estimators) and `bench rank`: each estimator against its
formula on hand examples, LogME against a slow reference written from the paper's equations, the
ordering of encoders whose class separation is planted, and the command."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest

from bench.cli import main
from bench.cli.rank import _source_logits
from bench.transferability.estimators import (
    correlate,
    hscore,
    knn_loo,
    leep,
    logme,
    nce,
    pseudo_source_probs,
    rank_correlation,
    score_all,
)


def planted(separation: float, seed: int = 0, classes: int = 5, per_class: int = 20, dim: int = 16):
    """Gaussian classes, unit noise, class means ``separation`` apart along random directions."""
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(classes, dim))
    means *= separation / np.linalg.norm(means, axis=1, keepdims=True)
    labels = np.repeat(np.arange(classes), per_class)
    return means[labels] + rng.normal(size=(len(labels), dim)), labels


def slow_logme(f: np.ndarray, y: np.ndarray, iterations: int = 500) -> float:
    """LogME from You et al. (2021) eq. 2-5 with explicit inverses and determinants: per one-hot
    column, alpha = gamma / m'm and beta = (n - gamma) / |Fm - y|^2 with A = alpha I + beta F'F,
    m = beta A^-1 F'y, gamma = sum beta s_i / (alpha + beta s_i); the evidence at the fixed point."""
    n, d = f.shape
    sig = np.linalg.eigvalsh(f.T @ f)
    out = []
    for c in np.unique(y):
        t = (y == c).astype(float)
        alpha, beta = 1.0, 1.0
        for _ in range(iterations):
            a = alpha * np.eye(d) + beta * f.T @ f
            m = beta * np.linalg.inv(a) @ f.T @ t
            gamma = np.sum(beta * sig / (alpha + beta * sig))
            alpha, beta = gamma / (m @ m), (n - gamma) / np.sum((f @ m - t) ** 2)
        a = alpha * np.eye(d) + beta * f.T @ f
        m = beta * np.linalg.inv(a) @ f.T @ t
        ev = (n / 2 * math.log(beta) + d / 2 * math.log(alpha) - n / 2 * math.log(2 * math.pi)
              - beta / 2 * np.sum((f @ m - t) ** 2) - alpha / 2 * m @ m - np.linalg.slogdet(a)[1] / 2)
        out.append(ev / n)
    return float(np.mean(out))


@pytest.mark.parametrize("n_per_class, dim", [(10, 6), (4, 30)])
def test_logme_matches_the_papers_equations(n_per_class, dim):
    """Guards the SVD shortcut (also with fewer items than dimensions) against the direct formula."""
    f, y = planted(1.5, seed=3, classes=3, per_class=n_per_class, dim=dim)
    assert logme(f, y) == pytest.approx(slow_logme(f, y), abs=1e-4)


def test_hscore_matches_its_formula_on_a_hand_example():
    """f = 1,3,5,7 with classes {1,3},{5,7}: var(f) = 5, var(E[f|y]) = 4, so H = 4/5."""
    f, y = np.array([[1.0], [3.0], [5.0], [7.0]]), np.array([0, 0, 1, 1])
    assert hscore(f, y, shrinkage=False) == pytest.approx(0.8)


def test_leep_on_a_hand_example():
    """theta = [[.8,.2],[.4,.6]], y = [0,1]: P(y|z) = [[2/3,1/4],[1/3,3/4]], both EEPs 7/12."""
    assert leep(np.array([[0.8, 0.2], [0.4, 0.6]]), np.array([0, 1])) == pytest.approx(math.log(7 / 12))


def test_nce_on_a_hand_example():
    """z = 0,0,1,1 and y = 0,1,1,1: H(Y|Z) = 1/2 log 2 (z=0 is a coin flip, z=1 is certain)."""
    assert nce(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1])) == pytest.approx(-0.5 * math.log(2))
    assert nce(np.array([5, 5, 9]), np.array([1, 1, 0])) == pytest.approx(0.0)


def test_knn_leave_one_out():
    """Two clean clusters: every held-out item finds its own class; one item in a class: None."""
    f = np.array([[1, 0.1], [1, 0.2], [1, 0.0], [0.1, 1], [0.0, 1], [0.2, 1]])
    assert knn_loo(f, np.array([0, 0, 0, 1, 1, 1])) == 1.0
    assert knn_loo(f, np.array([0, 0, 0, 1, 1, 2])) is None


def test_every_estimator_orders_planted_separations():
    """Three 'encoders' whose classes sit 1, 3 and 6 noise units apart: each estimator (LEEP and
    NCE through the pseudo-source mixture) scores them in that order."""
    scores = [score_all(*planted(s, seed=7), seed=0) for s in (1.0, 3.0, 6.0)]
    for est in ("logme", "leep", "nce", "hscore", "knn"):
        values = [s[est] for s in scores]
        assert values[0] < values[1] < values[2], (est, values)


def test_a_source_head_feeds_leep_and_nce():
    """With source logits the pseudo-source mixture is not used: LEEP equals leep(softmax(logits))."""
    f, y = planted(3.0, seed=1, classes=3, per_class=6, dim=4)
    encoder = SimpleNamespace(extra={"source_head": lambda t: t[:, :3] * 2.0})
    logits = _source_logits(encoder, f)
    assert logits is not None and logits.shape == (18, 3)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    got = score_all(f, y, seed=0, source_logits=logits)
    assert got["leep"] == pytest.approx(leep(probs, y))
    assert got["nce"] == pytest.approx(nce(probs.argmax(axis=1), y))
    assert _source_logits(SimpleNamespace(extra={}), f) is None


def test_pseudo_source_is_seeded():
    f, _ = planted(2.0, seed=2)
    assert np.allclose(pseudo_source_probs(f, 5, seed=4), pseudo_source_probs(f, 5, seed=4))


def test_rank_correlation_and_correlate():
    """Scores in the accuracy order give tau 1, reversed -1; correlate() groups run records by
    (task, strategy, budget) and averages seeds, ignoring failed cells and groups with one encoder."""
    acc = {"a": 0.5, "b": 0.7, "c": 0.9}
    assert rank_correlation({"a": 1, "b": 2, "c": 3}, acc) == {"n": 3, "kendall_tau": 1.0, "weighted_tau": 1.0}
    assert rank_correlation({"a": 3, "b": 2, "c": 1}, acc)["kendall_tau"] == -1.0
    assert rank_correlation({"a": 1, "b": None}, acc)["kendall_tau"] is None
    recs = [{"status": "ok", "encoder": e, "task": "t", "strategy": "linear-probe", "budget": "10/class",
             "seed": s, "metrics": {"accuracy": a + 0.01 * s}} for e, a in acc.items() for s in (0, 1)]
    recs.append({"status": "failed", "encoder": "a", "task": "t", "strategy": "linear-probe", "budget": "10/class",
                 "seed": 2, "metrics": {"accuracy": 1.0}})
    recs.append({"status": "ok", "encoder": "a", "task": "t", "strategy": "scratch", "budget": "10/class",
                 "seed": 0, "metrics": {"accuracy": 0.3}})  # one encoder: no order, no row
    scores = {(e, "t"): {"logme": v, "knn": -v} for e, v in {"a": 0.1, "b": 0.2, "c": 0.3}.items()}
    rows = {r["estimator"]: r for r in correlate(scores, recs)}
    assert rows["logme"]["kendall_tau"] == 1.0 and rows["knn"]["kendall_tau"] == -1.0
    assert rows["logme"]["n"] == 3 and set(rows) == {"logme", "knn"}
    assert {r["strategy"] for r in correlate(scores, recs)} == {"linear-probe"}


@pytest.fixture(autouse=False)
def toy(with_plugins, monkeypatch):
    monkeypatch.setenv("BENCH_DISABLE_PLUGINS", "broken")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def test_bench_rank_prints_a_row_per_encoder(toy, capsys, tmp_path):
    argv = ["rank", "--tasks", "toy-blobs", "--encoders", "toy-cnn,pixels", "--budget", "5", "--device", "cpu"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("toy-blobs")]
    assert [r.split()[1] for r in rows] == ["toy-cnn", "pixels"], out
    recs = [{"status": "ok", "encoder": e, "task": "toy-blobs", "strategy": "toy-centroid", "budget": "5/class",
             "seed": 0, "metrics": {"accuracy": a}} for e, a in (("toy-cnn", 0.6), ("pixels", 0.9))]
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    assert main([*argv, "--json", "--against", str(tmp_path)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["budget"] == "5/class" and [r["encoder"] for r in report["scores"]] == ["toy-cnn", "pixels"]
    assert {c["estimator"] for c in report["correlations"]} <= {"logme", "leep", "nce", "hscore", "knn"}
    assert all(c["n"] == 2 and c["strategy"] == "toy-centroid" for c in report["correlations"])
    # the leaderboard's estimator table reads the result saved in the run folder
    saved = json.loads((tmp_path / "rank.json").read_text())
    assert saved["correlations"] == report["correlations"] and saved["budget"] == "5/class"


def test_bench_rank_against_an_unwritable_run_is_one_line(toy, capsys, tmp_path, monkeypatch):
    """Guards the rank.json write: a folder that cannot take it is one line naming the path."""
    import bench.cli.rank as rank

    monkeypatch.setattr(rank, "score", lambda args: ([], "5/class"))
    (tmp_path / "results.jsonl").write_text("")
    (tmp_path / "rank.json").mkdir()  # os.replace onto a folder fails
    assert main(["rank", "--tasks", "toy-blobs", "--encoders", "toy-cnn", "--against", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot write" in err and "rank.json" in err


@pytest.mark.parametrize("argv, expected", [
    (["--encoders", "toy-cnnn"], "unknown encoder 'toy-cnnn'"),
    (["--encoders", "toy-cnn", "--budget", "full"], "--budget 'full': give one budget smaller than the pool"),
    (["--encoders", "toy-cnn", "--against", "/nonexistent"], "no results found at '/nonexistent/results.jsonl'"),
])
def test_bench_rank_user_errors(toy, capsys, argv, expected):
    assert main(["rank", "--tasks", "toy-blobs", "--budget", "5", "--device", "cpu", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("bench: error: ") and expected in err[0], err

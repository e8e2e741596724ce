"""The README's and docs' sentences that compare two published numbers agree with the published records.

Each registered claim names the sentence, the task and the two rows; the test recomputes the
paired per-seed AULC difference the board uses (:func:`bench.report.ranking.paired_aulc`) from
``leaderboard/results.jsonl`` and checks the numbers the sentence quotes and its verb: "beat(s)" only
where the 95% interval excludes zero, "within noise" only where it does not. A sentence that says
"beat" next to two numbers and is not registered here fails the last test.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.report import ranking
from bench.report import tables as leaderboard
from bench.report.runs import load

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "leaderboard" / "results.jsonl"

#: (file, a unique fragment of the sentence, task, row a, row b): the sentence compares a with b
CLAIMS = [
    ("README.md", "Raw pixels and the frozen ImageNet features are within noise", "mnist5k",
     ("pixels", "linear-probe"), ("efficientnet-lite0", "linear-probe")),
    ("README.md", "fine-tuning is what transfers (AULC", "mnist5k",
     ("efficientnet-lite0", "finetune"), ("efficientnet-lite0", "linear-probe")),
]


def _sentence(text: str, fragment: str) -> str:
    flat = " ".join(text.split())
    start = flat.index(" ".join(fragment.split()))
    end = flat.find(". ", start)
    return flat[start:end if end > 0 else None]


@pytest.fixture(scope="module")
def board():
    if not RESULTS.exists():
        pytest.skip(f"no published records at {RESULTS}")
    return leaderboard.aggregate(load([RESULTS]))


@pytest.mark.parametrize(("file", "fragment", "task", "a", "b"), CLAIMS, ids=[c[1][:30] for c in CLAIMS])
def test_a_published_comparison_quotes_the_records_and_the_paired_test(board, file, fragment, task, a, b):
    sentence = _sentence((ROOT / file).read_text(encoding="utf-8"), fragment)
    t = board["tasks"][task]
    rows = {(r["encoder"], r["strategy"]): r for r in t["rows"]}
    d = ranking.paired_aulc(t, rows[a], rows[b])
    assert d is not None and d["seeds"] >= 2
    aulc_a = ranking.aulc(ranking.curve(t, rows[a], ranking.primary_metric(t)))
    aulc_b = ranking.aulc(ranking.curve(t, rows[b], ranking.primary_metric(t)))
    assert f"AULC {100 * aulc_a:.1f} vs" in sentence and f"{100 * aulc_b:.1f}" in sentence, sentence
    assert f"{100 * d['mean']:+.1f} ± {100 * d['ci95']:.1f} points" in sentence, (sentence, d)
    assert f"p = {d['p']:.2g}" in sentence or f"p = {d['p']:.3f}" in sentence, (sentence, d)
    if ranking.differs(d):
        assert "within noise" not in sentence, sentence
    else:
        assert not re.search(r"\bbeats?\b", sentence), f"'beat' where the paired interval includes zero: {sentence}"
        assert "within noise" in sentence, sentence


def test_paired_aulc_of_hand_made_rows_is_known():
    """Two rows 10 points apart at every budget, the gap varying by seed: mean 10, t interval, p."""
    from site_fixture import records

    recs = [r for r in records() if r["task"] == "mnist5k" and r["strategy"] in ("scratch", "linear-probe")
            and r["encoder"] == "enc"]
    for r in recs:  # flat curves: scratch 0.5 + seed/100, probe 0.6
        r["metrics"]["accuracy"] = 0.6 if r["strategy"] == "linear-probe" else 0.5 + r["seed"] / 100
    t = leaderboard.aggregate(recs)["tasks"]["mnist5k"]
    rows = {r["strategy"]: r for r in t["rows"]}
    d = ranking.paired_aulc(t, rows["linear-probe"], rows["scratch"])
    assert d["mean"] == pytest.approx(0.09) and d["seeds"] == 3
    assert d["ci95"] == pytest.approx(4.302653 * 0.01 / 3 ** 0.5, rel=1e-5) and ranking.differs(d)
    d = ranking.paired_aulc(t, rows["scratch"], rows["scratch"])
    assert d["mean"] == 0 and not ranking.differs(d)


def test_every_sentence_that_says_beat_next_to_two_numbers_is_a_registered_claim():
    registered = {(f, " ".join(frag.split())) for f, frag, *_ in CLAIMS}
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    unchecked = []
    for path in files:
        flat = " ".join(path.read_text(encoding="utf-8").split())
        for sentence in re.split(r"(?<=[.;])\s", flat):
            if re.search(r"\bbeats?\b", sentence) and re.search(r"\d+\.\d+ vs \d+\.\d+", sentence):
                name = str(path.relative_to(ROOT))
                if not any(f == name and frag in sentence for f, frag in registered):
                    unchecked.append(f"{name}: {sentence}")
    assert unchecked == []

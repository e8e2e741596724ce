"""Label-free validators and the collapse guard (issue 21): each score against a hand-computed value."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.domain import validators as v
from bench.domain.select import dev_risk
from bench.domain.selection import class_histogram, collapsed, effective_classes, one_hot, refusal, veto, vetoed_scores

LN2 = math.log(2)


def test_source_iwv_dev_by_hand():
    """correct = [1,0,1,0], w = [1,2,1,2]: source 0.5; IWV = 1 - 4/6; DEV = 1 - 0 (the loss is
    2(w - 1)/w exactly, so the control variate removes it: Cov(wl, w) = 2/3, Var(w) = 1/3, eta = -2,
    mean(wl) = 1, mean(w) = 1.5 -> 1 - 2 * 0.5 = 0)."""
    correct, w = np.array([1, 0, 1, 0], dtype=bool), np.array([1.0, 2.0, 1.0, 2.0])
    assert v.source_accuracy(correct) == 0.5
    assert v.iwv(correct, w) == pytest.approx(1 - 4 / 6)
    assert v.dev(correct, w) == pytest.approx(1.0)


def test_devn_is_dev_on_max_normalised_weights():
    """w = [1,2,1,2] -> w / 2 = [0.5,1,0.5,1]; losses [0,1,0,1]: wl = [0,1,0,1], mean 0.5; Cov(wl, w') = 1/6,
    Var(w') = 1/12, eta = -2; mean(w') = 0.75 -> 0.5 - 2 * (0.75 - 1) = 1.0 -> DEVN = 0.
    Losses [1,0,0,1]: wl = [0.5,0,0,1], mean 0.375; Cov(wl, w') = 1/24, eta = -0.5 -> 0.375 + 0.125 = 0.5."""
    w = np.array([1.0, 2.0, 1.0, 2.0])
    assert v.devn(np.array([1, 0, 1, 0], dtype=bool), w) == pytest.approx(0.0)
    assert v.devn(np.array([0, 1, 1, 0], dtype=bool), w) == pytest.approx(0.5)
    assert v.devn(np.array([0, 1, 1, 0], dtype=bool), w) == pytest.approx(1 - dev_risk([1, 0, 0, 1], w / 2))
    assert v.devn([1, 1, 0, 0], 3 * w) == v.devn([1, 1, 0, 0], w)  # invariant to the weights' scale


def test_devn_is_not_clipped_as_in_musgrave():
    """w = [1,2,4] -> [.25,.5,1]; losses [0,1,1]: wl = [0,.5,1], mean .5; Cov(wl, w') = 3/16,
    Var(w') = 7/48, eta = -9/7; mean(w') = 7/12 -> risk .5 + (9/7)(5/12) = 1 + 1/28: DEVN = -1/28
    (clipped, as DEV is, it would be 0 and tie with every candidate whose risk passes 1)."""
    assert v.devn(np.array([1, 0, 0], dtype=bool), [1.0, 2.0, 4.0]) == pytest.approx(-1 / 28)
    assert v.dev(np.array([1, 0, 0], dtype=bool), [0.25, 0.5, 1.0]) == pytest.approx(0.0)  # DEV keeps its clip


def test_entropy_im_bnm_by_hand():
    """P = [[.5,.5],[1,0]]: mean entropy ln2/2 -> entropy score -ln2/2; mean prediction [.75,.25] ->
    IM = H(.75,.25) - ln2/2. One-hot P of classes [0,0,1]: P^T P = diag(2,1), singular values sqrt2
    and 1 -> BNM = (sqrt2 + 1) / 3; a uniform 2 x 2 P has rank 1, singular value 1 -> BNM = 0.5."""
    p = np.array([[0.5, 0.5], [1.0, 0.0]])
    assert v.entropy(p) == pytest.approx(-LN2 / 2)
    h = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert v.im(p) == pytest.approx(h - LN2 / 2)
    assert v.im(np.eye(2)) == pytest.approx(LN2) and v.im(np.full((2, 2), 0.5)) == pytest.approx(0.0)
    assert v.bnm(one_hot([0, 0, 1], 2)) == pytest.approx((math.sqrt(2) + 1) / 3)
    assert v.bnm(np.full((2, 2), 0.5)) == pytest.approx(0.5)
    assert v.entropy(np.eye(3)) == 0.0  # confident predictions: the best entropy score


def test_snd_by_hand():
    """Three identical rows: each row's two neighbours tie -> entropy ln2 per row. Rows e0, e0, e1:
    each e0 row sees similarities (1, 0) / 0.05 = (20, 0): entropy of softmax(20, 0); the e1 row sees
    (0, 0): ln2."""
    assert v.snd(one_hot([0, 0, 0], 2)) == pytest.approx(LN2)
    q = 1 / (1 + math.exp(20))
    h20 = -(q * math.log(q) + (1 - q) * math.log(1 - q))
    assert v.snd(one_hot([0, 0, 1], 2)) == pytest.approx((2 * h20 + LN2) / 3)
    with pytest.raises(ValueError, match="two"):
        v.snd(np.eye(2)[:1])


def test_class_ami_by_hand():
    """Two well-separated blobs: predictions that follow the blobs give AMI 1 (whatever the label
    names), predictions on one class give AMI 0 (no information about the clusters)."""
    feats = np.array([[1.0, 0.01], [1.0, -0.01], [1.0, 0.0], [0.01, 1.0], [-0.01, 1.0], [0.0, 1.0]])
    assert v.class_ami(feats, [1, 1, 1, 0, 0, 0], 2, seed=0) == pytest.approx(1.0)
    assert v.class_ami(feats, [0] * 6, 2, seed=0) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="at least 3 rows"):
        v.class_ami(feats[:2], [0, 1], 3)


def test_every_validator_is_scored_and_missing_inputs_give_none():
    correct, w = np.array([1, 0, 1, 0], dtype=bool), np.array([1.0, 2.0, 1.0, 2.0])
    p = one_hot([0, 0, 0, 1, 1, 1], 2)
    feats = np.repeat(np.eye(2), 3, axis=0)
    full = v.scores(correct, w, p, feats, 2)
    assert list(full) == list(v.NAMES) and all(s is not None for s in full.values())
    assert full["im"] == pytest.approx(LN2) and full["classami"] == pytest.approx(1.0)
    assert full["iwv"] == v.iwv(correct, w) and full["snd"] == v.snd(p) and full["bnm"] == v.bnm(p)
    bare = v.scores(correct, None, None, None, 2)
    assert bare == {**dict.fromkeys(v.NAMES), "source": 0.5}


def test_collapse_guard_on_hand_cases():
    """One predicted class: 1.0 effective classes -> collapsed; uniform over K: K -> not collapsed;
    the threshold is half the classes (at or below it is collapsed)."""
    one = one_hot([2] * 8, 4)
    assert effective_classes(one) == pytest.approx(1.0) and collapsed(one, 4)
    uniform = one_hot([0, 1, 2, 3] * 2, 4)
    assert effective_classes(uniform) == pytest.approx(4.0) and not collapsed(uniform, 4)
    two = one_hot([0, 1] * 4, 4)  # exactly half the classes, evenly: 2 effective classes
    assert effective_classes(two) == pytest.approx(2.0) and collapsed(two, 4) and not collapsed(two, 4, threshold=1.5)
    assert collapsed(one_hot([0] * 5, 2), 2) and not collapsed(one_hot([0, 1, 1], 2), 2)
    assert class_histogram(one, 4) == [0, 0, 8, 0] and class_histogram(np.array([[0.2, 0.8]]), 2) == [0, 1]


def test_a_collapsed_candidate_is_vetoed_and_never_chosen():
    fine = {"collapsed": False, "effective_classes": 3.9, "threshold": 2.0, "histogram": [1, 1, 1, 1]}
    flat = {"collapsed": True, "effective_classes": 1.0, "threshold": 2.0, "histogram": [4, 0, 0, 0]}
    guards = {"a->b": [fine], "c->d": [None, flat]}
    why = veto(guards)
    assert why is not None and why.startswith("c->d cell 1") and "1.0 effective" in why and "[4, 0, 0, 0]" in why
    assert veto({"a->b": guards["a->b"]}) is None
    assert vetoed_scores([0.9, 0.7, None], [why, None, None]) == [None, 0.7, None]
    assert refusal([{"mean": 0.9, "veto": why}, {"mean": 0.7, "veto": None}]) is None
    assert "every candidate that ran collapsed" in refusal([{"mean": 0.9, "veto": why}, {"mean": None, "veto": None}])
    assert refusal([{"mean": None, "veto": None}]) is None  # nothing ran: that is a failure, not a veto

"""Label-free validators of a domain-adaptation candidate: each a pure function of arrays, higher = better.

Every score is oriented so that ``bench tune`` maximises it (a validator whose quantity is "lower
is better", entropy, is negated). ``P`` is the ``[n, K]`` prediction matrix on the unlabelled
target sample (rows sum to 1), ``H`` the entropy in nats (``0 log 0 = 0``), ``w`` the density
ratios of :func:`bench.domain.select.density_ratios` and ``l = 1 - correct`` the 0-1 losses of
the source validation items.

=========  ==============================================================  ========================
name       score (higher = better)                                         source
=========  ==============================================================  ========================
source     ``mean(correct)``: accuracy on the source validation set        plain validation
iwv        ``1 - sum(w l) / sum(w)``                                       Sugiyama et al. 2007
dev        ``1 - DEV risk(l, w)`` (control variate, clipped to [0, 1])     You et al. 2019
devn       ``1 - DEV risk(l, w / max(w))``, max-normalised, unclipped       Musgrave et al. 2022
entropy    ``-mean_i H(P_i)``: minus the mean prediction entropy           Morerio et al. 2018
im         ``H(mean_i P_i) - mean_i H(P_i)``: information maximisation     Liang et al. 2020 (SHOT)
bnm        ``||P||_* / n``: nuclear norm of the prediction matrix          Cui et al. 2020
classami   ``AMI(k-means(features, k = K, seeded), argmax P)``             Musgrave et al. 2022
snd        ``mean_i H(softmax_{j != i}(cos(P_i, P_j) / 0.05))``            Saito et al. 2021
=========  ==============================================================  ========================

Torch-free: numpy, scipy and scikit-learn only. The density ratios and the IWV/DEV risks are
:mod:`bench.domain.select`'s; nothing here re-estimates them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.domain.select import score
from bench.probe import l2_normalise

#: every validator, in the order of the table above (``bench tune --criterion`` accepts each)
NAMES = ("source", "iwv", "dev", "devn", "entropy", "im", "bnm", "classami", "snd")
#: the validators that read the source validation losses and the density ratios
RATIO_VALIDATORS = ("iwv", "dev", "devn")
#: what each validator's score estimates, as the tune report states it
DESCRIPTIONS = {
    "source": "validation accuracy (carve-out of the pool)",
    "iwv": "importance-weighted validation accuracy (estimated target accuracy, Sugiyama et al. 2007)",
    "dev": "deep embedded validation accuracy (estimated target accuracy, You et al. 2019)",
    "devn": "deep embedded validation with max-normalised weights (Musgrave et al. 2022)",
    "entropy": "minus the mean prediction entropy on the unlabelled target",
    "im": "information maximisation on the unlabelled target: H(mean prediction) - mean entropy",
    "bnm": "nuclear norm of the target prediction matrix over its rows (Cui et al. 2020)",
    "classami": "adjusted mutual information of k-means target clusters and predicted classes (Musgrave et al. 2022)",
    "snd": "soft neighbourhood density of the target predictions, temperature 0.05 (Saito et al. 2021)",
}
#: SND's temperature, as in Saito et al. 2021
SND_TEMPERATURE = 0.05


def source_accuracy(correct: Any) -> float:
    """Accuracy on the source validation set."""
    return score("source", correct, None)


def iwv(correct: Any, weights: Any) -> float:
    """One minus the importance-weighted validation risk of the 0-1 losses."""
    return score("iwv", correct, weights)


def dev(correct: Any, weights: Any) -> float:
    """One minus the deep embedded validation risk of the 0-1 losses."""
    return score("dev", correct, weights)


def devn(correct: Any, weights: Any) -> float:
    """DEVN (Musgrave et al. 2022): one minus the DEV risk of the weights divided by their maximum,
    NOT clipped to [0, 1] (pytorch-adapt's ``get_dev_risk`` returns the raw risk: with ``mean(w) < 1``
    the control variate may push it past 1, and a clip would tie candidates it still orders)."""
    from bench.domain.select import dev_risk

    w = np.asarray(weights, dtype=np.float64)
    return 1.0 - dev_risk(1.0 - np.asarray(correct, dtype=np.float64), w / w.max(), clip=False)


def _probs(probs: Any) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or not len(p):
        raise ValueError(f"predictions {p.shape} must be a non-empty [n, classes] matrix")
    return p


def row_entropy(probs: Any) -> np.ndarray:
    """``H(P_i)`` in nats for each row (``0 log 0 = 0``)."""
    from scipy.special import entr

    return np.asarray(entr(_probs(probs)).sum(axis=1))


def entropy(probs: Any) -> float:
    """Minus the mean prediction entropy (confident predictions score higher)."""
    return -float(row_entropy(probs).mean())


def im(probs: Any) -> float:
    """Information maximisation: entropy of the mean prediction minus the mean entropy."""
    p = _probs(probs)
    return float(row_entropy(p.mean(axis=0, keepdims=True))[0] - row_entropy(p).mean())


def bnm(probs: Any) -> float:
    """Nuclear norm of the prediction matrix divided by its number of rows."""
    p = _probs(probs)
    return float(np.linalg.norm(p, ord="nuc") / len(p))


def class_ami(features: Any, predicted: Any, num_classes: int, seed: int = 0) -> float:
    """AMI between k-means clusters (``k = num_classes``, ``random_state = seed``) of the
    L2-normalised target features and the predicted classes."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_mutual_info_score

    x = np.asarray(features, dtype=np.float64)
    x = l2_normalise(x.reshape(len(x), -1))
    if len(x) < num_classes or len(x) != len(predicted):
        raise ValueError(f"classami needs at least {num_classes} rows, one prediction each; got {len(x)} rows and "
                         f"{len(predicted)} predictions")
    clusters = KMeans(n_clusters=num_classes, n_init=10, random_state=seed).fit_predict(x)
    return float(adjusted_mutual_info_score(np.asarray(predicted), clusters))


def snd(probs: Any, temperature: float = SND_TEMPERATURE) -> float:
    """Soft neighbourhood density: the mean entropy of each row's softmax over its scaled cosine
    similarities to every other row (itself left out)."""
    from scipy.special import entr, log_softmax

    p = l2_normalise(_probs(probs))
    if len(p) < 2:
        raise ValueError("snd needs at least two target predictions")
    sims = p @ p.T / temperature
    np.fill_diagonal(sims, -np.inf)
    return float(entr(np.exp(log_softmax(sims, axis=1))).sum(axis=1).mean())


def scores(correct: Any, weights: Any | None, probs: Any | None, features: Any | None, num_classes: int,
           seed: int = 0) -> dict[str, float | None]:
    """Every validator's score; ``None`` for those whose inputs are missing (no density ratios,
    no target predictions or no target features)."""
    out: dict[str, float | None] = dict.fromkeys(NAMES)
    out["source"] = source_accuracy(correct)
    if weights is not None:
        out.update(iwv=iwv(correct, weights), dev=dev(correct, weights), devn=devn(correct, weights))
    if probs is not None:
        out.update(entropy=entropy(probs), im=im(probs), bnm=bnm(probs), snd=snd(probs))
        if features is not None:
            out["classami"] = class_ami(features, _probs(probs).argmax(axis=1), num_classes, seed)
    return out

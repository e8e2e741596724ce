"""Contamination at realistic sizes: the near radius follows the pool size, every in-task match is confirmed."""

from __future__ import annotations

import numpy as np

from bench import contamination as C
from bench.contamination.calibration import expected_chance_matches, near_radius
from bench.tasks import ArraySplit, TaskData


def _task(train, test, target_train=None, target_test=None):
    def split(prefix, imgs):
        return ArraySplit([f"{prefix}/{i}" for i in range(len(imgs))], np.stack(imgs), np.zeros(len(imgs), int))

    return TaskData(name="t", classes=["x"], train=split("train", train), test=split("test", test),
                    target_train=None if target_train is None else split("target_train", target_train),
                    target_test=None if target_test is None else split("target_test", target_test))


def _textures(n: int, rng: np.random.Generator, size: int = 32) -> list[np.ndarray]:
    """Distinct grey 1/f textures (natural image statistics) at the pHash thumbnail size."""
    f = np.fft.fftfreq(size)[:, None] ** 2 + np.fft.fftfreq(size)[None, :] ** 2
    f[0, 0] = 1.0
    out = []
    for s in range(0, n, 2000):
        k = min(2000, n - s)
        alpha = rng.uniform(0.8, 1.6, (k, 1, 1))
        spec = (rng.normal(size=(k, size, size)) + 1j * rng.normal(size=(k, size, size))) / f[None] ** alpha
        spec[:, 0, 0] = 0
        x = np.real(np.fft.ifft2(spec))
        x = (x - x.mean((1, 2), keepdims=True)) / (x.std((1, 2), keepdims=True) + 1e-9)
        x = x * rng.uniform(30, 60, (k, 1, 1)) + rng.uniform(80, 170, (k, 1, 1))
        out += list(np.clip(x, 0, 255).astype(np.uint8)[..., None])
    return out


def test_near_radius_keeps_chance_matches_under_one_percent_for_the_pool_size():
    """Guards against one fixed radius (12 bits) for every pool: at 50,000 images it expects 0.6
    chance matches per test image; the radius must shrink as the pool grows."""
    assert near_radius(800, 12) == 12
    assert near_radius(5_000, 12) == 10
    assert near_radius(50_000, 12) == 8
    assert near_radius(1_000_000, 8) == 6
    assert near_radius(50_000, 4) == 4  # never above the cap
    for n in (100, 800, 5_000, 50_000, 1_000_000):
        assert expected_chance_matches(n, near_radius(n, 12)) < 0.01
    assert expected_chance_matches(50_000, 12) > 0.5


def test_a_50000_image_natural_pool_flags_well_under_one_percent_of_a_distinct_test_set():
    """Guards against the old radius: pHash <= 12 against 50,000 distinct natural-statistics images
    flagged a large share of an unrelated test set as near duplicates (removed from Clean)."""
    rng = np.random.default_rng(0)
    images = _textures(51_000, rng)
    report = C.task_report(_task(images[:50_000], images[50_000:]), None)
    near = report.flagged("test", "near") | report.flagged("test", "exact")
    assert len(near) / 1_000 < 0.005, len(near)
    assert report.thresholds["near_hamming"] == 8
    assert report.thresholds["expected_chance_matches"]["train"] < 0.01


def test_upscaled_digits_are_not_near_duplicates_of_distinct_train_digits():
    """Guards against the size/entropy rule: UCI digits upscaled to 64 px are neither small nor
    low-entropy, and 80% of a distinct test set was flagged near against train."""
    from PIL import Image
    from sklearn.datasets import load_digits

    d = np.round(load_digits().images * (255 / 16)).astype(np.uint8)
    up = [np.asarray(Image.fromarray(a).resize((64, 64), Image.Resampling.BILINEAR))[..., None] for a in d]
    order = np.random.default_rng(0).permutation(len(up))
    train, test = [up[i] for i in order[:1198]], [up[i] for i in order[1198:]]
    report = C.task_report(_task(train, test), None)
    assert report.low_information["test"] == 0.0  # the old rule does not see them as low-information
    assert len(report.flagged("test", "near")) / len(test) < 0.01
    assert len(report.flagged("test", "near", within=True)) / len(test) < 0.02
    assert len(report.flagged("test", "lookalike")) > 100  # reported as look-alikes instead
    # a copy is still a copy: exact, and a lossless brightness edit confirmed by correlation
    copy = _task(train, [train[3], np.clip(train[5].astype(np.float32) * 0.8, 0, 255).astype(np.uint8)])
    r = C.task_report(copy, None)
    assert r.flagged("test", "exact") == {"test/0"} and r.flagged("test", "near") == {"test/1"}


def test_target_test_copies_of_train_or_target_pool_are_flagged_and_left_out_of_target_clean():
    """Checks that a shifted task's target test is compared with the source train pool and the
    target pool like source test is, and that its Clean score leaves the copies out."""
    rng = np.random.default_rng(1)
    imgs = _textures(40, rng, size=64)
    task = _task(imgs[:10], imgs[10:15], target_train=imgs[15:25], target_test=[imgs[2], imgs[18], *imgs[25:33]])
    report = C.task_report(task, None)
    assert report.flagged("target_test", "exact") == {"target_test/0", "target_test/1"}
    assert report.rates("target_test")["by_reference"]["train"]["exact"] == 1
    assert report.rates("target_test")["by_reference"]["target_train"]["exact"] == 1
    ids = [f"target_test/{i}" for i in range(10)]
    m = report.cell_metrics(ids, np.array([True] * 2 + [False] * 8), split="target_test")
    assert m["overlap_count"] == 2 and m["accuracy_clean"] == 0.0 and m["accuracy_all"] == 0.2


def test_each_cell_records_the_radius_used_and_its_expected_chance_matches():
    """Guards against records that do not say which pHash radius made their Clean subset."""
    rng = np.random.default_rng(2)
    imgs = _textures(30, rng, size=64)
    report = C.task_report(_task(imgs[:20], imgs[20:]), None)
    m = report.cell_metrics([f"test/{i}" for i in range(10)], np.ones(10, bool))
    assert m["near_radius"] == 12
    assert m["expected_chance_matches"] == 20 * C.calibration.chance_rate(12)

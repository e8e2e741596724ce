"""Corruption shifts: deterministic per item, and each changes images by its documented amount."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from bench.errors import UserError
from bench.specs import TaskRequest
from bench.tasks import ArraySplit, TaskData
from bench_plugins.tasks.corruptions import (
    CORRUPTIONS,
    SEVERITY_TABLE,
    CorruptedSplit,
    corrupt,
    load_corrupted_task,
    parse_name,
    tint_gains,
)


def _base_task(name="toy"):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(12, 16, 16, 1), dtype=np.uint8)
    labels = np.arange(12) % 3
    split = ArraySplit([f"{name}/{i}" for i in range(12)], images, labels)
    return TaskData(name=name, classes=["a", "b", "c"], train=split.subset(range(8)), test=split.subset(range(8, 12)),
                    split_info="toy split")


def _resolve(name):
    assert name == "toy"
    return _base_task()


def test_corrupted_task_has_clean_source_and_corrupted_target():
    task = load_corrupted_task(TaskRequest("toy@blur:2", resolve=_resolve))
    assert task.shifted and task.source_domain == "toy" and task.target_domain == "toy@blur:2"
    assert task.target_train.ids[0] == "toy/0@blur:2"
    np.testing.assert_array_equal(task.target_test.labels, task.test.labels)
    clean, blurred = task.train.images([0])[0], task.target_train.images([0])[0]
    assert clean.shape == blurred.shape and not np.array_equal(clean, blurred)


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_corruption_is_deterministic_per_item_and_differs_between_items(corruption):
    img = np.full((16, 16, 1), 100, dtype=np.uint8)
    img[4:12, 6:10] = 230
    a1, a2 = corrupt(img, "x/1", corruption, 5), corrupt(img, "x/1", corruption, 5)
    np.testing.assert_array_equal(a1, a2)
    np.random.seed(123)  # the global RNG has no influence
    np.testing.assert_array_equal(a1, corrupt(img, "x/1", corruption, 5))
    if corruption in ("gaussian-noise", "colour"):
        assert not np.array_equal(a1, corrupt(img, "x/2", corruption, 5))
    assert a1.dtype == np.uint8


def test_corrupted_split_fingerprint_depends_on_corruption_and_severity():
    base = _base_task().train
    fps = {CorruptedSplit(base, c, s).fingerprint() for c in ("blur", "jpeg") for s in (1, 2)}
    assert len(fps) == 4
    assert CorruptedSplit(base, "blur", 1).fingerprint() == CorruptedSplit(base, "blur", 1).fingerprint()


@pytest.mark.parametrize("severity", [1, 2, 3])
def test_gaussian_noise_has_documented_sigma(severity):
    img = np.full((128, 128, 1), 128, dtype=np.uint8)
    diff = corrupt(img, "n", "gaussian-noise", severity).astype(float) - 128
    expected = SEVERITY_TABLE["gaussian-noise"][severity - 1] * 255
    assert abs(diff.std() / expected - 1) < 0.05 and abs(diff.mean()) < 2


@pytest.mark.parametrize("severity", [1, 3, 5])
def test_blur_has_documented_sigma(severity):
    side = 112
    img = np.zeros((side, side, 1), dtype=np.uint8)
    img[:, side // 2 :] = 255  # a vertical step edge
    profile = corrupt(img, "b", "blur", severity).astype(float)[..., 0].mean(axis=0)
    # the derivative of a blurred step is a Gaussian with the blur's sigma
    d = np.diff(profile)
    x = np.arange(len(d))
    w = d / d.sum()
    measured = np.sqrt((w * (x - (w * x).sum()) ** 2).sum())
    sigma = SEVERITY_TABLE["blur"][severity - 1] * side / 28
    assert abs(measured / sigma - 1) < 0.05


@pytest.mark.parametrize("severity", [1, 3, 5])
def test_contrast_scales_deviation_from_mean(severity):
    img = np.random.default_rng(1).integers(0, 256, (32, 32, 1)).astype(np.uint8)
    out = corrupt(img, "c", "contrast", severity).astype(float)
    ratio = out.std() / img.astype(float).std()
    assert abs(ratio - SEVERITY_TABLE["contrast"][severity - 1]) < 0.01
    assert abs(out.mean() - img.mean()) < 0.5


def _orientation(img):
    m = img[..., 0].astype(float)
    yy, xx = np.mgrid[: m.shape[0], : m.shape[1]]
    w = m / m.sum()
    cx, cy = (w * xx).sum(), (w * yy).sum()
    mxx, myy, mxy = (w * (xx - cx) ** 2).sum(), (w * (yy - cy) ** 2).sum(), (w * (xx - cx) * (yy - cy)).sum()
    return np.degrees(0.5 * np.arctan2(2 * mxy, mxx - myy))


@pytest.mark.parametrize("severity", [1, 3, 5])
def test_rotation_turns_by_documented_degrees(severity):
    img = np.zeros((65, 65, 1), dtype=np.uint8)
    img[31:34, 8:57] = 255  # a horizontal bar through the centre
    angle = abs(_orientation(corrupt(img, "r", "rotation", severity)))
    assert abs(angle - SEVERITY_TABLE["rotation"][severity - 1]) < 1.5


@pytest.mark.parametrize("severity", [1, 3, 5])
def test_inversion_inverts_the_documented_fraction_of_items(severity):
    img = np.random.default_rng(2).integers(0, 256, (4, 4, 1)).astype(np.uint8)
    inverted = 0
    for i in range(1000):
        out = corrupt(img, f"i/{i}", "inversion", severity)
        if np.array_equal(out, 255 - img):
            inverted += 1
        else:
            np.testing.assert_array_equal(out, img)
    assert abs(inverted / 1000 - SEVERITY_TABLE["inversion"][severity - 1]) < 0.05


@pytest.mark.parametrize("severity", [1, 3, 5])
def test_colour_tint_makes_grey_rgb_with_documented_gains(severity):
    img = np.full((8, 8, 1), 200, dtype=np.uint8)
    out = corrupt(img, "t", "colour", severity)
    assert out.shape == (8, 8, 3)
    gains = out.reshape(-1, 3).mean(axis=0) / 200
    t = SEVERITY_TABLE["colour"][severity - 1]
    assert abs(gains.max() - 1) < 0.01 and abs(gains.min() - (1 - t)) < 0.01
    assert np.allclose(tint_gains(t, np.random.default_rng(0)).min(), 1 - t)


@pytest.mark.parametrize("severity", [1, 3, 5])
def test_jpeg_reencodes_at_documented_quality(severity):
    img = np.random.default_rng(3).integers(0, 256, (24, 24, 3)).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=SEVERITY_TABLE["jpeg"][severity - 1])
    expected = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    np.testing.assert_array_equal(corrupt(img, "j", "jpeg", severity), expected)


def test_more_severe_corruption_changes_images_more():
    img = np.random.default_rng(4).integers(0, 256, (32, 32, 1)).astype(np.uint8)
    for c in ("gaussian-noise", "blur", "contrast", "jpeg"):
        errs = [np.abs(corrupt(img, "s", c, s).astype(float) - img).mean() for s in range(1, 6)]
        assert errs == sorted(errs), (c, errs)


@pytest.mark.parametrize("name,fragment", [("toy@fog:3", "unknown corruption 'fog'"), ("toy@blur:9", "1-5"),
                                           ("toy@blur", "TASK@CORRUPTION:SEVERITY")])
def test_bad_corruption_names_are_user_errors(name, fragment):
    with pytest.raises(UserError, match=fragment):
        parse_name(name)

"""torchvision-backed tasks: a fast, clear error without data, and reading tiny fake files laid out
the way torchvision expects (MNIST's raw idx files, USPS's bz2 libsvm files). Never the network."""

from __future__ import annotations

import bz2
import struct
import time

import numpy as np
import pytest

from bench.errors import UserError
from bench.specs import TaskRequest
from bench_plugins.tasks.torchvision_tasks import (
    DATASETS,
    PAIRS,
    bench_register_tasks,
    load_torchvision_pair,
    load_torchvision_task,
)


def _write_idx(path, array: np.ndarray) -> None:
    # idx format: magic (0, 0, type 0x08 = ubyte, ndim), big-endian dims, raw bytes.
    with open(path, "wb") as f:
        f.write(struct.pack(">BBBB", 0, 0, 0x08, array.ndim))
        f.write(struct.pack(f">{array.ndim}I", *array.shape))
        f.write(array.astype(np.uint8).tobytes())


def _fake_mnist(root, n_train=30, n_test=20):
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = np.arange(n) % 10
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
        out[prefix] = (images, labels)
    return out


def _fake_usps(root, n_train=20, n_test=10):
    rng = np.random.default_rng(1)
    out = {}
    for name, n in (("usps.bz2", n_train), ("usps.t.bz2", n_test)):
        values = rng.uniform(-1, 1, (n, 256))
        labels = np.arange(n) % 10
        lines = [f"{y + 1} " + " ".join(f"{i + 1}:{v:.6f}" for i, v in enumerate(row))
                 for y, row in zip(labels, values)]
        with bz2.open(root / name, "wt") as f:
            f.write("\n".join(lines) + "\n")
        out[name] = (((values + 1) / 2 * 255).astype(np.uint8).reshape(n, 16, 16), labels)
    return out


@pytest.mark.parametrize("name", ["mnist", "cifar10", "usps", "flowers102", "eurosat", "svhn->mnist"])
def test_missing_data_without_download_is_a_fast_error_naming_both_flags(tmp_path, name):
    loader = load_torchvision_pair if name in PAIRS else load_torchvision_task
    start = time.perf_counter()
    with pytest.raises(UserError) as err:
        loader(TaskRequest(name=name, data_dir=str(tmp_path / "empty"), download=False))
    assert time.perf_counter() - start < 5
    message = str(err.value)
    assert "--data-dir" in message and "--download" in message and str(tmp_path / "empty") in message
    assert "\n" not in message
    assert not (tmp_path / "empty").exists()  # nothing was created, nothing fetched


def test_mnist_reads_torchvision_raw_files_with_stable_ids(tmp_path):
    fake = _fake_mnist(tmp_path)
    task = load_torchvision_task(TaskRequest(name="mnist", data_dir=str(tmp_path)))
    assert task.classes == [str(i) for i in range(10)] and task.dataset == ("mnist",)
    assert len(task.train) == 30 and len(task.test) == 20 and task.native_size == 28
    assert task.train.ids[:2] == ["mnist/train/0", "mnist/train/1"] and task.test.ids[-1] == "mnist/test/19"
    np.testing.assert_array_equal(task.train.labels, fake["train"][1])
    images = task.test.images([3, 7])
    assert images[0].shape == (28, 28, 1) and images[0].dtype == np.uint8
    np.testing.assert_array_equal(images[1][:, :, 0], fake["t10k"][0][7])
    assert task.extra["prompt_names"][3] == "three"
    assert "official" in task.split_info
    # The fingerprint hashes pixels: same files, same hash; different pixels, different hash.
    again = load_torchvision_task(TaskRequest(name="mnist", data_dir=str(tmp_path)))
    assert again.train.fingerprint() == task.train.fingerprint() != task.test.fingerprint()


def test_usps_and_the_mnist_usps_pair_share_digit_classes(tmp_path):
    _fake_mnist(tmp_path)
    fake = _fake_usps(tmp_path)
    usps = load_torchvision_task(TaskRequest(name="usps", data_dir=str(tmp_path)))
    assert len(usps.train) == 20 and len(usps.test) == 10 and usps.train.ids[5] == "usps/train/5"
    img = usps.test.images([4])[0]
    assert img.shape == (16, 16, 1)
    np.testing.assert_allclose(img[:, :, 0].astype(int), fake["usps.t.bz2"][0][4].astype(int), atol=1)
    np.testing.assert_array_equal(usps.test.labels, fake["usps.t.bz2"][1])
    pair = load_torchvision_pair(TaskRequest(name="mnist->usps", data_dir=str(tmp_path)))
    assert pair.shifted and pair.source_domain == "mnist" and pair.target_domain == "usps"
    assert pair.target_train.ids[0] == "usps/train/0" and pair.test.ids[0] == "mnist/test/0"
    assert pair.native_size is None and pair.dataset == ("mnist", "usps")


def test_every_torchvision_task_is_registered_with_its_dataset():
    specs = {s.name: s for s in bench_register_tasks()}
    assert set(DATASETS) | set(PAIRS) == set(specs)
    assert specs["cifar10"].dataset == ("cifar-10",) and specs["svhn->mnist"].shifted
    assert specs["mnist"].metadata["reference_task"] == "digits"

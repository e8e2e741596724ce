"""The offline natural-image task ``fashion-mnist``: IDX files found in --data-dir, $BENCH_DATA_DIR or
Debian's folder, a fixed stratified pool/test split, one-line errors, corruption shifts, and (opt-in)
the real files from ``apt-get install dataset-fashion-mnist``."""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

import numpy as np
import pytest

from bench.cli import main
from bench.errors import UserError
from bench.plugins import load_plugins
from bench.specs import TaskRequest
from bench_plugins.tasks import _fashion_mnist as fashion_mnist_data
from bench_plugins.tasks import fashion_mnist

REAL = Path(fashion_mnist.DEBIAN_DIR)


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> None:
    """An IDX file of unsigned bytes (the format of the official files), written from its spec."""
    raw = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    raw += np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)


def fake_fashion(folder: Path, per_class=(7, 4), compress: bool = True) -> dict[str, np.ndarray]:
    """Fake official files: ``per_class`` train/test items of each class; pixel (0, 0) holds the
    item's index in its file, so tests can tell which items were taken."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n in zip(("train", "test"), per_class):
        labels = np.tile(np.arange(10, dtype=np.uint8), n)
        images = np.random.default_rng(1).integers(0, 256, (len(labels), 28, 28)).astype(np.uint8)
        images[:, 0, 0] = np.arange(len(labels)) % 256
        images_stem, labels_stem = fashion_mnist_data.FILES[split]
        suffix = ".gz" if compress else ""
        write_idx(folder / (images_stem + suffix), images, compress)
        write_idx(folder / (labels_stem + suffix), labels, compress)
        out[split] = labels
    return out


@pytest.fixture
def no_default_data(monkeypatch, tmp_path):
    """Neither $BENCH_DATA_DIR nor Debian's folder hold the data (whatever this machine has)."""
    monkeypatch.delenv("BENCH_DATA_DIR", raising=False)
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", str(tmp_path / "no-debian-package"))


@pytest.fixture
def small_split(monkeypatch):
    monkeypatch.setattr(fashion_mnist, "POOL_PER_CLASS", 5)
    monkeypatch.setattr(fashion_mnist, "TEST_PER_CLASS", 3)


def test_split_is_fixed_stratified_and_recorded(tmp_path, no_default_data, small_split):
    """Guards the documented split: per class a seeded sample of the official train (pool) and of the
    official test (test), ids indexing the official files, the same on every load."""
    fake_fashion(tmp_path / "d")
    task = fashion_mnist_data.load_fashion_mnist(TaskRequest(name="fashion-mnist", data_dir=str(tmp_path / "d")))
    assert len(task.train) == 50 and len(task.test) == 30
    assert np.bincount(task.train.labels).tolist() == [5] * 10 and np.bincount(task.test.labels).tolist() == [3] * 10
    assert task.classes[0] == "T-shirt/top" and task.classes[9] == "Ankle boot" and task.native_size == 28
    assert task.dataset == ("fashion-mnist",)
    assert task.split_info == ("fixed stratified samples: pool = 50 of the official train set (up to 5/class, "
                               "seed 0), test = 30 of the official test set (up to 3/class, seed 1)")
    # ids name the official index, and the image is the one at that index
    idx = [int(i.split("/")[-1]) for i in task.train.ids]
    assert all(i.startswith("fashion-mnist/train/") for i in task.train.ids)
    assert [int(img[0, 0, 0]) for img in task.train.images(range(len(idx)))] == [i % 256 for i in idx]
    assert np.array_equal(task.train.labels, np.array(idx) % 10)
    # seed 0 per class: not simply the first items of each class, and stable
    assert idx != sorted(range(50))
    again = fashion_mnist_data.load_fashion_mnist(TaskRequest(name="fashion-mnist", data_dir=str(tmp_path / "d")))
    assert again.train.ids == task.train.ids and again.test.fingerprint() == task.test.fingerprint()


def test_files_found_in_env_then_debian_folder_gzipped_or_not(tmp_path, monkeypatch, no_default_data, small_split):
    """Guards the lookup order --data-dir > $BENCH_DATA_DIR > Debian's folder, the subfolders and plain files."""
    fake_fashion(tmp_path / "env" / "FashionMNIST" / "raw", per_class=(6, 3), compress=False)
    fake_fashion(tmp_path / "deb", per_class=(6, 4))
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", str(tmp_path / "deb"))
    monkeypatch.setenv("BENCH_DATA_DIR", str(tmp_path / "env"))
    assert len(fashion_mnist_data.load_fashion_mnist(TaskRequest(name="fashion-mnist")).test) == 30  # env's 3/class
    monkeypatch.delenv("BENCH_DATA_DIR")
    assert len(fashion_mnist_data.load_fashion_mnist(TaskRequest(name="fashion-mnist")).test) == 30  # deb: cap 3
    monkeypatch.setattr(fashion_mnist, "TEST_PER_CLASS", 10)
    assert len(fashion_mnist_data.load_fashion_mnist(TaskRequest(name="fashion-mnist")).test) == 40  # deb: all 4
    # a --data-dir without the files falls through to the next place
    empty = str(tmp_path / "empty")
    assert len(fashion_mnist_data.load_fashion_mnist(TaskRequest(name="fashion-mnist", data_dir=empty)).test) == 40


def test_missing_data_is_one_line_naming_the_package_and_flag(capsys, no_default_data):
    """Guards the user error: no data -> exit 2, one line naming apt-get install and --data-dir."""
    argv = ["run", "--tasks", "fashion-mnist", "--encoders", "pixels", "--strategies", "linear-probe", "--dry-run"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "apt-get install dataset-fashion-mnist" in err and "--data-dir" in err and "no-debian-package" in err


def test_bad_files_are_one_line_errors(tmp_path, no_default_data):
    """Guards the IDX reader's checks: wrong magic, truncated data, labels outside 0-9."""
    fake_fashion(tmp_path / "d")
    bad = tmp_path / "d" / "t10k-labels-idx1-ubyte.gz"
    bad.write_bytes(gzip.compress(b"\x00\x00\x0d\x01" + struct.pack(">I", 40) + bytes(160)))  # floats
    with pytest.raises(UserError, match="not an IDX file of unsigned bytes"):
        fashion_mnist_data.load_fashion_mnist(TaskRequest(name="fashion-mnist", data_dir=str(tmp_path / "d")))
    bad.write_bytes(gzip.compress(b"\x00\x00\x08\x01" + struct.pack(">I", 40) + bytes(39)))
    with pytest.raises(UserError, match="truncated"):
        fashion_mnist_data.load_fashion_mnist(TaskRequest(name="fashion-mnist", data_dir=str(tmp_path / "d")))
    write_idx(bad, np.full(40, 12, np.uint8))
    with pytest.raises(UserError, match="has label 12; Fashion-MNIST labels are 0-9"):
        fashion_mnist_data.load_fashion_mnist(TaskRequest(name="fashion-mnist", data_dir=str(tmp_path / "d")))


def test_corruption_shift_and_reference_run_end_to_end(tmp_path, no_default_data, small_split):
    """Guards the wiring: fashion-mnist@blur:3 is a shifted task (target accuracy recorded), its
    forgetting reference is mnist5k, and the frozen random-init baseline skips fine-tuning with a reason."""
    fake_fashion(tmp_path / "d")
    out = tmp_path / "out"
    argv = ["run", "--tasks", "fashion-mnist@blur:3", "--encoders", "pixels,efficientnet-lite0-random",
            "--strategies", "linear-probe,finetune", "--budgets", "1", "--seeds", "1", "--data-dir",
            str(tmp_path / "d"), "--out", str(out), "--no-contamination", "--forgetting", "off", "--no-progress"]
    assert main(argv) == 0
    recs = {(r["encoder"], r["strategy"]): r for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())}
    probe = recs[("efficientnet-lite0-random", "linear-probe")]
    assert probe["status"] == "ok" and "target_accuracy" in probe["metrics"]
    assert recs[("pixels", "linear-probe")]["status"] == "ok"
    skipped = recs[("efficientnet-lite0-random", "finetune")]
    assert skipped["status"] == "skipped" and "efficientnet-lite0-random" in skipped["error"]
    assert load_plugins().registry("tasks").get("fashion-mnist").reference_task == "mnist5k"


@pytest.mark.skipif(not REAL.is_dir(), reason=f"{REAL} absent (apt-get install dataset-fashion-mnist)")
def test_real_debian_files(monkeypatch):
    """Opt-in: the real files hold 60,000 / 10,000 items, 6,000 / 1,000 per class, and the task's split is
    1,000 / 200 per class."""
    monkeypatch.delenv("BENCH_DATA_DIR", raising=False)
    files = fashion_mnist_data.locate(TaskRequest(name="fashion-mnist"))
    for split, n in (("train", 60_000), ("test", 10_000)):
        images, labels = fashion_mnist_data.read_split(files, split)
        assert images.shape == (n, 28, 28) and np.bincount(labels).tolist() == [n // 10] * 10
    task = fashion_mnist_data.load_fashion_mnist(TaskRequest(name="fashion-mnist"))
    assert np.bincount(task.train.labels).tolist() == [1000] * 10
    assert np.bincount(task.test.labels).tolist() == [200] * 10

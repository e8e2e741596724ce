"""Corruption shifts of any task: ``TASK@CORRUPTION:SEVERITY`` (in the style of MNIST-C / ImageNet-C).

The source domain is the clean task (its ``train`` pool and ``test``); the target domain is a
corrupted copy of the same pool (``target_train``, unlabelled for strategies) and of the test
split (``target_test``). Corruptions are deterministic per item: each item's random numbers come
from a hash of ``(corruption seed, item id, corruption, severity)``, never from a global RNG, so
the same item is corrupted the same way on every run, machine and process.

Severities 1-5 (the amount of change, documented in docs/tasks.md and checked by the tests):

==============  ==========================================================================
gaussian-noise  additive N(0, sigma) per pixel, sigma = 0.08, 0.12, 0.18, 0.26, 0.38 (x 255)
blur            Gaussian blur, sigma = (0.4, 0.6, 0.8, 1.2, 1.6) x side / 28 pixels
contrast        deviations from the image mean scaled by 0.75, 0.6, 0.45, 0.3, 0.15
rotation        rotation by +-10, 20, 30, 45, 60 degrees (sign per item), bilinear, black fill
inversion       each item inverted (255 - x) with probability 0.2, 0.4, 0.6, 0.8, 1.0
colour          tint: channel gains 1 - t * (1 - c) for a per-item hue c, t = 0.2 ... 0.8
jpeg            JPEG re-encoding at quality 80, 50, 30, 15, 8
==============  ==========================================================================
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import re

import numpy as np
from PIL import Image

import bench
from bench.errors import UserError
from bench.specs import TaskRequest, TaskSpec
from bench.tasks import Split, TaskData

#: Per-corruption amount of change for severities 1..5 (see the module docstring).
SEVERITY_TABLE: dict[str, tuple[float, ...]] = {
    "gaussian-noise": (0.08, 0.12, 0.18, 0.26, 0.38),
    "blur": (0.4, 0.6, 0.8, 1.2, 1.6),
    "contrast": (0.75, 0.6, 0.45, 0.3, 0.15),
    "rotation": (10.0, 20.0, 30.0, 45.0, 60.0),
    "inversion": (0.2, 0.4, 0.6, 0.8, 1.0),
    "colour": (0.2, 0.35, 0.5, 0.65, 0.8),
    "jpeg": (80, 50, 30, 15, 8),
}
CORRUPTIONS = tuple(SEVERITY_TABLE)
PATTERN = r".+@[^@]+"


@bench.hookimpl
def bench_register_tasks():
    return [
        TaskSpec(
            name="TASK@CORRUPTION:SEVERITY",
            description="corruption shift of any task: clean source, corrupted target; "
            f"corruptions {', '.join(CORRUPTIONS)}; severities 1-5 (e.g. mnist5k@blur:3)",
            loader=load_corrupted_task,
            shifted=True,
            pattern=PATTERN,
            metadata={"corruptions": list(CORRUPTIONS), "severities": [1, 2, 3, 4, 5]},
        )
    ]


def parse_name(name: str) -> tuple[str, str, int]:
    """``"mnist5k@blur:3"`` -> ``("mnist5k", "blur", 3)``; a malformed name is a UserError."""
    m = re.fullmatch(r"(?P<base>.+)@(?P<corruption>[^@:]+):(?P<severity>[^@:]+)", name.strip())
    if not m:
        raise UserError(f"corruption task {name!r} must look like TASK@CORRUPTION:SEVERITY, e.g. mnist5k@blur:3")
    corruption, severity = m["corruption"], m["severity"]
    if corruption not in SEVERITY_TABLE:
        raise UserError(f"unknown corruption {corruption!r} in {name!r}; use one of {', '.join(CORRUPTIONS)}")
    if severity not in ("1", "2", "3", "4", "5"):
        raise UserError(f"corruption severity {severity!r} in {name!r} must be an integer 1-5")
    return m["base"], corruption, int(severity)


def item_rng(item_id: str, corruption: str, severity: int, seed: int = 0):
    """The random generator of one item: a hash of (seed, id, corruption, severity)."""
    digest = hashlib.sha256(f"{seed}\x00{item_id}\x00{corruption}\x00{severity}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


# -- the corruptions: uint8 (H, W, C) in, uint8 (H, W, C') out ------------------------------------


def _to_uint8(x):

    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def gaussian_noise(img, amount, rng):
    sigma = amount * 255.0
    return _to_uint8(img.astype("float64") + rng.normal(0.0, sigma, size=img.shape))


def blur(img, amount, rng):
    # scipy.ndimage stays a late import: it costs ~0.3 s and `bench list` imports this module.
    from scipy.ndimage import gaussian_filter

    sigma = amount * max(img.shape[:2]) / 28.0
    return _to_uint8(gaussian_filter(img.astype("float64"), sigma=(sigma, sigma, 0), mode="reflect", truncate=4.0))


def contrast(img, amount, rng):
    x = img.astype("float64")
    mean = x.mean(axis=(0, 1), keepdims=True)
    return _to_uint8(mean + (x - mean) * amount)


def rotation(img, amount, rng):
    from scipy.ndimage import rotate

    angle = amount if rng.random() < 0.5 else -amount
    return _to_uint8(rotate(img.astype("float64"), angle, axes=(1, 0), reshape=False, order=1, mode="constant",
                            cval=0.0))


def inversion(img, amount, rng):
    return (255 - img).astype("uint8") if rng.random() < amount else img.copy()


def tint_gains(amount, rng):
    """Per-channel gains ``1 - t (1 - c)``: ``c`` is a fully saturated colour of random hue
    (its largest channel 1, its smallest 0), so the weakest channel keeps ``1 - t`` of its value."""


    c = np.asarray(colorsys.hsv_to_rgb(float(rng.random()), 1.0, 1.0))
    return 1.0 - amount * (1.0 - c)


def colour(img, amount, rng):

    rgb = np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img[..., :3]
    return _to_uint8(rgb.astype("float64") * tint_gains(amount, rng).reshape(1, 1, 3))


def jpeg(img, amount, rng):


    grey = img.shape[2] == 1
    pil = Image.fromarray(img[..., 0] if grey else img[..., :3], mode="L" if grey else "RGB")
    buf = io.BytesIO()
    pil.save(buf, format="JPEG", quality=int(amount))
    out = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("L" if grey else "RGB"))
    return out[..., None] if grey else out


FUNCTIONS = {
    "gaussian-noise": gaussian_noise,
    "blur": blur,
    "contrast": contrast,
    "rotation": rotation,
    "inversion": inversion,
    "colour": colour,
    "jpeg": jpeg,
}


def corrupt(img, item_id: str, corruption: str, severity: int, seed: int = 0):
    """Apply one corruption to one uint8 ``(H, W, C)`` image, deterministically for its id."""
    img = np.asarray(img)
    if img.ndim == 2:
        img = img[..., None]
    amount = SEVERITY_TABLE[corruption][severity - 1]
    return FUNCTIONS[corruption](img, amount, item_rng(item_id, corruption, severity, seed))


class CorruptedSplit(Split):
    """A corrupted view of another split: same labels, ids suffixed ``@corruption:severity``,
    images corrupted lazily (and deterministically) when asked for."""

    def __init__(self, parent: Split, corruption: str, severity: int, seed: int = 0) -> None:
        self.parent = parent
        self.corruption = corruption
        self.severity = severity
        self.seed = seed
        self.source_ids = list(parent.ids)
        self.ids = [f"{i}@{corruption}:{severity}" for i in parent.ids]
        self.labels = np.asarray(parent.labels)
        self._fingerprint: str | None = None

    def images(self, positions):
        positions = list(positions)
        clean = self.parent.images(positions)
        return [corrupt(img, self.source_ids[p], self.corruption, self.severity, self.seed)
                for p, img in zip(positions, clean)]

    def fingerprint(self) -> str:
        # The corruption is a pure function of (parent content, corruption, severity, seed).
        if self._fingerprint is None:
            h = hashlib.sha256(self.parent.fingerprint().encode())
            h.update(f"{self.corruption}:{self.severity}:{self.seed}".encode())
            self._fingerprint = h.hexdigest()
        return self._fingerprint


def load_corrupted_task(request: TaskRequest):

    base_name, corruption, severity = parse_name(request.name)
    if request.resolve is None:
        raise UserError(f"task {request.name!r} needs the harness to load its base task {base_name!r}")
    base = request.resolve(base_name)
    if base.shifted:
        raise UserError(f"corruption shifts apply to unshifted tasks; {base_name!r} is already shifted "
                        f"(use its source task, e.g. {base_name.split('->')[0]}@{corruption}:{severity})")
    seed = int(request.options.get("corruption_seed", 0))
    amount = SEVERITY_TABLE[corruption][severity - 1]
    return TaskData(
        name=request.name,
        classes=list(base.classes),
        train=base.train,
        test=base.test,
        target_train=CorruptedSplit(base.train, corruption, severity, seed),
        target_test=CorruptedSplit(base.test, corruption, severity, seed),
        source_domain=base_name,
        target_domain=f"{base_name}@{corruption}:{severity}",
        dataset=tuple(base.dataset),
        split_info=f"{base.split_info}; target = {corruption} severity {severity} (amount {amount}) "
        f"of the same pool/test, per-item seed from hash(seed={seed}, id, corruption, severity)",
        skipped_items=base.skipped_items,
        native_size=base.native_size,
        extra={**base.extra, "corruption": corruption, "severity": severity, "amount": amount},
    )

"""What an encoder loader returns, and how images become encoder inputs.

An :class:`Encoder` is a backbone ``nn.Module`` mapping a normalised image batch
``[B, 3, S, S]`` to pooled features ``[B, D]``, plus everything needed to use it correctly
(timm's pretrained-config idea): input size, mean/std, interpolation, what it was pre-trained
on, its ordered layer groups (for layer-wise learning-rate decay), where LoRA/adapters attach,
and for CLIP-like models a text tower for zero-shot classification.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.accel import autocast, to_device, use_channels_last, with_oom_backoff
from bench.errors import UserError


@dataclass
class Encoder:
    """A loaded encoder.

    Some facts here (``feature_dim``, ``input_size``, ``is_vit``, ``patch_size``, ``weights``,
    ``license``, ``pretraining_data``) are also declared in the spec's
    :class:`bench.specs.EncoderMeta`. Both exist on purpose: the metadata is what the plugin
    *declares* before any model code runs (planning, ``--dry-run``, ``bench list``), while these
    are what was actually *loaded* for this request (``--resolution`` changes ``input_size``,
    ``scratch`` empties ``pretraining_data`` and ``weights``, an unlisted CLIP tag has no declared
    size). ``trainable`` and ``has_text_tower`` are derived from the module and ``encode_text``.
    """

    name: str
    module: nn.Module
    feature_dim: int
    input_size: int
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    interpolation: str = "bilinear"
    variant: str | None = None
    pretrained: bool = True
    pretraining_data: tuple[str, ...] = ()
    #: Tag or path of the weights loaded (``None`` for random init); recorded in every record.
    weights: str | None = None
    license: str = "unknown"
    #: Ordered parameter-name prefixes of ``module``, input side first (stem, stage 1, ..., last
    #: stage). Layer-wise lr decay gives group ``i`` of ``n`` the rate ``lr * decay**(n - 1 - i)``.
    layer_groups: list[list[str]] = field(default_factory=list)
    #: Names (or suffixes) of ``module``'s sub-modules that LoRA should wrap (peft ``target_modules``).
    lora_targets: list[str] = field(default_factory=list)
    #: Names of sub-modules after which bottleneck adapters are inserted (blocks / stages).
    adapter_targets: list[str] = field(default_factory=list)
    is_vit: bool = False
    patch_size: int | None = None
    #: For CLIP-like encoders: maps a list of strings to text embeddings ``[N, D]`` in the same
    #: space as ``module``'s output (used by zero-shot and ``--head-init zero-shot``).
    encode_text: Callable[[list[str]], torch.Tensor] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: Where the weights were loaded from (:meth:`bench.weights.Resolved.record`: origin, repository,
    #: file, commit, endpoint); recorded as ``encoder_info.weights_source``. ``None``: random init.
    weights_source: dict[str, Any] | None = None
    #: Weights outside ``module`` that the encoder's outputs depend on (CLIP's text tower, used by
    #: zero-shot); part of :meth:`fingerprint`, so a cell's identity covers them.
    text_module: nn.Module | None = field(default=None, repr=False)
    _fingerprint: str | None = field(default=None, repr=False)

    @property
    def trainable(self) -> bool:
        return any(True for _ in self.module.parameters())

    @property
    def has_text_tower(self) -> bool:
        return self.encode_text is not None

    def with_module(self, module: nn.Module) -> Encoder:
        """The same encoder (preprocessing, metadata) around another backbone, e.g. an adapted
        copy; its fingerprint is computed afresh."""
        return dataclasses.replace(self, module=module, _fingerprint=None)

    def preprocessing(self) -> dict[str, Any]:
        return {
            "input_size": self.input_size,
            "mean": list(self.mean),
            "std": list(self.std),
            "interpolation": self.interpolation,
        }

    def fingerprint(self) -> str:
        """Content hash of the weights (every parameter and buffer of ``module`` and of
        ``text_module``) and the preprocessing.

        New weights, or the same weights with other preprocessing, give a new fingerprint, so the
        feature cache misses exactly when it should.
        """
        if self._fingerprint is None:
            h = hashlib.sha256()
            h.update(type(self.module).__name__.encode())
            h.update(repr(sorted(self.preprocessing().items())).encode())
            text = self.text_module.state_dict() if self.text_module is not None else {}
            for key, tensor in [*self.module.state_dict().items(), *((f"text:{k}", v) for k, v in text.items())]:
                h.update(key.encode())
                t = tensor.detach().cpu().contiguous().reshape(-1)
                h.update(str(t.dtype).encode())
                h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
            self._fingerprint = h.hexdigest()
        return self._fingerprint


def preprocess(images: Sequence[np.ndarray], encoder: Encoder) -> torch.Tensor:
    """uint8 ``(H, W, C)`` images -> normalised float ``[B, 3, S, S]`` at the encoder's input size.

    Grey images are repeated to three channels; images are resized (antialiased when shrinking)
    with the encoder's interpolation, then normalised with its mean and std.
    """
    size = encoder.input_size
    mode = encoder.interpolation if encoder.interpolation in ("bilinear", "bicubic", "nearest") else "bilinear"
    out = torch.empty((len(images), 3, size, size), dtype=torch.float32)
    # Group same-shaped images so the common case (a task of equal-sized images) is one call.
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, img in enumerate(images):
        by_shape.setdefault(tuple(img.shape), []).append(i)
    for idx in by_shape.values():
        batch = torch.from_numpy(np.stack([images[i] for i in idx])).float().div_(255.0)
        if batch.ndim == 3:
            batch = batch[..., None]
        batch = batch.permute(0, 3, 1, 2)
        if batch.shape[1] == 1:
            batch = batch.expand(-1, 3, -1, -1)
        elif batch.shape[1] == 4:
            batch = batch[:, :3]
        if batch.shape[-2:] != (size, size):
            kwargs = {} if mode == "nearest" else {"align_corners": False, "antialias": True}
            batch = F.interpolate(batch, size=(size, size), mode=mode, **kwargs)
        out[idx] = batch
    mean = torch.tensor(encoder.mean, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(encoder.std, dtype=torch.float32).view(1, 3, 1, 1)
    return out.sub_(mean).div_(std)


def count_parameters(module: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts, shared parameters counted once."""
    seen: set[int] = set()
    trainable = total = 0
    for p in module.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        if p.requires_grad:
            trainable += p.numel()
    return trainable, total


class _Batches(torch.utils.data.Dataset[torch.Tensor]):
    """Preprocessed batch ``i`` of ``n`` images (a DataLoader's workers decode them in parallel)."""

    def __init__(self, encoder: Encoder, images_of: Callable[[Sequence[int]], list[np.ndarray]], n: int,
                 batch_size: int) -> None:
        # only the preprocessing travels to the workers, not the model
        self.encoder = Encoder(encoder.name, nn.Identity(), encoder.feature_dim, encoder.input_size, encoder.mean,
                               encoder.std, encoder.interpolation)
        self.images_of, self.n, self.batch_size = images_of, n, batch_size

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def __getitem__(self, i: int) -> torch.Tensor:
        start = i * self.batch_size
        return preprocess(self.images_of(range(start, min(start + self.batch_size, self.n))), self.encoder)


def loader_workers(device: str) -> int:
    """Decoding workers for an encode pass: none on the CPU (the model needs the cores), up to 4 on CUDA."""
    import os

    return min(4, max(1, (os.cpu_count() or 2) // 2)) if device.startswith("cuda") else 0


@torch.no_grad()
def encode(
    encoder: Encoder,
    images_of: Callable[[Sequence[int]], list[np.ndarray]],
    n: int,
    device: str = "cpu",
    batch_size: int = 256,
    module: nn.Module | None = None,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> np.ndarray:
    """Run ``module`` (default: the encoder's backbone) over ``n`` images, in eval mode, batch by
    batch; returns float32 features ``[n, D]``.

    On CUDA (bench.accel): channels_last for CNNs, autocast at ``--precision``, images decoded by
    ``workers`` DataLoader processes (default :func:`loader_workers`) into pinned memory, and an
    out-of-memory batch redone in halves (the smaller size kept for the rest of the pass). On the
    CPU each batch runs on one torch thread, as many batches at once as the process has threads
    (:func:`_cpu_batches`), so the features do not depend on the core count."""
    module = module if module is not None else encoder.module
    was_training = module.training
    module.eval()
    channels_last = use_channels_last(module, device)
    workers = loader_workers(device) if workers is None else workers
    dataset = _Batches(encoder, images_of, n, batch_size)
    batches: Iterable[torch.Tensor] = (dataset[i] for i in range(len(dataset)))
    if workers > 0:
        batches = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=workers,
                                              pin_memory=device.startswith("cuda"))

    def forward(x: torch.Tensor, size: int) -> list[np.ndarray]:
        out = []
        for start in range(0, len(x), size):
            with autocast(device):
                out.append(module(to_device(x[start : start + size], device, channels_last)).float().cpu().numpy())
        return out

    # filled batch by batch: the pass holds a few batches of images and the features, never every image
    feats = np.zeros((0, encoder.feature_dim), dtype=np.float32)
    done = 0

    def put(parts: list[np.ndarray]) -> None:
        nonlocal feats, done
        for part in parts:
            if done == 0:
                feats = np.empty((n, *part.shape[1:]), dtype=np.float32)
            feats[done : done + len(part)] = part
            done += len(part)

    try:
        if device.startswith("cuda") or workers > 0:
            size = batch_size
            for x in batches:
                parts, size = with_oom_backoff(lambda s: forward(x, s), size, "encode")  # noqa: B023
                put(parts)
                if progress is not None:
                    progress(len(x))
        else:
            for parts, count in _cpu_batches(dataset, forward, batch_size):
                put(parts)
                if progress is not None:
                    progress(count)
    finally:
        module.train(was_training)
    return feats


def _cpu_batches(dataset: _Batches, forward: Callable[[torch.Tensor, int], list[np.ndarray]],
                 batch_size: int) -> Iterator[tuple[list[np.ndarray], int]]:
    """The CPU encode pass: each batch preprocessed and run by ONE torch thread, as many batches at
    once as the process has torch threads, results in order.

    Why: a multi-threaded forward splits its float sums by thread count, so its features differ in
    the last bits from one core count to the next on some CPUs (a Lite0 forward differs by up to
    2e-6 between 1 and 2 threads on this project's Xeon VMs, contiguous and channels_last), and a
    cell's record must not depend on the machine's cores. A batch computed by one thread gives the
    same bits whatever the number of batches in flight; across batches the cores still all work
    (a Lite0 pass at 64 px, 2 cores: 1.84 s with two 1-thread batches in flight against 2.11 s
    with one 2-thread forward, tests/test_cell_threads.py)."""
    from concurrent.futures import Future, ThreadPoolExecutor

    before = torch.get_num_threads()
    lanes = max(1, before)

    size = [batch_size]  # an out-of-memory batch is redone in halves; the smaller size is kept

    def one(i: int) -> tuple[list[np.ndarray], int]:
        torch.set_num_threads(1)  # OpenMP's thread count is per calling thread
        with torch.no_grad():  # grad mode and autocast are thread-local too
            x = dataset[i]
            parts, size[0] = with_oom_backoff(lambda s: forward(x, s), size[0], "encode")
            return parts, len(x)

    torch.set_num_threads(1)
    try:
        if lanes == 1:
            for i in range(len(dataset)):
                yield one(i)
            return
        with ThreadPoolExecutor(lanes, thread_name_prefix="encode") as pool:
            pending: list[Future[tuple[list[np.ndarray], int]]] = []
            for i in range(len(dataset)):
                pending.append(pool.submit(one, i))
                if len(pending) >= 2 * lanes:  # a bounded window: memory stays a few batches
                    yield pending.pop(0).result()
            for future in pending:
                yield future.result()
    finally:
        torch.set_num_threads(before)


def check_patch_multiple(encoder: str, size: int, patch: int | None) -> None:
    """A ViT's input size must be a multiple of its patch size; else a user error naming the
    nearest valid ``--resolution`` values."""
    if patch and size % patch:
        lower, upper = size // patch * patch, -(-size // patch) * patch
        hint = f"--resolution {upper}" if lower == 0 else f"--resolution {lower} or {upper}"
        raise UserError(f"encoder {encoder!r}: input size {size} is not a multiple of its patch size {patch}; "
                        f"use {hint}")

"""Device and reproducibility for a run's processes: which device ``--device`` means here, and the
deterministic settings each worker applies (and records) before it trains."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench.errors import UserError
from bench.run.plan import check_device_name


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` where a GPU is visible, else ``cpu``; a CUDA device with no GPU is a UserError."""
    check_device_name(device)
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {device} was asked for but no CUDA GPU is available; use --device cpu or auto")
    return device


#: The torch intra-op thread count every cell computes with (protocol 3). A training step's float
#: sums depend on it (the backward pass splits its reductions by thread): the same fine-tune cell
#: scored 65.9% with 2 threads and 50.6% with 1. Fixed, a cell's record no longer depends on the
#: machine's cores or the executor (Ray's workers run 1 thread); parallelism across cells comes from
#: ``--jobs``. Encoding outside cells uses every core without depending on their number: each batch
#: runs on one thread, several batches at once (bench.encoders._cpu_batches); a multi-threaded
#: forward is NOT bitwise the same at 1 and 2 threads on every CPU (tests/test_cell_threads.py).
CELL_THREADS = 1


@contextmanager
def cell_threads() -> Iterator[int]:
    """Compute with :data:`CELL_THREADS` torch threads inside the block (a cell), then restore."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(CELL_THREADS)
    try:
        yield CELL_THREADS
    finally:
        torch.set_num_threads(before)


def deterministic_settings(device: str) -> dict[str, Any]:
    """Make this process reproducible on ``device`` and say how: on CUDA, cuDNN benchmark off,
    cuDNN deterministic, deterministic algorithms (warn-only where none exists) and the cuBLAS
    workspace setting they need; the torch thread count a cell computes with (:data:`CELL_THREADS`)."""
    import os

    import torch

    info: dict[str, Any] = {"torch_threads": CELL_THREADS}
    if device.startswith("cuda"):
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        torch.use_deterministic_algorithms(True, warn_only=True)
        info.update(cudnn_benchmark=torch.backends.cudnn.benchmark,
                    cudnn_deterministic=torch.backends.cudnn.deterministic,
                    deterministic_algorithms=torch.are_deterministic_algorithms_enabled(),
                    cublas_workspace_config=os.environ["CUBLAS_WORKSPACE_CONFIG"])
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name()
    from bench.accel import describe

    return info | describe(device)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (every cell and episode starts here)."""
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)

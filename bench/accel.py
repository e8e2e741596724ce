"""The GPU path's pieces: precision (bf16 autocast), channels_last, OOM back-off, ``torch.compile``,
and the per-process settings (``--precision``, ``--compile``) that switch them on.

The worker calls :func:`configure` once per cell group; the one training loop (bench.loop, so every
trained cell: fine-tuning, domain adaptation, continual, Tent) and the encode pass (bench.encoders)
read :func:`settings`, so strategies need no new arguments. On the CPU
with the defaults (fp32, no compile) every helper is the identity: the CPU numbers are unchanged.
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch
from torch import nn

from bench.errors import UserError

PRECISIONS = ("fp32", "bf16")
T = TypeVar("T")


@dataclass
class AccelSettings:
    """What this process runs with; ``oom_backoff`` collects the final batch of every pass that backed
    off (``{"encode": 64}``), for the records."""

    precision: str = "fp32"
    compile: bool = False
    oom_backoff: dict[str, int] = field(default_factory=dict)


_CURRENT = AccelSettings()


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise UserError(f"--precision {precision!r}: use fp32 (default) or bf16")
    return precision


def configure(precision: str = "fp32", compile: bool = False) -> AccelSettings:
    """Set this process's precision and compile switch (the worker, per cell group)."""
    global _CURRENT
    _CURRENT = AccelSettings(check_precision(precision), bool(compile))
    return _CURRENT


def settings() -> AccelSettings:
    return _CURRENT


def describe(device: str) -> dict[str, Any]:
    """The record's view of the GPU path (``device_info``): precision, compile, channels_last, OOM back-offs
    (on the CPU only what differs from the defaults)."""
    if device.startswith("cuda"):
        out: dict[str, Any] = {"precision": _CURRENT.precision, "compile": _CURRENT.compile, "channels_last": True}
    else:  # the CPU defaults add nothing (fp32, eager): CPU records say their thread count only
        out = {**({"precision": _CURRENT.precision} if _CURRENT.precision != "fp32" else {}),
               **({"compile": True} if _CURRENT.compile else {})}
    if _CURRENT.compile and os.environ.get("BENCH_COMPILE_BACKEND"):
        out["compile_backend"] = os.environ["BENCH_COMPILE_BACKEND"]
    if _CURRENT.oom_backoff:
        out["oom_backoff"] = dict(_CURRENT.oom_backoff)
    return out


def run_info(compiled: bool, final_batch: int, batch: int) -> dict[str, Any]:
    """What a training run adds to its ``info`` on the GPU path (nothing with the CPU defaults):
    ``precision`` when not fp32, ``compiled``, and ``oom_backoff`` (the micro-batch that fitted)."""
    out: dict[str, Any] = {}
    if _CURRENT.precision != "fp32":
        out["precision"] = _CURRENT.precision
    if compiled:
        out["compiled"] = True
    if final_batch < batch:
        out["oom_backoff"] = final_batch
    return out


def autocast(device: str, precision: str | None = None) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on ``device`` (CUDA or CPU) when the precision is bf16; else a no-op context."""
    precision = check_precision(precision or _CURRENT.precision)
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda" if device.startswith("cuda") else "cpu", dtype=torch.bfloat16)


def has_conv(module: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in module.modules())


def use_channels_last(module: nn.Module, device: str, enabled: bool | None = None) -> bool:
    """Convert a CNN to channels_last (by default on every device since protocol 3: on the CPU a
    Lite0 training step took 0.84 s against 1.30 s contiguous, a forward 0.16 against 0.20 s;
    ``enabled`` forces it either way); returns whether inputs should be channels_last too
    (:func:`to_device`). Transformers are left alone."""
    on = True if enabled is None else enabled
    if not on or not has_conv(module):
        return False
    module.to(memory_format=torch.channels_last)
    return True


def to_device(x: torch.Tensor, device: str, channels_last: bool = False) -> torch.Tensor:
    """An input batch on ``device`` (non-blocking from pinned memory), channels_last when asked."""
    x = x.to(device, non_blocking=device.startswith("cuda"))
    return x.contiguous(memory_format=torch.channels_last) if channels_last and x.ndim == 4 else x


def is_oom(exc: BaseException) -> bool:
    """CUDA's out-of-memory error, or a RuntimeError saying "out of memory" (older torch, other backends)."""
    oom_type = getattr(torch.cuda, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc)


def free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def with_oom_backoff(fn: Callable[[int], T], batch: int, what: str = "", min_batch: int = 1) -> tuple[T, int]:
    """``fn(batch)``; on an out-of-memory error, free memory, halve ``batch`` and retry (down to
    ``min_batch``, then the error propagates). Returns the result and the batch that worked; a
    back-off is remembered under ``what`` for the records (:func:`describe`)."""
    while True:
        try:
            result = fn(batch)
        except (RuntimeError, MemoryError) as exc:
            if not is_oom(exc) or batch <= min_batch:
                raise
            del exc
            free_memory()
            batch = max(min_batch, batch // 2)
            if what:
                _CURRENT.oom_backoff[what] = batch
            continue
        return result, batch


def maybe_compile(model: nn.Module, enabled: bool | None = None, **kwargs: Any) -> nn.Module:
    """``torch.compile(model)`` when ``--compile`` is on (or ``enabled``); else ``model`` itself. The
    compiled wrapper shares ``model``'s parameters, so the optimiser and the saved weights are the same.
    ``$BENCH_COMPILE_BACKEND`` picks another backend than inductor (``eager``: scripts/gpu_check.sh's
    CPU dry mode, which checks the plumbing without a C++ compile)."""
    if not (_CURRENT.compile if enabled is None else enabled):
        return model
    options: dict[str, Any] = {"backend": os.environ["BENCH_COMPILE_BACKEND"]} if os.environ.get(
        "BENCH_COMPILE_BACKEND") else {}
    return torch.compile(model, **options, **kwargs)  # type: ignore[return-value]


__all__ = ["PRECISIONS", "AccelSettings", "autocast", "check_precision", "configure", "describe", "free_memory",
           "has_conv", "is_oom", "maybe_compile", "run_info", "settings", "to_device", "use_channels_last",
           "with_oom_backoff"]

"""Finding and loading checkpoint files: ``--weights NAME=PATH`` > local caches > hub download.

Shared by encoder plugins so every family resolves weights the same way and fails the same way:
offline and not cached, within seconds, naming the encoder, the weights tag and ``--weights``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.errors import UserError


def hub_offline() -> bool:
    """True when the user asked for no network (``HF_HUB_OFFLINE``/``BENCH_OFFLINE``)."""
    return any(os.environ.get(v, "") not in ("", "0", "false") for v in ("HF_HUB_OFFLINE", "BENCH_OFFLINE"))


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a state dict from a ``.safetensors`` or torch file, with ``weights_only=True``.

    Unwraps the usual containers (``{"state_dict": ...}``, ``{"model": ...}``) and a
    ``module.`` prefix left by DataParallel.
    """
    import torch

    p = Path(path)
    if not p.is_file():
        raise UserError(f"weights file {str(p)!r} does not exist; pass --weights NAME=PATH with an existing file")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd: Any = load_file(str(p))
        else:
            sd = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UserError(f"cannot read weights file {str(p)!r}: {type(exc).__name__}: {exc}") from None
    for key in ("state_dict", "model", "module", "model_state_dict"):
        if isinstance(sd, Mapping) and key in sd and isinstance(sd[key], Mapping):
            sd = sd[key]
    if not isinstance(sd, Mapping):
        raise UserError(f"weights file {str(p)!r} holds a {type(sd).__name__}, not a state dict")
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return dict(sd)


def load_into(module: Any, state_dict: Mapping[str, Any], source: str, ignore: tuple[str, ...] = ()) -> None:
    """Load ``state_dict`` strictly; a mismatch is a user error listing the first missing and
    unexpected keys (and shape mismatches), not a 200-line traceback."""
    own = module.state_dict()
    sd = {k: v for k, v in state_dict.items() if not any(k.startswith(i) for i in ignore)}
    missing = [k for k in own if k not in sd and not any(k.startswith(i) for i in ignore)]
    unexpected = [k for k in sd if k not in own]
    shapes = [f"{k} {tuple(sd[k].shape)} vs {tuple(own[k].shape)}" for k in own if k in sd and sd[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (first: {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (first: {', '.join(unexpected[:3])})")
        if shapes:
            parts.append(f"shape mismatch: {'; '.join(shapes[:3])}")
        raise UserError(f"checkpoint {source} does not fit this model: {'; '.join(parts)}")
    module.load_state_dict(sd, strict=not ignore)

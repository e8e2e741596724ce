"""Public helpers for encoder plugins to find and load weights: ``--weights NAME=PATH`` > local caches > hub download.

Every family, built-in or third-party, resolves weights the same way and fails the same way:
offline and not cached, within seconds, naming the encoder, the weights tag and ``--weights``.

- :func:`load_checkpoint` / :func:`load_into`: read a state dict safely, load it with clear errors.
- :class:`WeightSource` + :func:`resolve`: a local file for a set of weights (the Hugging Face hub
  cache, the torch hub cache, extra folders, else a download when online).
- :func:`find_cached`, :func:`hub_offline`, :func:`reachable`: the pieces, for custom orders.

Hub clients retry for about 50 seconds before admitting there is no network, so :func:`resolve`
never hands an uncached file to them blind: with ``HF_HUB_OFFLINE``/``BENCH_OFFLINE`` set, or
when a 3-second HTTP check of the host fails, it raises a :class:`UserError` at once.
"""

from __future__ import annotations

import os
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import hf_hub_download, try_to_load_from_cache
from safetensors.torch import load_file

from bench.errors import UserError

#: Seconds the connectivity check may take before the network counts as absent.
CONNECT_TIMEOUT_S = 3.0
#: Checkpoint formats :func:`load_checkpoint` reads (``weights_only=True``).
LOADABLE_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")


def hub_offline() -> bool:
    """True when the user asked for no network (``HF_HUB_OFFLINE``/``BENCH_OFFLINE``)."""
    return any(os.environ.get(v, "") not in ("", "0", "false") for v in ("HF_HUB_OFFLINE", "BENCH_OFFLINE"))


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a state dict from a ``.safetensors`` or torch file, with ``weights_only=True``.

    Unwraps the usual containers (``{"state_dict": ...}``, ``{"model": ...}``) and a
    ``module.`` prefix left by DataParallel.
    """
    p = Path(path)
    if not p.is_file():
        raise UserError(f"weights file {str(p)!r} does not exist; pass --weights NAME=PATH with an existing file")
    try:
        if p.suffix == ".safetensors":
            sd: Any = load_file(str(p))
        else:
            sd = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as exc:  # a pickle that would run code is refused here (weights_only=True)
        first = (str(exc).strip().splitlines() or [""])[0]  # torch's refusal is a page of advice
        raise UserError(f"cannot read weights file {str(p)!r}: {type(exc).__name__}: {first}; "
                        "only plain tensors are loaded (weights_only=True)") from None
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
    shapes = [f"{k} {tuple(sd[k].shape)} vs {tuple(own[k].shape)}"
              for k in own if k in sd and sd[k].shape != own[k].shape]
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


@dataclass(frozen=True)
class WeightSource:
    """Where one set of weights lives: Hugging Face files and/or plain URLs (torch hub cache)."""

    encoder: str  # what the user typed, e.g. "dinov2:vitb14" (used in messages)
    tag: str  # e.g. "timm/vit_base_patch14_dinov2.lvd142m"
    hf: Sequence[tuple[str, str]] = ()  # (repo id, file name), preferred first
    urls: Sequence[str] = ()
    #: Extra folders that may already hold a URL's file (open_clip caches in ~/.cache/clip).
    url_dirs: Sequence[str] = field(default_factory=tuple)


def missing_message(src: WeightSource, why: str) -> str:
    """The one-line error for weights that are not cached and cannot be fetched."""
    base = src.encoder.split(":")[0]
    return (
        f"encoder {src.encoder!r}: weights {src.tag!r} are not in the local caches and {why}; "
        f"pass a local checkpoint with --weights NAME=PATH (here: --weights {base}=/path/to/weights.safetensors), "
        "or run once with network access to fill the cache"
    )


def torch_hub_checkpoints() -> Path:
    """The torch hub cache's checkpoint folder (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def _url_file(url: str) -> str | None:
    name = os.path.basename(url.split("?")[0])
    return name if name.endswith(LOADABLE_SUFFIXES) else None


def find_cached(src: WeightSource) -> str | None:
    """A local file holding ``src``'s weights, or None. Never touches the network."""
    for repo, filename in src.hf:
        hit = try_to_load_from_cache(repo_id=repo, filename=filename)
        if isinstance(hit, str) and os.path.isfile(hit):
            return hit
    for url in src.urls:
        name = _url_file(url)
        if name is None:
            continue
        for folder in (torch_hub_checkpoints(), *map(Path, src.url_dirs)):
            candidate = Path(folder).expanduser() / name
            if candidate.is_file():
                return str(candidate)
    return None


def reachable(host: str, port: int = 443, timeout: float = CONNECT_TIMEOUT_S) -> bool:
    """Whether ``https://host:port/`` answers an HTTP request within ``timeout`` seconds.

    A bare TCP connect is not enough (sandboxes and proxies accept connections they cannot
    serve), so this needs a TLS handshake and an HTTP status (any status counts). It runs in a
    daemon thread, so a hanging resolver cannot hold the caller longer than ``timeout``.
    """
    ok: list[bool] = []

    def attempt() -> None:
        try:
            urllib.request.urlopen(urllib.request.Request(f"https://{host}:{port}/", method="HEAD"),
                                   timeout=timeout).close()
            ok.append(True)
        except urllib.error.HTTPError:
            ok.append(True)  # the server answered
        except Exception:
            pass

    t = threading.Thread(target=attempt, daemon=True)
    t.start()
    t.join(timeout)
    return bool(ok)


def _host(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0]


def resolve(src: WeightSource) -> str:
    """Path of a local file with ``src``'s weights: cached, else downloaded; fails fast offline."""
    cached = find_cached(src)
    if cached is not None:
        return cached
    if hub_offline():
        raise UserError(missing_message(src, "the network is off (HF_HUB_OFFLINE or BENCH_OFFLINE is set)"))
    host = "huggingface.co" if src.hf else _host(next(iter(src.urls), "https://huggingface.co"))
    if not reachable(host):
        raise UserError(missing_message(src, f"{host} cannot be reached (no network?)"))
    errors = []
    for repo, filename in src.hf:
        try:
            return hf_hub_download(repo_id=repo, filename=filename)
        except Exception as exc:  # try the next file name / source
            errors.append(f"{repo}/{filename}: {type(exc).__name__}")
    for url in src.urls:
        name = _url_file(url)
        if name is None:
            continue
        target = torch_hub_checkpoints() / name
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            torch.hub.download_url_to_file(url, str(target), progress=True)
            return str(target)
        except Exception as exc:
            errors.append(f"{url}: {type(exc).__name__}")
    raise UserError(missing_message(src, f"the download failed ({'; '.join(errors) or 'no loadable source'})"))

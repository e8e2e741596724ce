"""Public helpers for encoder plugins to find, fetch and load weights: ``--weights NAME=PATH`` > local caches > hub.

Every family, built-in or third-party, resolves weights the same way and fails the same way: in
one line, within seconds, naming the encoder, the repository and file (or URL), the endpoint tried
and its answer, and the ways out (``--weights``, ``HF_ENDPOINT``, ``hf download REPO FILE``).

- :class:`WeightSource` + :func:`resolve_source` (:func:`resolve` for the path only): a local file
  for a set of weights and where it came from (:class:`Resolved`: repository, file, commit,
  endpoint), from the Hugging Face hub cache, the torch hub cache, extra folders, else a download.
- :func:`prefetch`: every encoder of a run resolved before its first cell (``bench run`` calls it).
- :func:`load_checkpoint` / :func:`load_into`: read a state dict safely, load it with clear errors.
- :func:`find_cached`; and from :mod:`bench.hub`: :func:`hub_offline`, :func:`hub_endpoint`, :func:`probe`.

Hub clients retry for about 50 seconds before admitting there is no network, so nothing uncached
is handed to them blind: offline by huggingface_hub's own rule (``HF_HUB_OFFLINE`` or
``TRANSFORMERS_OFFLINE`` in 1/ON/YES/TRUE) or ``BENCH_OFFLINE``, or when a 3-second HTTP check of
the endpoint huggingface_hub will use (``HF_ENDPOINT``) fails, the error comes at once. Importing
this module imports neither torch nor huggingface_hub.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import UserError
from bench.hub import (
    CONNECT_TIMEOUT_S,
    DEFAULT_ENDPOINT,
    TRUE_VALUES,
    downloaded_from,
    first_line,
    hub_answer,
    hub_endpoint,
    hub_offline,
    mirror_set,
    probe,
    reachable,
    remember_endpoint,
)

__all__ = ["CONNECT_TIMEOUT_S", "DEFAULT_ENDPOINT", "TRUE_VALUES", "hub_endpoint", "hub_offline", "mirror_set",
           "probe", "reachable", "LOADABLE_SUFFIXES", "TIMM_HF_FILES", "WeightSource", "Resolved", "load_checkpoint",
           "load_into", "timm_hub_source", "missing_message", "torch_hub_checkpoints", "find_cached_source",
           "find_cached", "resolve_source", "resolve", "prefetch"]

#: Checkpoint formats :func:`load_checkpoint` reads (``weights_only=True``).
LOADABLE_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")
#: timm's file names on the Hugging Face hub (``timm/<arch>.<tag>`` repositories), safest format first.
TIMM_HF_FILES = ("model.safetensors", "pytorch_model.bin")


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a state dict from a ``.safetensors`` or torch file, with ``weights_only=True``.

    Unwraps the usual containers (``{"state_dict": ...}``, ``{"model": ...}``) and a
    ``module.`` prefix left by DataParallel.
    """
    import torch
    from safetensors.torch import load_file

    p = Path(path)
    if not p.is_file():
        raise UserError(f"weights file {str(p)!r} does not exist; pass --weights NAME=PATH with an existing file")
    try:
        if p.suffix == ".safetensors":
            sd: Any = load_file(str(p))
        else:
            sd = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as exc:  # a pickle that would run code is refused here (weights_only=True)
        raise UserError(f"cannot read weights file {str(p)!r}: {type(exc).__name__}: {first_line(exc)}; "
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
    #: Branch, tag or commit of the hub files (``None``: ``main``).
    revision: str | None = None


@dataclass(frozen=True)
class Resolved:
    """A local weights file and where it came from (recorded in ``encoder_info.weights_source``)."""

    path: str
    origin: str  # "cache", "download" or "file" (--weights)
    repo: str | None = None
    file: str | None = None
    revision: str | None = None  # the commit, when the hub cache says it
    endpoint: str | None = None  # the endpoint it was downloaded from (None: unknown, or not from a hub)
    url: str | None = None

    def record(self) -> dict[str, Any]:
        """The JSON-ready description (no local path: records compare across machines)."""
        return {"origin": self.origin, "repo": self.repo, "file": self.file or os.path.basename(self.path),
                "revision": self.revision, "endpoint": self.endpoint, "url": self.url}


def timm_hub_source(encoder: str, arch: str, urls: Sequence[str] = ()) -> WeightSource:
    """The :class:`WeightSource` of timm's ``arch`` (``resnet50.a1_in1k``) on the hub, built
    without importing timm: ``timm/<arch>`` with :data:`TIMM_HF_FILES`, then ``urls``."""
    return WeightSource(encoder=encoder, tag=f"timm/{arch}", hf=[(f"timm/{arch}", f) for f in TIMM_HF_FILES],
                        urls=tuple(u for u in urls if u))


def _wanted(src: WeightSource) -> str:
    files = [f"{repo}/{name}" for repo, name in src.hf] or list(src.urls) or [src.tag]
    return " or ".join(files)


def missing_message(src: WeightSource, why: str) -> str:
    """The one-line error for weights that are not cached and cannot be fetched."""
    base = src.encoder.split(":")[0]
    name = src.hf[0][1] if src.hf else (_url_file(next(iter(src.urls), "")) or "weights.safetensors")
    fetch = f"`hf download {src.hf[0][0]} {src.hf[0][1]}`" if src.hf else "a download of the URL into $TORCH_HOME"
    return (f"encoder {src.encoder!r}: weights {_wanted(src)} are not in the local caches and {why}; "
            f"pass a local file with --weights {base}=/path/to/{name}, set HF_ENDPOINT to a reachable mirror, "
            f"or fill the cache with {fetch}")


def torch_hub_checkpoints() -> Path:
    """The torch hub cache's checkpoint folder (``$TORCH_HOME/hub/checkpoints``)."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def _url_file(url: str) -> str | None:
    name = os.path.basename(url.split("?")[0])
    return name if name.endswith(LOADABLE_SUFFIXES) else None


def _commit_of(path: str) -> str | None:
    parts = Path(path).parts  # .../models--org--name/snapshots/<commit>/file
    return parts[parts.index("snapshots") + 1] if "snapshots" in parts[:-1] else None


def find_cached_source(src: WeightSource) -> Resolved | None:
    """A local file holding ``src``'s weights and its origin, or None. Never touches the network."""
    from huggingface_hub import try_to_load_from_cache

    for repo, filename in src.hf:
        hit = try_to_load_from_cache(repo_id=repo, filename=filename, revision=src.revision)
        if isinstance(hit, str) and os.path.isfile(hit):
            return Resolved(hit, "cache", repo=repo, file=filename, revision=_commit_of(hit),
                            endpoint=downloaded_from(hit))
    for url in src.urls:
        name = _url_file(url)
        for folder in (torch_hub_checkpoints(), *map(Path, src.url_dirs)) if name else ():
            candidate = Path(folder).expanduser() / name  # type: ignore[operator]
            if candidate.is_file():
                return Resolved(str(candidate), "cache", file=name, url=url)
    return None


def find_cached(src: WeightSource) -> str | None:
    """The path of a local file holding ``src``'s weights, or None. Never touches the network."""
    hit = find_cached_source(src)
    return hit.path if hit is not None else None


def resolve_source(src: WeightSource, probes: dict[str, tuple[bool, str]] | None = None) -> Resolved:
    """A local file with ``src``'s weights: cached, else downloaded (with a progress bar); fails
    fast and in one line when offline, unreachable or refused. ``probes`` shares connectivity
    checks between calls (``{endpoint: probe(endpoint)}``)."""
    cached = find_cached_source(src)
    if cached is not None:
        return cached
    if hub_offline():
        raise UserError(missing_message(src, "the network is off (HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE/BENCH_OFFLINE)"))
    probes = {} if probes is None else probes
    errors: list[str] = []
    endpoint = hub_endpoint()
    if src.hf:
        if endpoint not in probes:
            probes[endpoint] = probe(endpoint)
        answered, line = probes[endpoint]
        if not answered:
            errors.append(f"{endpoint} cannot be reached ({line})")
        else:
            from huggingface_hub import hf_hub_download

            for repo, filename in src.hf:
                if any(e.startswith(f"{repo}: ") for e in errors):
                    continue  # the repository or revision is missing: its other files are too
                try:
                    path = hf_hub_download(repo_id=repo, filename=filename, revision=src.revision, endpoint=endpoint)
                except Exception as exc:
                    answer = hub_answer(exc)
                    whole = any(c in answer for c in ("RepoNotFound", "RevisionNotFound", "GatedRepo"))
                    errors.append(f"{repo}: {answer}" if whole else f"{repo}/{filename}: {answer}")
                    continue
                remember_endpoint(path, endpoint)
                return Resolved(path, "download", repo=repo, file=filename, revision=_commit_of(path),
                                endpoint=endpoint)
            errors = [f"{endpoint} answered {e}" if not e.startswith(endpoint) else e for e in errors]
    for url in [] if (mirror_set() and src.hf) else src.urls:  # a mirror serves hub files only
        name = _url_file(url)
        if name is None:
            continue
        if url not in probes:
            probes[url] = probe(url)
        answered, line = probes[url]
        if not answered:
            errors.append(f"{url} cannot be reached ({line})")
            continue
        import torch

        target = torch_hub_checkpoints() / name
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            torch.hub.download_url_to_file(url, str(target), progress=True)
        except Exception as exc:
            errors.append(f"{url} answered {type(exc).__name__}: {first_line(exc)}")
            continue
        return Resolved(str(target), "download", file=name, url=url)
    raise UserError(missing_message(src, "; ".join(errors) or "no loadable source is known"))


def resolve(src: WeightSource) -> str:
    """Path of a local file with ``src``'s weights (see :func:`resolve_source`)."""
    return resolve_source(src).path


def prefetch(registry: Any, encoder_names: Sequence[str], weights_overrides: Mapping[str, str],
             log: Any = None) -> dict[str, Resolved]:
    """Resolve the weights of every pretrained encoder of a run before its first cell.

    ``registry`` resolves a name to ``(EncoderSpec, variant)``; specs without a
    ``weights_resolver`` are skipped (their loaders fetch nothing, or on their own). A
    ``--weights`` file is checked to exist. Every failure is collected: one :class:`UserError`
    line lists them all, so a run never fails on its second encoder after the first one's cells.
    """
    from bench.specs import EncoderRequest, resolve_loader

    say = log or (lambda msg: print(msg, file=sys.stderr))
    out: dict[str, Resolved] = {}
    failures: list[str] = []
    probes: dict[str, tuple[bool, str]] = {}
    for name in dict.fromkeys(encoder_names):
        spec, variant = registry.resolve(name)
        # the --weights file for NAME:VARIANT, given for the full name or the bare one (as cells read it)
        override = weights_overrides.get(name) or weights_overrides.get(name.split(":")[0])
        try:
            if override:
                if not Path(override).is_file():
                    raise UserError(f"encoder {name!r}: --weights file {override!r} does not exist")
                out[name] = Resolved(override, "file")
                continue
            resolver = getattr(spec, "weights_resolver", None)
            src = resolve_loader(resolver)(EncoderRequest(name=spec.name, variant=variant)) if resolver else None
            if src is not None:
                if find_cached_source(src) is None:
                    say(f"weights for {name}: fetching {_wanted(src)} from {hub_endpoint()}")
                out[name] = resolve_source(src, probes)
        except UserError as exc:
            failures.append(str(exc))
    if failures:
        raise UserError(failures[0] if len(failures) == 1 else
                        f"{len(failures)} encoders lack weights: " + " | ".join(failures))
    return out

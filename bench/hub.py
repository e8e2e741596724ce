"""Where the Hugging Face hub is and whether to use it: huggingface_hub's offline rule, ``HF_ENDPOINT``, a probe.

The pieces :mod:`bench.weights` resolves weights with (it re-exports the public ones):

- :func:`hub_offline`: huggingface_hub's own rule (``HF_HUB_OFFLINE``, else ``TRANSFORMERS_OFFLINE``,
  true for 1/ON/YES/TRUE in any case), read at call time, or ``BENCH_OFFLINE``.
- :func:`hub_endpoint` / :func:`mirror_set`: the endpoint huggingface_hub uses (``HF_ENDPOINT``).
- :func:`probe` / :func:`reachable`: a bounded HTTP check of an endpoint or URL's host.
- :func:`hub_answer`: the first line of a hub error (status, ``X-Error-Code``, message).
- :func:`remember_endpoint` / :func:`downloaded_from`: which endpoint bench downloaded a cached
  file from (the hub cache does not keep it), for the records.
"""

from __future__ import annotations

import json
import os
import threading
import urllib.error
import urllib.request
from pathlib import Path

#: Seconds the connectivity check may take before the network counts as absent.
CONNECT_TIMEOUT_S = 3.0
#: huggingface_hub's default endpoint (``HF_ENDPOINT`` replaces it).
DEFAULT_ENDPOINT = "https://huggingface.co"
#: huggingface_hub's true values for its boolean environment variables (compared upper-cased).
TRUE_VALUES = frozenset({"1", "ON", "YES", "TRUE"})


def _true(value: str | None) -> bool:
    return (value or "").strip().upper() in TRUE_VALUES


def hub_offline() -> bool:
    """True when the user asked for no network: huggingface_hub's rule, read now
    (``HF_HUB_OFFLINE``, else ``TRANSFORMERS_OFFLINE``), or ``BENCH_OFFLINE``."""
    env = os.environ
    return _true(env.get("HF_HUB_OFFLINE") or env.get("TRANSFORMERS_OFFLINE")) or _true(env.get("BENCH_OFFLINE"))


def hub_endpoint() -> str:
    """The endpoint downloads go to: ``HF_ENDPOINT`` (a mirror), else https://huggingface.co."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).strip().rstrip("/")


def mirror_set() -> bool:
    """Whether ``HF_ENDPOINT`` names a mirror (then plain-URL fallbacks are not tried)."""
    return bool(os.environ.get("HF_ENDPOINT", "").strip())


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (clients append pages of advice)."""
    return (str(exc).strip().splitlines() or [""])[0]


def probe(url: str, timeout: float = CONNECT_TIMEOUT_S) -> tuple[bool, str]:
    """``(answered, first line)``: whether ``url``'s scheme/host/port answers an HTTP request within
    ``timeout`` seconds (any status counts), and the status line or the error.

    A bare TCP connect is not enough (sandboxes and proxies accept connections they cannot
    serve). It runs in a daemon thread, so a hanging resolver cannot hold the caller longer.
    """
    scheme, _, rest = url.partition("://")
    root = f"{scheme}://{rest.split('/', 1)[0]}/"
    out: list[tuple[bool, str]] = []

    def attempt() -> None:
        try:
            with urllib.request.urlopen(urllib.request.Request(root, method="HEAD"), timeout=timeout) as r:
                out.append((True, f"HTTP {r.status} {r.reason}"))
        except urllib.error.HTTPError as exc:
            out.append((True, f"HTTP {exc.code} {exc.reason}"))  # the server answered
        except Exception as exc:
            out.append((False, f"{type(exc).__name__}: {first_line(exc)}"))

    t = threading.Thread(target=attempt, daemon=True)
    t.start()
    t.join(timeout)
    return out[0] if out else (False, f"no answer within {timeout:g} s")


def reachable(host: str, port: int = 443, timeout: float = CONNECT_TIMEOUT_S, scheme: str = "https") -> bool:
    """Whether ``scheme://host:port/`` answers an HTTP request within ``timeout`` seconds."""
    return probe(f"{scheme}://{host}:{port}/", timeout)[0]


def hub_answer(exc: Exception) -> str:
    """The first line of the hub's answer: status, error code and message (not the client's advice)."""
    response = getattr(exc, "response", None)
    if response is None:
        return f"{type(exc).__name__}: {first_line(exc)}"
    code = response.headers.get("X-Error-Code") or response.reason_phrase
    message = response.headers.get("X-Error-Message")
    return f"HTTP {response.status_code} {code}" + (f" ({message})" if message else "")


def _provenance_file() -> Path:
    from bench.loading import cache_root

    return cache_root() / "weights-endpoints.json"


def downloaded_from(path: str) -> str | None:
    """The endpoint a cached file was downloaded from by bench (the hub cache does not keep it)."""
    try:
        return json.loads(_provenance_file().read_text()).get(os.path.realpath(path))
    except (OSError, ValueError):
        return None


def remember_endpoint(path: str, endpoint: str) -> None:
    record = _provenance_file()
    try:
        known = json.loads(record.read_text())
    except (OSError, ValueError):
        known = {}
    known[os.path.realpath(path)] = endpoint
    record.parent.mkdir(parents=True, exist_ok=True)
    tmp = record.with_name(f"{record.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(known, indent=1, sort_keys=True))
    os.replace(tmp, record)

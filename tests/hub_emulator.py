"""A Hugging Face hub on 127.0.0.1 for tests: answers huggingface_hub's file resolution the way the real hub does.

What huggingface_hub (``hf_hub_download``) reads, and what this server sends:

- ``HEAD``/``GET /{repo}/resolve/{revision}/{filename}``: a small file answers 200 with
  ``X-Repo-Commit`` (the 40-hex commit), ``ETag`` (its git blob id) and ``Content-Length``; a
  large (LFS) file answers ``302`` to another host (``localhost`` instead of ``127.0.0.1``: the
  "CDN", so the client does not follow it for the metadata) with ``X-Repo-Commit``,
  ``X-Linked-Etag`` (the file's sha256) and ``X-Linked-Size``; ``GET /lfs/{sha256}`` there
  serves the bytes.
- A missing repository: 404 with ``X-Error-Code: RepoNotFound``; a missing revision: 404 with
  ``RevisionNotFound``; a missing file: 404 with ``EntryNotFound`` (and ``X-Repo-Commit``).
- ``HEAD /``: 200 (the connectivity check).

Every request is logged in :attr:`Hub.requests`. The server runs in a daemon thread and stops when
the ``with`` block ends (each request is bounded by a socket timeout).
"""

from __future__ import annotations

import hashlib
import shutil
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

#: Files at least this big are served the LFS way (the real hub's threshold is 10 MB).
LFS_MIN_BYTES = 10 * 1024 * 1024


@dataclass
class Repo:
    files: dict[str, Path]
    #: branch or tag -> commit; a 40-hex commit also resolves to itself.
    revisions: dict[str, str]
    sha256: dict[str, str] = field(default_factory=dict)
    etags: dict[str, str] = field(default_factory=dict)


def _digest(path: Path, algo: str) -> str:
    h = hashlib.new(algo)
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Hub:
    """The emulated hub: ``add`` repositories, use :attr:`endpoint` as ``HF_ENDPOINT``."""

    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self._blobs: dict[str, Path] = {}
        self._server: ThreadingHTTPServer | None = None

    def add(self, repo: str, files: dict[str, Path], revisions: tuple[str, ...] = ("main",)) -> str:
        """Serve ``files`` (name -> local file) as ``repo`` at ``revisions``; returns the commit."""
        commit = hashlib.sha1(repo.encode() + b"".join(sorted(f.encode() for f in files))).hexdigest()
        entry = Repo(files=dict(files), revisions={r: commit for r in revisions})
        for name, path in files.items():
            if path.stat().st_size >= LFS_MIN_BYTES:
                entry.sha256[name] = _digest(path, "sha256")
                self._blobs[entry.sha256[name]] = path
                entry.etags[name] = hashlib.sha1(entry.sha256[name].encode()).hexdigest()  # the pointer's blob id
            else:
                entry.etags[name] = _digest(path, "sha1")
        self.repos[repo] = entry
        return commit

    @property
    def port(self) -> int:
        assert self._server is not None, "start the hub first (with Hub() as hub)"
        return int(self._server.server_address[1])

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Hub:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 10  # a stuck client cannot hold a handler thread for longer

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_HEAD(self) -> None:
                hub._answer(self, body=False)

            def do_GET(self) -> None:
                hub._answer(self, body=True)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # -- the answers --------------------------------------------------------------------------

    def _send(self, h: BaseHTTPRequestHandler, status: int, headers: dict[str, str], path: Path | None = None,
              body: bool = False) -> None:
        h.send_response(status)
        for key, value in headers.items():
            h.send_header(key, value)
        if path is not None:
            h.send_header("Content-Length", str(path.stat().st_size))
        elif "Content-Length" not in headers:
            h.send_header("Content-Length", "0")
        h.end_headers()
        if body and path is not None:
            with path.open("rb") as f:
                shutil.copyfileobj(f, h.wfile, 1 << 20)

    def _error(self, h: BaseHTTPRequestHandler, code: str, message: str, extra: dict[str, str] | None = None) -> None:
        self._send(h, 404, {"X-Error-Code": code, "X-Error-Message": message, **(extra or {})})

    def _answer(self, h: BaseHTTPRequestHandler, body: bool) -> None:
        path = urllib.parse.urlsplit(h.path).path
        self.requests.append((h.command, path))
        if path == "/":
            return self._send(h, 200, {})
        if path.startswith("/lfs/") and path[5:] in self._blobs:
            blob = self._blobs[path[5:]]
            return self._send(h, 200, {"ETag": f'"{path[5:]}"'}, blob, body)
        repo_id, sep, rest = path.lstrip("/").partition("/resolve/")
        if not sep:
            return self._send(h, 404, {})
        revision, _, filename = rest.partition("/")
        revision, filename = urllib.parse.unquote(revision), urllib.parse.unquote(filename)
        repo = self.repos.get(urllib.parse.unquote(repo_id))
        if repo is None:
            return self._error(h, "RepoNotFound", "Repository not found")
        commit = repo.revisions.get(revision) or (revision if revision in repo.revisions.values() else None)
        if commit is None:
            return self._error(h, "RevisionNotFound", f"Invalid rev id: {revision}")
        if filename not in repo.files:
            return self._error(h, "EntryNotFound", "Entry not found", {"X-Repo-Commit": commit})
        file = repo.files[filename]
        if filename in repo.sha256:
            sha = repo.sha256[filename]
            return self._send(h, 302, {
                "Location": f"http://localhost:{self.port}/lfs/{sha}", "X-Repo-Commit": commit,
                "X-Linked-Etag": f'"{sha}"', "X-Linked-Size": str(file.stat().st_size),
                "ETag": f'"{repo.etags[filename]}"'})
        return self._send(h, 200, {"X-Repo-Commit": commit, "ETag": f'"{repo.etags[filename]}"'}, file, body)

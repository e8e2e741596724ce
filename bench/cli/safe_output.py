"""Terminal safety for everything the CLI prints: control characters from plugins or results files
(an ANSI escape in a class-folder name, an encoder name in a foreign results.jsonl) are shown as
escapes, never interpreted by the terminal. Newlines and tabs pass: they are the CLI's own layout."""

from __future__ import annotations

import re
from typing import Any, TextIO

#: C0 controls except tab and newline, DEL, and the C1 range (which some terminals also obey).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def escape_controls(text: str) -> str:
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


class SafeStream:
    """Wraps a text stream so that every write goes through :func:`escape_controls`."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        return self._stream.write(escape_controls(text))

    def __getattr__(self, name: str) -> Any:  # flush, isatty, fileno, encoding, ...
        return getattr(self._stream, name)

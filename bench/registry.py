"""Name -> spec lookup, one registry per kind of thing (encoders, strategies, tasks, executors).

Duplicate names fail at start-up naming both plugins; unknown names raise with suggestions.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from typing import Generic, TypeVar

from bench.errors import PluginError, UserError
from bench.specs import EncoderSpec, _Spec

S = TypeVar("S", bound=_Spec)


class Registry(Generic[S]):
    def __init__(self, kind: str) -> None:
        self.kind = kind  # "encoder", "strategy", ... (used in messages)
        self._specs: dict[str, S] = {}

    def add(self, spec: S, plugin: str) -> None:
        if not isinstance(spec, _Spec) or not spec.name:
            raise PluginError(f"plugin {plugin!r} registered a {self.kind} that is not a named spec: {spec!r}")
        if spec.name in self._specs:
            other = self._specs[spec.name].plugin
            raise PluginError(
                f"{self.kind} {spec.name!r} is registered by two plugins: {other!r} and {plugin!r}; "
                f"block one with BENCH_DISABLE_PLUGINS={plugin}"
            )
        object.__setattr__(spec, "plugin", plugin)
        self._specs[spec.name] = spec

    def __contains__(self, name: str) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[S]:
        return iter(sorted(self._specs.values(), key=lambda s: s.name))

    def __len__(self) -> int:
        return len(self._specs)

    def names(self) -> list[str]:
        return sorted(self._specs)

    def get(self, name: str) -> S:
        """The spec registered under exactly ``name``; unknown names raise with suggestions."""
        try:
            return self._specs[name]
        except KeyError:
            raise UserError(self._unknown_message(name)) from None

    def resolve(self, name: str) -> tuple[S, str | None]:
        """Resolve a user-given name to ``(spec, variant)``.

        Tries, in order: the exact name; ``NAME:VARIANT``; specs whose ``pattern`` matches the
        whole name (parametric tasks get the full name back as the variant).
        """
        name = name.strip()
        if name in self._specs:
            return self._specs[name], None
        base, sep, variant = name.partition(":")
        if sep and base in self._specs:
            spec = self._specs[base]
            known = spec.variants if isinstance(spec, EncoderSpec) and not spec.metadata.open_variants else None
            if known and variant not in known:
                raise UserError(
                    f"unknown variant {variant!r} of {self.kind} {base!r}; known: {', '.join(sorted(known))}"
                )
            return spec, variant
        for spec in self:
            pattern = getattr(spec, "pattern", None)
            if pattern and re.fullmatch(pattern, name):
                return spec, name
        raise UserError(self._unknown_message(name))

    def _unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        return f"unknown {self.kind} {name!r}{hint} (see `bench list {self.kind_plural}`)"

    @property
    def kind_plural(self) -> str:
        return {"strategy": "strategies"}.get(self.kind, self.kind + "s")

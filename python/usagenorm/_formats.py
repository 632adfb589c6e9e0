"""Formats described in a file instead of Rust: ``Format``, ``register_format``, and the formats
installed packages provide through the ``usagenorm.formats`` entry-point group.

A format file is TOML (the language is in ``docs/formats.md``). It is compiled once, by the
Rust core, into the same reader the built-in formats run on.
"""

from __future__ import annotations

import json
import os
from importlib import metadata
from pathlib import Path
from typing import Any

from . import _core

ENTRY_POINT_GROUP = "usagenorm.formats"


class Format:
    """A provider format compiled from a format file (TOML) or a dict of the same keys.

    Example:
        >>> fmt = Format.from_dict({
        ...     "id": "acme_ci", "title": "Acme CI minutes",
        ...     "page": {"records": "jobs", "detect": {"array": "jobs", "has": ["acmeAccount"]}},
        ...     "record": {"detect": {"has": ["jobId", "minutes"]}},
        ...     "columns": {
        ...         "record_id": "jobId", "metric": {"value": "ci_minutes"}, "usage_start": "startedAt",
        ...         "quantity": {"path": "minutes", "type": "duration", "unit": "minutes"},
        ...         "unit": {"value": "Hours"},
        ...     },
        ... })
        >>> fmt.id
        'acme_ci'
    """

    __slots__ = ("_compiled",)

    def __init__(self, compiled: Any) -> None:
        if not isinstance(compiled, _core.CompiledFormat):
            raise TypeError("use Format.from_file, Format.from_toml or Format.from_dict")
        self._compiled = compiled

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Format:
        """Compile a format file (TOML). Raises ``FormatError`` naming the file and the key."""
        p = Path(path)
        return cls(_core.compile_format(p.read_text(encoding="utf-8"), str(p), "toml"))

    @classmethod
    def from_toml(cls, text: str, *, name: str = "<toml>") -> Format:
        """Compile a format from TOML text; ``name`` stands for the file in errors."""
        return cls(_core.compile_format(text, name, "toml"))

    @classmethod
    def from_dict(cls, spec: dict[str, Any], *, name: str = "<dict>") -> Format:
        """Compile a format from a dict with the keys of a format file."""
        if not isinstance(spec, dict):
            raise TypeError(f"a format is a dict, not {type(spec).__name__}")
        return cls(_core.compile_format(json.dumps(spec), name, "json"))

    @property
    def id(self) -> str:
        """The format's id: its rows' ``provider``."""
        return str(self._compiled.id)

    @property
    def title(self) -> str:
        return str(self._compiled.title)

    @property
    def origin(self) -> str:
        """Where the format was defined (its file, ``<dict>``, or the package that provides it)."""
        return str(self._compiled.origin)

    def __repr__(self) -> str:
        return f"Format({self.id!r}, origin={self.origin!r})"


_registered: list[Format] = []
_installed: list[Format] | None = None
# Formats read in place of the built-in format of the same id (see `replacing`).
_replacing: list[Format] = []


def _from_entry_point(ep: metadata.EntryPoint) -> list[Format]:
    """What an entry point gives: a Format, a path to a format file, or a list of them (or a
    callable returning one of these)."""
    value = ep.load()
    if callable(value) and not isinstance(value, Format):
        value = value()
    items = value if isinstance(value, list | tuple) else [value]
    out = []
    for item in items:
        if isinstance(item, Format):
            out.append(item)
        elif isinstance(item, str | os.PathLike):
            out.append(Format.from_file(item))
        else:
            raise TypeError(f"entry point {ep.name} ({ep.value}) gave {type(item).__name__}, not a Format or a path")
    return out


def installed() -> list[Format]:
    """The formats installed packages provide (entry-point group ``usagenorm.formats``), loaded
    once per process."""
    global _installed
    if _installed is None:
        found: list[Format] = []
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            found.extend(_from_entry_point(ep))
        _installed = found
    return _installed


def register_format(fmt: Format | str | os.PathLike[str]) -> Format:
    """Add a format (or a format file's path) for the rest of the process: ``normalize`` then
    detects it beside the built-in formats. Refused (``ValueError``) when its id is taken or its
    detection overlaps another format's, naming both.

    Example:
        >>> register_format("formats/acme_ci.toml")  # doctest: +SKIP
    """
    if not isinstance(fmt, Format):
        fmt = Format.from_file(fmt)
    _core.formats([f._compiled for f in [*installed(), *_registered, fmt]])
    _registered.append(fmt)
    return fmt


def active(extra: list[Format] | tuple[Format, ...] | None = None) -> list[Any]:
    """The compiled formats a call reads beside the built-in ones: installed, registered, then
    the call's own."""
    extra = list(extra or [])
    for f in extra:
        if not isinstance(f, Format):
            raise TypeError(f"formats= takes usagenorm.Format objects, not {type(f).__name__}")
    return [f._compiled for f in [*installed(), *_registered, *extra]]


def replacements() -> list[Any]:
    """The compiled formats that stand in for built-in ones (see ``replacing``)."""
    return [f._compiled for f in _replacing]


class replacing:
    """Within the block, ``fmt`` is read in place of the built-in format of the same id.

    This is how the twins (``formats/twins/*.toml``, the Rust formats re-expressed as files)
    are compared with the Rust formats on every fixture, and timed against them.

    Example:
        >>> with replacing(Format.from_file("formats/twins/gitpod.toml")):  # doctest: +SKIP
        ...     df = normalize("exports/gitpod.json")
    """

    def __init__(self, fmt: Format) -> None:
        self.fmt = fmt

    def __enter__(self) -> Format:
        _core.formats([], [*replacements(), self.fmt._compiled])
        _replacing.append(self.fmt)
        return self.fmt

    def __exit__(self, *exc: object) -> None:
        _replacing.remove(self.fmt)

"""Turns what a user passes to ``normalize`` into the (name, bytes-or-None) list the core reads.

A ``str`` or ``os.PathLike`` is always a path: a file, a directory (every ``*.json``,
``*.jsonl``, ``*.ndjson``, optionally ``.gz``, below it, recursively) or a glob. Bytes-likes and
binary file objects are JSON or NDJSON text; dicts and lists of dicts are API responses.
"""

from __future__ import annotations

import glob
import io
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from . import _core, _remote

MEMORY = "<memory>"
EXTENSIONS = (".json", ".jsonl", ".ndjson", ".json.gz", ".jsonl.gz", ".ndjson.gz")

Source = tuple[str, "bytes | None"]


def _shown(text: str) -> str:
    """A path for a message: at most 80 characters."""
    return text if len(text) <= 80 else text[:77] + "..."


def _expand_path(text: str) -> list[Source]:
    if os.path.isdir(text):
        found = []
        for root, _dirs, files in os.walk(text):
            found.extend(os.path.join(root, f) for f in files if f.lower().endswith(EXTENSIONS))
        if not found:
            raise FileNotFoundError(f"{text}: no *.json, *.jsonl or *.ndjson files (or .gz) below this directory")
        # Sorted as the full paths, as a glob's matches are: `a/x.json` before `b.json`.
        return [(f, None) for f in sorted(found)]
    if not os.path.exists(text) and (text.lstrip()[:1] in ("{", "[") or "\n" in text):
        raise FileNotFoundError(
            f"{_shown(text)!r}: no such file or directory. A str is always a path or glob, never JSON "
            "text: pass JSON or NDJSON text as bytes (text.encode())"
        )
    if glob.has_magic(text):
        matches = sorted(p for p in glob.glob(text, recursive=True) if os.path.isfile(p))
        if not matches:
            raise FileNotFoundError(f"{_shown(text)}: no file matches this pattern")
        return [(m, None) for m in matches]
    if not os.path.exists(text):
        raise FileNotFoundError(f"{_shown(text)}: no such file or directory")
    return [(text, None)]


def _dumps(obj: Any) -> bytes:
    """JSON text of a dict or list of dicts, compact (less to write and to parse).

    Written by the core straight from the objects (the text of ``json.dumps(obj,
    separators=(",", ":"), allow_nan=False, ensure_ascii=False)``, about three times faster).
    What JSON text cannot hold, a NaN or infinite float or a lone surrogate in a string, is
    written so that the record holding it is rejected by name, like any other bad value.
    """
    return _core.dumps(obj)


def _one(obj: Any, options: Mapping[str, Any] | None) -> list[Source]:
    if isinstance(obj, str) and _remote.is_url(obj):
        # Listed now, downloaded by `fetch`.
        return [(url, None) for url in _remote.expand(obj, options, EXTENSIONS)]
    if isinstance(obj, str | os.PathLike):
        return _expand_path(os.fspath(obj))
    if isinstance(obj, bytes):
        return [(MEMORY, obj)]
    if isinstance(obj, bytearray | memoryview):
        return [(MEMORY, bytes(obj))]
    if isinstance(obj, io.IOBase) or hasattr(obj, "read"):
        data = obj.read()
        if isinstance(data, str):
            raise TypeError("file objects must be opened in binary mode ('rb')")
        return [(getattr(obj, "name", MEMORY) if isinstance(getattr(obj, "name", None), str) else MEMORY, bytes(data))]
    if isinstance(obj, dict):
        return [(MEMORY, _dumps(obj))]
    raise TypeError(
        "a source is a path or glob (str / os.PathLike), bytes-like JSON or NDJSON text, a binary "
        f"file object, a dict, or a list of these; got {type(obj).__name__}"
    )


def fetch(
    sources: Sequence[tuple[str, bytes | bytearray | None]], options: Mapping[str, Any] | None = None
) -> list[tuple[str, bytes | bytearray | None]]:
    """``sources`` with the objects of URL sources downloaded (in parallel)."""
    remote = [name for name, data in sources if data is None and _remote.is_url(name)]
    if not remote:
        return list(sources)
    got = dict(_remote.download(remote, options))
    return [(name, got[name]) if data is None and name in got else (name, data) for name, data in sources]


def collect(sources: Any, options: Mapping[str, Any] | None = None) -> list[Source]:
    """Expands ``sources`` into ``(name, data)`` pairs; ``data`` is None for files and for
    objects in stores (``fetch`` downloads those)."""
    if isinstance(sources, list | tuple) and sources and all(isinstance(s, dict) for s in sources):
        # The list a paginated API call returned: one in-memory document.
        return [(MEMORY, _dumps(list(sources)))]
    if isinstance(sources, list | tuple) or (
        isinstance(sources, Iterable)
        and not isinstance(sources, str | bytes | bytearray | memoryview | dict | io.IOBase)
        and not hasattr(sources, "read")
        and not isinstance(sources, os.PathLike)
    ):
        out: list[Source] = []
        for s in sources:
            out.extend(_one(s, options))
        return out
    return _one(sources, options)

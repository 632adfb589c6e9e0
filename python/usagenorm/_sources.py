"""Turns what a user passes to ``normalize`` into the (name, bytes-or-None) list the core reads.

A ``str`` or ``os.PathLike`` is always a path: a file, a directory (every ``*.json``,
``*.jsonl``, ``*.ndjson``, optionally ``.gz``, below it, recursively) or a glob. Bytes-likes and
binary file objects are JSON or NDJSON text; dicts and lists of dicts are API responses.
"""

from __future__ import annotations

import glob
import io
import json
import os
from collections.abc import Iterable
from typing import Any

from . import _core

MEMORY = "<memory>"
EXTENSIONS = (".json", ".jsonl", ".ndjson", ".json.gz", ".jsonl.gz", ".ndjson.gz")

Source = tuple[str, "bytes | None"]


def _expand_path(text: str) -> list[Source]:
    if os.path.isdir(text):
        found = []
        for root, dirs, files in os.walk(text):
            dirs.sort()
            found.extend(os.path.join(root, f) for f in sorted(files) if f.lower().endswith(EXTENSIONS))
        if not found:
            raise FileNotFoundError(f"{text}: no *.json, *.jsonl or *.ndjson files (or .gz) below this directory")
        return [(f, None) for f in found]
    if glob.has_magic(text):
        matches = sorted(p for p in glob.glob(text, recursive=True) if os.path.isfile(p))
        if not matches:
            raise FileNotFoundError(f"{text}: no file matches this pattern")
        return [(m, None) for m in matches]
    if not os.path.exists(text):
        raise FileNotFoundError(f"{text}: no such file or directory")
    return [(text, None)]


def _dumps(obj: Any) -> bytes:
    """JSON text of a dict or list of dicts, compact (less to write and to parse).

    Written by the core straight from the objects (the text of ``json.dumps(obj,
    separators=(",", ":"), allow_nan=False, ensure_ascii=False)``, about three times faster). A
    string that is not valid Unicode (a lone surrogate) cannot be written as UTF-8: such an
    object goes through ``json.dumps``, which escapes it, and the record that holds it is
    rejected by name like any other bad value.
    """
    try:
        return _core.dumps(obj)
    except UnicodeEncodeError:
        return json.dumps(obj, allow_nan=False, separators=(",", ":")).encode()


def _one(obj: Any) -> list[Source]:
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


def collect(sources: Any) -> list[Source]:
    """Expands ``sources`` into ``(name, data)`` pairs; ``data`` is None for files."""
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
            out.extend(_one(s))
        return out
    return _one(sources)

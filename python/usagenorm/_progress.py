"""Progress of a ``normalize`` call: ``normalize(..., progress=True)`` and the command line's bar.

The core calls a callback every 100 ms with a dict: ``phase`` (``starting``, ``reading``,
``dedupe``, ``building the frame``, then ``done``), ``sources`` / ``sources_total``, ``bytes`` /
``bytes_total`` (of the sources finished) and ``records`` read so far. The Python layer adds
``merging tables`` (canonical tables given back as inputs) and the command line ``writing``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

Callback = Callable[[dict[str, Any]], object]


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n:,.1f} TB"


class Bar:
    """A progress display, called with each progress dict.

    With tqdm installed (and ``use_tqdm`` not False) it is a ``tqdm.auto`` bar: a terminal
    bar, or a widget in a notebook. Otherwise it is one line on ``stream``, redrawn in place on
    a terminal (``\\r``) and written once per phase elsewhere (a log file, an Airflow task log).
    The bar fills with the bytes of the sources read (their count when sizes are unknown); the
    rate is records per second while reading, and stays at what reading achieved afterwards.
    """

    def __init__(self, stream: TextIO | None = None, use_tqdm: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.started = time.perf_counter()
        self.read_started: float | None = None
        self.rate: float | None = None
        self.last: dict[str, Any] = {}
        self._tqdm: Any = None
        self._drawn = False
        if use_tqdm is not False:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                if use_tqdm:
                    raise
            else:
                self._tqdm = tqdm(total=0, unit="B", unit_scale=True, desc="usagenorm", file=self.stream, leave=False)

    def __call__(self, p: dict[str, Any]) -> None:
        now = time.perf_counter()
        if p.get("phase") == "reading" and self.read_started is None:
            self.read_started = now
        if self.read_started is not None and self.rate is None and p.get("phase") != "reading":
            # Reading is over: its rate is the rate, not one that falls while the frame is built.
            self.rate = p["records"] / max(now - self.read_started, 1e-9)
        changed = p.get("phase") != self.last.get("phase")
        self.last = dict(p)
        if self._tqdm is not None:
            bar = self._tqdm
            if p.get("bytes_total"):
                bar.total = p["bytes_total"]
                bar.n = p["bytes"]
            bar.set_description(f"usagenorm: {p['phase']}", refresh=False)
            bar.set_postfix_str(f"{p['sources']}/{p['sources_total']} files, {p['records']:,} records", refresh=False)
            bar.refresh()
            return
        if self.tty or changed:
            self._line(p, now)

    def _line(self, p: dict[str, Any], now: float) -> None:
        width = 24
        if p.get("bytes_total"):
            share = p["bytes"] / p["bytes_total"]
        elif p.get("sources_total"):
            share = p["sources"] / p["sources_total"]
        else:
            share = 1.0 if p.get("phase") == "done" else 0.0
        filled = int(width * min(share, 1.0))
        rate = self.rate
        if rate is None and self.read_started is not None:
            rate = p["records"] / max(now - self.read_started, 1e-9)
        text = (
            f"[{'#' * filled}{'.' * (width - filled)}] {p['phase']}: {p['sources']}/{p['sources_total']} files, "
            f"{_size(p['bytes'])} of {_size(p['bytes_total'])}, {p['records']:,} records"
            + (f", {rate:,.0f} records/s" if rate is not None else "")
        )
        if self.tty:
            self.stream.write("\r" + text.ljust(110)[:110])
            self._drawn = True
        else:
            self.stream.write(f"usagenorm: {text}\n")
        self.stream.flush()

    def phase(self, name: str) -> None:
        """A phase the Python layer runs after the core (``merging tables``, ``writing``)."""
        if self.last:
            self(dict(self.last, phase=name))

    def close(self) -> None:
        if self._tqdm is not None:
            self._tqdm.close()
            self._tqdm = None
        elif self._drawn:
            self.stream.write("\r" + " " * 110 + "\r")
            self.stream.flush()
            self._drawn = False


class Relay:
    """Hands the core's progress to a callback, holding back its ``done`` until the Python
    layer's own phases (merging tables) are over too."""

    def __init__(self, callback: Callback) -> None:
        self.callback = callback
        self.last: dict[str, Any] = {}

    def __call__(self, p: dict[str, Any]) -> None:
        self.last = dict(p)
        if p.get("phase") != "done":
            self.callback(p)

    def phase(self, name: str) -> None:
        if self.last:
            self.callback(dict(self.last, phase=name))

    def done(self) -> None:
        self.callback(dict(self.last or {"sources": 0, "sources_total": 0, "bytes": 0, "bytes_total": 0, "records": 0}, phase="done"))

"""Shared helpers: the canonical schema, an expected-frame builder, and ways to feed a fixture."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

import usagenorm as un

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "exports"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

UTC = timezone.utc

# Every format the library reads, from its registry (a new format needs a sample in EXAMPLES).
PROVIDERS: list[str] = un.formats()["provider"].unique(maintain_order=True).to_list()

# The samples of the first five formats, which the pricing and CLI examples were written for
# (the folder holds the newer formats' samples too).
FIRST_WAVE = ["consumption_log", "exabits", "gitpod", "suger", "vmware"]
FIRST_WAVE_FILES = [EXAMPLES / f"{p}.json" for p in FIRST_WAVE]

# The canonical schema, read from the library (test_formats pins it, column by column).
SCHEMA: dict[str, pl.DataType] = dict(un._canonical.schema())

DEFAULTS = {name: None for name in SCHEMA} | {"charge_type": "usage", "billable": True, "tags": "{}"}


def ts(text: str) -> datetime:
    """An aware UTC datetime from ISO text."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def dec(text: str) -> Decimal:
    return Decimal(text)


def expected(rows: list[dict], source: str) -> pl.DataFrame:
    """A canonical frame from partial rows (missing columns take DEFAULTS)."""
    full = [DEFAULTS | {"source": source} | r for r in rows]
    return pl.DataFrame(full, schema=SCHEMA)


def feeds(path: Path):
    """The same document as a path, as str path, as bytes, as a parsed dict: (input, source name)."""
    data = path.read_bytes()
    return [
        (path, str(path)),
        (str(path), str(path)),
        (data, "<memory>"),
        (bytearray(data), "<memory>"),
        (memoryview(data), "<memory>"),
        (json.loads(data), "<memory>"),
    ]


@pytest.fixture
def tmp_exports(tmp_path: Path) -> Path:
    return tmp_path


def run_cli(*args: str, cwd=None):
    """The command line as a subprocess with no terminal and no standard input, as cron or
    Airflow runs it."""
    import os
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "usagenorm", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=dict(os.environ),
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )


def stderr_on_a_terminal(argv: list[str]) -> tuple[str, int]:
    """Runs ``argv`` with stderr on a pseudo-terminal: what the terminal showed, and the exit code."""
    import os
    import pty
    import select
    import subprocess

    master, slave = pty.openpty()
    p = subprocess.Popen(argv, stderr=slave, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    code = p.wait(timeout=60)
    os.close(master)
    return b"".join(chunks).decode(errors="replace"), code

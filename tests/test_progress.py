"""Progress: the callback's counts per call, ``progress=True`` on a pseudo-terminal and in a
log, tqdm when it is installed, and the command line's phases (issue 20)."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

import usagenorm as un
from conftest import EXAMPLES, stderr_on_a_terminal

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("progress") / "data"
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "generate.py"), "--records", "150000", "--formats", "suger,gitpod", "--out", str(out)],
        capture_output=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    return out


def files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def test_the_callback_sees_files_bytes_and_records_move_through_the_phases(data):
    seen: list[dict] = []
    out = un.normalize(data, errors="collect", progress=seen.append)
    phases = [p["phase"] for p in seen]
    # Called while reading (the run takes seconds, the callback comes every 100 ms), then done.
    assert phases.count("reading") >= 2
    assert phases[-1] == "done" and phases.count("done") == 1
    order = ["starting", "reading", "dedupe", "building the frame", "done"]
    assert [order.index(p) for p in phases] == sorted(order.index(p) for p in phases)
    for key in ("sources", "bytes", "records"):
        values = [p[key] for p in seen]
        assert values == sorted(values), key  # never goes back
    last = seen[-1]
    paths = files(data)
    assert last["sources"] == last["sources_total"] == len(paths)
    assert last["bytes"] == last["bytes_total"] == sum(p.stat().st_size for p in paths)
    assert last["records"] == out.stats["records"].sum()
    # Part of the way through reading, part of the files were done.
    middle = [p for p in seen if p["phase"] == "reading" and 0 < p["sources"] < p["sources_total"]]
    assert middle and all(0 < p["bytes"] < p["bytes_total"] for p in middle)


def test_each_call_counts_its_own_progress():
    first: list[dict] = []
    second: list[dict] = []
    un.normalize(EXAMPLES, progress=first.append)
    un.normalize(EXAMPLES / "gitpod.json", progress=second.append)
    assert first[-1]["sources"] == len(list(EXAMPLES.glob("*.json")))
    assert second[-1]["sources"] == second[-1]["sources_total"] == 1
    assert second[-1]["records"] == un.normalize(EXAMPLES / "gitpod.json", errors="collect").stats["records"].sum()


def test_a_canonical_table_adds_a_merging_phase_before_done(tmp_path):
    table = tmp_path / "usage.parquet"
    un.normalize(EXAMPLES).write_parquet(table)
    seen: list[dict] = []
    un.normalize([table, EXAMPLES], progress=seen.append)
    assert [p["phase"] for p in seen][-2:] == ["merging tables", "done"]


def test_a_callback_that_raises_stops_the_call(data):
    calls = []

    def stop(p: dict) -> None:
        calls.append(p)
        if p["records"] > 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        un.normalize(data, progress=stop)
    assert calls[-1]["records"] > 0 and calls[-1]["phase"] != "done"
    # The library works on afterwards.
    assert un.normalize(EXAMPLES / "gitpod.json").height > 0


def test_progress_must_be_a_bool_or_a_callable():
    with pytest.raises(TypeError, match="progress must be"):
        un.normalize(EXAMPLES, progress="yes")  # type: ignore[call-overload]


def test_the_plain_bar_writes_a_line_per_phase_in_a_log(data):
    from usagenorm._progress import Bar

    log = io.StringIO()
    bar = Bar(stream=log, use_tqdm=False)
    un.normalize(data, progress=bar)
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    phases = [line.split("] ")[1].split(":")[0] for line in lines]
    # One line per phase the 100 ms callback caught (a short phase may pass between two calls).
    assert phases[0] == "reading" and phases[-1] == "done" and len(set(phases)) == len(phases)
    assert set(phases) <= {"reading", "dedupe", "building the frame", "done"}
    assert lines[-1].startswith("usagenorm: [" + "#" * 24 + "]")
    assert "records/s" in lines[-1] and f"{len(files(data))}/{len(files(data))} files" in lines[-1]


def test_tqdm_is_used_when_installed(data):
    pytest.importorskip("tqdm", reason="tqdm is a test dependency (Makefile TEST_DEPS)")
    from usagenorm._progress import Bar

    log = io.StringIO()
    bar = Bar(stream=log)
    assert bar._tqdm is not None
    un.normalize(data, progress=bar)
    bar.close()
    text = log.getvalue()
    assert "usagenorm: reading" in text and "files" in text and "records" in text


def on_a_terminal(code: str) -> str:
    """Runs ``code`` with stderr on a pseudo-terminal; what the terminal showed."""
    shown, exit_code = stderr_on_a_terminal([sys.executable, "-c", code])
    assert exit_code == 0, shown
    return shown


def test_progress_true_redraws_one_line_on_a_terminal(data):
    shown = on_a_terminal(
        "import usagenorm as un, usagenorm._progress as p\n"
        "p.Bar.__init__.__defaults__ = (None, False)  # the plain bar, tqdm or not\n"
        f"un.normalize({str(data)!r}, progress=True)\n"
    )
    assert "\r[" in shown and "reading:" in shown and "records/s" in shown
    assert "usagenorm: [" not in shown  # redrawn in place, not logged line by line


def test_the_command_line_shows_its_phases_on_a_terminal(data, tmp_path):
    shown = on_a_terminal(
        "import sys; from usagenorm.cli import main\n"
        f"sys.argv = ['usagenorm', 'normalize', {str(data)!r}, '-o', {str(tmp_path / 'u.parquet')!r}]\n"
        "main()\n"
    )
    n = len(files(data))
    assert "reading: " in shown and f"/{n} files" in shown and f"{n}/{n} files" in shown
    assert "writing:" in shown and "records/s" in shown
    assert pl.read_parquet(tmp_path / "u.parquet").height > 0

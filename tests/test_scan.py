"""``scan``: the lazy table is the eager one (frames, rejects, statistics, conflicts), whatever
the query pushes down, and whatever the grouping of the sources."""

from __future__ import annotations

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import usagenorm as un
from conftest import EXAMPLES
from usagenorm import _core, _lazy, _scan


@pytest.fixture
def small_groups(monkeypatch):
    """Every source in a group of its own (as a large export folder is read)."""
    monkeypatch.setattr(_scan, "GROUP_BYTES", 1)


@pytest.fixture
def bad_exports(tmp_path):
    """The samples, plus a Gitpod page with one good and one bad record, and a file that is not JSON."""
    for f in EXAMPLES.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    (tmp_path / "gitpod_bad.json").write_text(
        '{"records": [{"id": "g1", "environmentId": "e", "createdAt": "2024-05-01T00:00:00Z",'
        ' "stoppedAt": "2024-05-01T02:00:00Z"}, {"id": "g2", "environmentId": "e", "createdAt": "not a time"}]}'
    )
    (tmp_path / "zz_broken.json").write_text('{"records": [')
    return tmp_path


@pytest.mark.parametrize("dedupe", [True, False])
def test_the_scan_collects_to_the_eager_table(dedupe, small_groups):
    assert_frame_equal(un.scan(EXAMPLES, dedupe=dedupe).collect(), un.normalize(EXAMPLES, dedupe=dedupe))


def test_the_schema_is_known_before_reading():
    assert un.scan(EXAMPLES).collect_schema() == un.normalize(EXAMPLES).schema


@pytest.mark.parametrize("dedupe", [True, False])
def test_projection_filters_and_head_give_the_eager_answer(dedupe, small_groups):
    eager = un.normalize(EXAMPLES, dedupe=dedupe)
    lazy = un.scan(EXAMPLES, dedupe=dedupe)
    cols = ["provider", "metric", "usage_start", "usage_end", "quantity", "unit", "cost"]
    assert_frame_equal(lazy.select(cols).collect(), eager.select(cols))
    keep = (pl.col("provider") == "gitpod") | (pl.col("cost") > 0)
    assert_frame_equal(lazy.filter(keep).collect(), eager.filter(keep))
    assert_frame_equal(lazy.filter(keep).select("record_id").collect(), eager.filter(keep).select("record_id"))
    assert_frame_equal(lazy.head(5).collect(), eager.head(5))
    assert_frame_equal(lazy.tail(3).collect(), eager.tail(3))
    assert lazy.select(pl.len()).collect().item() == eager.height


def test_batches_are_bounded(monkeypatch, small_groups):
    """The reader Polars is given yields batches of at most BATCH_ROWS rows (or Polars' batch
    size), every row once, in order."""
    readers = []
    real = _scan.register_io_source
    monkeypatch.setattr(_scan, "register_io_source", lambda read, **kw: readers.append(read) or real(read, **kw))
    monkeypatch.setattr(_lazy, "BATCH_ROWS", 3)
    un.scan(EXAMPLES, dedupe=False)
    (read,) = readers
    eager = un.normalize(EXAMPLES, dedupe=False)
    for batch_size, most in [(None, 3), (2, 2)]:
        batches = list(read(None, None, None, batch_size))
        assert max(b.height for b in batches) <= most
        assert_frame_equal(pl.concat(batches), eager)


@pytest.mark.parametrize("dedupe", [True, False])
def test_collected_rejects_and_accounting_reach_the_callable(dedupe, bad_exports, small_groups):
    eager = un.normalize(bad_exports, dedupe=dedupe, errors="collect")
    got: list[un.ScanReport] = []
    lazy = un.scan(bad_exports, dedupe=dedupe, errors="collect", rejects=got.append).collect()
    assert_frame_equal(lazy, eager.records)
    (report,) = got
    assert_frame_equal(report.rejected, eager.rejected)
    assert_frame_equal(report.stats, eager.stats)
    assert_frame_equal(report.conflicts, eager.conflicts)
    assert report.rejected["source"].str.ends_with("gitpod_bad.json").any()
    assert report.rejected["source"].str.ends_with("zz_broken.json").any()
    s = report.stats
    assert (s["records"] == s["accepted"] + s["rejected"] + s["duplicates"] + s["superseded"]).all()


def test_collected_rejects_are_written_to_a_directory(bad_exports, tmp_path):
    out = tmp_path / "scan_report"
    eager = un.normalize(bad_exports, errors="collect")
    un.scan(bad_exports, errors="collect", rejects=out).collect()
    assert_frame_equal(pl.read_parquet(out / "rejected.parquet"), eager.rejected)
    assert_frame_equal(pl.read_parquet(out / "stats.parquet"), eager.stats)
    assert_frame_equal(pl.read_parquet(out / "conflicts.parquet"), eager.conflicts)


def test_head_stops_reading_and_says_which_sources_were_read(small_groups):
    got: list[un.ScanReport] = []
    rows = un.scan(EXAMPLES, dedupe=False, errors="collect", rejects=got.append).head(2).collect()
    assert_frame_equal(rows, un.normalize(EXAMPLES, dedupe=False).head(2))
    (report,) = got
    n_sources = un.normalize(EXAMPLES, errors="collect").stats.height
    assert 1 <= report.stats.height < n_sources, "reading stopped early; the stats list what was read"


def test_a_bad_record_raises_when_collected_naming_it(bad_exports):
    lazy = un.scan(bad_exports)  # nothing is read yet
    # Polars 2 re-raises the source's own exception; Polars 1.x wraps it in a ComputeError that
    # carries its class name and message.
    with pytest.raises((un.NormalizeError, pl.exceptions.ComputeError)) as e:
        lazy.collect()
    if not isinstance(e.value, un.NormalizeError):
        assert "NormalizeError" in str(e.value)
    assert "gitpod_bad.json" in str(e.value) and "createdAt" in str(e.value)


def test_wrong_arguments_are_errors_when_scanning():
    with pytest.raises(ValueError, match="rejects="):
        un.scan(EXAMPLES, errors="collect")
    with pytest.raises(ValueError, match="errors="):
        un.scan(EXAMPLES, rejects=lambda r: None)
    with pytest.raises(ValueError, match="errors must be"):
        un.scan(EXAMPLES, errors="ignore")
    with pytest.raises(FileNotFoundError):
        un.scan("/no/such/folder/")


def test_a_canonical_table_is_not_a_scan_source(tmp_path):
    table = tmp_path / "usage.parquet"
    un.normalize(EXAMPLES).write_parquet(table)
    with pytest.raises(ValueError, match="scan_parquet"):
        un.scan([table, EXAMPLES])


def test_tags_not_selected_are_not_written_and_nothing_else_changes(monkeypatch, bad_exports, small_groups):
    """Without dedupe, a query that does not select ``tags`` reads with the core's tags off: the
    other columns, the rejects and the accounting are the eager call's, and a record rejected
    for its tags (nested too deeply) is rejected either way."""
    deep = "[" * 200 + "]" * 200
    (bad_exports / "gitpod_deep.json").write_text(
        '{"records": [{"id": "g9", "environmentId": "e", "createdAt": "2024-05-01T00:00:00Z",'
        f' "stoppedAt": "2024-05-01T01:00:00Z", "extra": {deep}}}]}}'
    )
    calls: list[bool] = []
    real = _core.normalize
    monkeypatch.setattr(_core, "normalize", lambda *a, **kw: calls.append(kw.get("tags", True)) or real(*a, **kw))
    eager = un.normalize(bad_exports, dedupe=False, errors="collect")
    got: list[un.ScanReport] = []
    lazy = un.scan(bad_exports, dedupe=False, errors="collect", rejects=got.append)
    calls.clear()
    others = [c for c in eager.records.columns if c != "tags"]
    assert_frame_equal(lazy.select(others).collect(), eager.records.select(others))
    assert calls and not any(calls)
    (report,) = got
    assert_frame_equal(report.rejected, eager.rejected)
    assert_frame_equal(report.stats, eager.stats)
    assert report.rejected.filter(pl.col("reason").str.contains("nested deeper than 128")).height == 1
    # Selected, or filtered on, the tags are written.
    calls.clear()
    assert_frame_equal(lazy.select("record_id", "tags").collect(), eager.records.select("record_id", "tags"))
    has = pl.col("tags").str.contains("runnerId")
    tagged = eager.records.filter(has).select("record_id")
    assert tagged.height > 0
    assert_frame_equal(lazy.filter(has).select("record_id").collect(), tagged)
    assert calls and all(calls)
    # With dedupe the tags are always written: dedupe compares them.
    calls.clear()
    un.scan(bad_exports, errors="collect", rejects=got.append).select(others).collect()
    assert calls and all(calls)
    with pytest.raises(ValueError, match="tags=False needs dedupe=False"):
        real([(str(EXAMPLES / "gitpod.json"), None)], tags=False)

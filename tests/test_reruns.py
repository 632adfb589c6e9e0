"""Reruns and increments: a canonical table given back as an input dedupes together with the
records read fresh, by the same rules, so rerunning a day gives byte-identical output and adding
a day adds only that day (issue 20)."""

from __future__ import annotations

import json
import shutil

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import usagenorm as un
from conftest import EXAMPLES, FIRST_WAVE_FILES, run_cli

ACCOUNTING = ["records", "accepted", "rejected", "duplicates", "superseded"]


cli = run_cli


def balanced(stats: pl.DataFrame) -> None:
    for row in stats.iter_rows(named=True):
        assert row["records"] == row["accepted"] + row["rejected"] + row["duplicates"] + row["superseded"], row


@pytest.mark.parametrize("suffix", ["parquet", "csv", "ndjson"])
def test_rerunning_the_same_exports_into_the_same_file_is_byte_identical(tmp_path, suffix):
    out = tmp_path / f"usage.{suffix}"
    assert cli("normalize", str(EXAMPLES), "-o", str(out), "-q").returncode == 0
    first = out.read_bytes()
    for _ in range(2):
        r = cli("normalize", str(out), str(EXAMPLES), "-o", str(out), "--stats", str(tmp_path / "s.json"))
        assert r.returncode == 0, r.stderr
        assert out.read_bytes() == first
    stats = json.loads((tmp_path / "s.json").read_text())
    fresh = [s for s in stats["sources"] if s["source"] != str(out)]
    # Every record read again is a duplicate of its row in the table; the table keeps all of its own.
    assert sum(s["duplicates"] for s in fresh) == sum(s["records"] for s in fresh) > 0
    assert all(s["rows"] == 0 for s in fresh)
    (table,) = [s for s in stats["sources"] if s["source"] == str(out)]
    assert table["rows"] == pl.read_parquet(out).height if suffix == "parquet" else table["rows"] > 0
    assert stats["total"]["rows"] == table["rows"]
    assert "0 rejected, " in r.stderr and f"{sum(s['records'] for s in fresh)} duplicates" in r.stderr


def test_adding_a_day_adds_only_that_day(tmp_path):
    day1, day2 = tmp_path / "day1", tmp_path / "day2"
    day1.mkdir()
    day2.mkdir()
    names = sorted(p.name for p in EXAMPLES.glob("*.json"))
    for i, name in enumerate(names):
        shutil.copy(EXAMPLES / name, (day1 if i % 2 == 0 else day2) / name)
    usage = tmp_path / "usage.parquet"
    assert cli("normalize", str(day1), "-o", str(usage), "-q").returncode == 0
    after_day1 = pl.read_parquet(usage)
    # The next day's run passes yesterday's table, yesterday's exports again, and today's.
    r = cli("normalize", str(usage), str(day1), str(day2), "-o", str(usage), "-q")
    assert r.returncode == 0, r.stderr
    after_day2 = pl.read_parquet(usage)
    day2_alone = un.normalize(day2)
    assert after_day2.height == after_day1.height + day2_alone.height
    assert_frame_equal(after_day2.head(after_day1.height), after_day1)
    assert_frame_equal(after_day2.tail(day2_alone.height), day2_alone)


def test_a_newer_revision_supersedes_the_tables_row_as_one_run_would(tmp_path):
    first = json.loads((EXAMPLES / "exabits.json").read_text())
    later = json.loads(json.dumps(first))
    later["data"][1]["total_uptime"] = 2880  # the active resource's running total grew
    later["data"][1]["total_fee"] = 5760.0
    (tmp_path / "a.json").write_text(json.dumps(first))
    (tmp_path / "b.json").write_text(json.dumps(later))
    table = tmp_path / "usage.parquet"
    un.normalize(tmp_path / "a.json").write_parquet(table)

    merged = un.normalize([table, tmp_path / "b.json"], errors="collect")
    direct = un.normalize([tmp_path / "a.json", tmp_path / "b.json"], errors="collect")
    assert_frame_equal(merged.records, direct.records)
    balanced(merged.stats)
    table_row = merged.stats.row(0, named=True)
    assert (table_row["source"], table_row["superseded"], table_row["rows"]) == (str(table), 1, 2)
    b_row = merged.stats.filter(pl.col("source") == str(tmp_path / "b.json")).row(0, named=True)
    assert (b_row["records"], b_row["accepted"], b_row["duplicates"]) == (3, 1, 2)
    # The same versions, the same resolutions; the table's version is named by its own source.
    assert merged.conflicts.select("record_id", "revision", "resolution").sort("revision").rows() == (
        direct.conflicts.select("record_id", "revision", "resolution").sort("revision").rows()
    )


def test_a_table_written_without_dedupe_dedupes_like_the_records_it_came_from(tmp_path):
    """The merge follows the core's rules: a table holding every record read (dedupe=False)
    gives, read back, exactly what the core's dedupe gives on the same exports."""
    copy = tmp_path / "copy"
    shutil.copytree(EXAMPLES, copy)
    suger = json.loads((EXAMPLES / "suger.json").read_text())
    newer = json.loads(json.dumps(suger))
    newer["usageRecordGroups"][0]["lastUpdateTime"] = "2024-08-12T09:00:00Z"
    newer["usageRecordGroups"][0]["status"] = "REPORT_FAILED"
    (tmp_path / "suger_newer.json").write_text(json.dumps(newer))
    sources = [*FIRST_WAVE_FILES, copy, tmp_path / "suger_newer.json"]
    direct = un.normalize(sources, errors="collect")
    assert direct.stats["duplicates"].sum() > 0 and direct.stats["superseded"].sum() > 0
    everything = tmp_path / "everything.parquet"
    un.normalize(sources, dedupe=False).write_parquet(everything)

    back = un.normalize(everything, errors="collect")
    assert_frame_equal(back.records, direct.records)
    balanced(back.stats)
    assert back.stats.select(ACCOUNTING[3:]).sum().row(0) == direct.stats.select(ACCOUNTING[3:]).sum().row(0)
    key = ["provider", "record_id", "source", "source_index", "revision", "resolution"]
    assert_frame_equal(back.conflicts.select(key).sort(key), direct.conflicts.select(key).sort(key))


def test_python_reruns_and_dedupe_false(tmp_path):
    table = tmp_path / "usage.parquet"
    un.normalize(EXAMPLES).write_parquet(table)
    again = un.normalize([table, EXAMPLES])
    assert_frame_equal(again, pl.read_parquet(table))
    # Without dedupe nothing is dropped: the table's rows, then every record read.
    kept = un.normalize([EXAMPLES, table], dedupe=False, errors="collect")
    assert kept.records.height == 2 * again.height
    assert_frame_equal(kept.records.head(again.height), again)
    assert kept.stats["duplicates"].sum() == 0
    balanced(kept.stats)


def test_a_table_written_before_revision_was_a_column_still_reads(tmp_path):
    table = tmp_path / "old.parquet"
    un.normalize(EXAMPLES).drop("revision").write_parquet(table)
    df = un.normalize(table)
    assert df["revision"].null_count() == df.height
    assert df.columns == list(un._canonical.schema())


def test_a_hash_collision_can_never_drop_a_record():
    """The merge drops a copy only after comparing it with its original value by value."""
    from usagenorm import _merge

    content = un.normalize(EXAMPLES).head(3).select(_merge._content())
    u32 = {"__row": pl.UInt32, "__rec": pl.UInt32, "__ord": pl.UInt32}
    rows = pl.DataFrame({"__row": [0, 1, 2], "__rec": [0, 1, 1], "__ord": [0, 0, 1]}, schema=u32)
    pair = {"__rec": pl.UInt32, "__twin": pl.UInt32}
    # Pretend record 1 hashed like record 0: the value check refuses to drop it.
    with pytest.raises(RuntimeError, match="hashed alike"):
        _merge._check_copies(content, rows, pl.DataFrame({"__rec": [1], "__twin": [0]}, schema=pair))
    same = content.head(1)
    _merge._check_copies(
        pl.concat([same, same]),
        pl.DataFrame({"__row": [0, 1], "__rec": [0, 1], "__ord": [0, 0]}, schema=u32),
        pl.DataFrame({"__rec": [1], "__twin": [0]}, schema=pair),
    )

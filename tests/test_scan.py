"""``scan``: the lazy table is the eager one (frames, rejects, statistics, conflicts), whatever
the query pushes down, and whatever the grouping of the sources."""

from __future__ import annotations

import json

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import usagenorm as un
from conftest import EXAMPLES
from usagenorm import _canonical, _core, _dedupe, _lazy, _scan


@pytest.fixture
def small_groups(monkeypatch):
    """Every source in a group of its own, and dedupe streamed (as a large export folder is read)."""
    monkeypatch.setattr(_scan, "GROUP_BYTES", 1)
    monkeypatch.setattr(_scan, "ONE_CALL_BYTES", 0)


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
    # Whether each call of the core writes the tags: it hands on every column, or the tags.
    monkeypatch.setattr(
        _core,
        "normalize",
        lambda *a, **kw: calls.append(kw.get("columns") is None or "tags" in kw["columns"]) or real(*a, **kw),
    )
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
    # With dedupe the tags are written where records are compared (dedupe compares them): in a
    # deduplicating call of the core, and in the first pass of a streamed dedupe; its second pass
    # hands on records and leaves them out.
    n = len(list(bad_exports.iterdir()))
    deduped = un.normalize(bad_exports, errors="collect").records.select(others)
    calls.clear()
    assert_frame_equal(un.scan(bad_exports, errors="collect", rejects=got.append).select(others).collect(), deduped)
    # (The second pass reads only the groups with records kept: not the file that is not JSON.)
    assert calls[:n] == [True] * n and 0 < len(calls[n:]) < n and not any(calls[n:])
    monkeypatch.setattr(_scan, "ONE_CALL_BYTES", 1 << 30)
    calls.clear()
    un.scan(bad_exports, errors="collect", rejects=got.append).select(others).collect()
    assert calls == [True]
    with pytest.raises(ValueError, match="leaving columns out needs dedupe=False"):
        real([(str(EXAMPLES / "gitpod.json"), None)], columns=["record_id"])


def test_columns_not_selected_are_not_stored(monkeypatch, bad_exports, small_groups):
    """A query that selects some columns gets from the core (where it does not dedupe) only
    those, plus the ones its filter reads, and the streamed dedupe's second pass the ones that
    place a record; every result, the rejects and the accounting are the eager call's."""
    asked: list[list[str] | None] = []
    handed: list[list[str]] = []
    real = _core.normalize

    def spy(*a, **kw):
        asked.append(kw.get("columns"))
        out = real(*a, **kw)
        handed.append(out[0].columns)
        return out

    monkeypatch.setattr(_core, "normalize", spy)
    every = list(_canonical.schema())
    seven = ["provider", "metric", "usage_start", "usage_end", "quantity", "unit", "cost"]
    for dedupe in (False, True):
        eager = un.normalize(bad_exports, dedupe=dedupe, errors="collect")
        got: list[un.ScanReport] = []
        lazy = un.scan(bad_exports, dedupe=dedupe, errors="collect", rejects=got.append)
        for k, (query, want) in enumerate([
            (lazy.select(seven), eager.records.select(seven)),
            (lazy.select("record_id", "cost"), eager.records.select("record_id", "cost")),
            # Filtered on a column it does not select; cut short.
            (
                lazy.filter(pl.col("currency") == "USD").select("quantity"),
                eager.records.filter(pl.col("currency") == "USD").select("quantity"),
            ),
            (lazy.select(pl.len()), eager.records.select(pl.len())),
            # (Stopped early, its report holds the sources read: see the test of head.)
            (lazy.select("quantity", "tags").head(3), eager.records.select("quantity", "tags").head(3)),
        ]):
            asked.clear()
            handed.clear()
            got.clear()
            assert_frame_equal(query.collect(), want)
            (report,) = got
            if k < 4:
                assert_frame_equal(report.rejected, eager.rejected)
                assert_frame_equal(report.stats, eager.stats)
                assert_frame_equal(report.conflicts, eager.conflicts)
            # What the core built: every column in the dedupe's first pass, else what was asked.
            projected = [(a, h) for a, h in zip(asked, handed, strict=True) if a is not None]
            assert projected, asked
            assert all(h == [c for c in every if c in a] for a, h in projected)
            assert all(len(h) < len(every) for _, h in projected)
            if dedupe:
                assert any(a is None for a in asked), "the first pass compares every column"
                assert all(set(_dedupe.NAMES) <= set(a) for a, _ in projected)
    with pytest.raises(ValueError, match="is not a canonical column"):
        real([(str(EXAMPLES / "gitpod.json"), None)], dedupe=False, columns=["nope"])


@pytest.fixture(scope="module")
def repeated(tmp_path_factory):
    """Generated exports of every format and the samples, read twice (identical copies
    in later sources, VMware's without an id among them), a newer Suger revision (superseded
    across sources), a Gitpod record changed without a revision (kept unresolved) and a bad file."""
    import shutil
    import subprocess
    import sys

    from conftest import ROOT

    root = tmp_path_factory.mktemp("repeated")
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "generate.py"), "--records", "400", "--out", str(root / "gen")],
        capture_output=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    shutil.copytree(root / "gen", root / "gen_again")
    for copy in ("a", "b"):
        (root / copy).mkdir()
        for f in EXAMPLES.iterdir():
            (root / copy / f.name).write_bytes(f.read_bytes())
    suger = json.loads((EXAMPLES / "suger.json").read_text())
    suger["usageRecordGroups"][0]["lastUpdateTime"] = "2024-08-12T09:00:00Z"
    suger["usageRecordGroups"][0]["status"] = "REPORT_FAILED"
    (root / "a" / "suger_newer.json").write_text(json.dumps(suger))
    gitpod = json.loads((EXAMPLES / "gitpod.json").read_text())
    gitpod["records"][0]["userId"] = "someone-else"
    (root / "b" / "gitpod_changed.json").write_text(json.dumps(gitpod))
    (root / "b" / "broken.ndjson").write_text('{"createdAt": "2024-01-01T00:00:00Z", "environmentId": "e"}\nnot json\n')
    return root


@pytest.mark.parametrize(("group_bytes", "fold_rows"), [(1, 1), (1, 1 << 20), (150_000, 1 << 20)])
def test_a_streamed_dedupe_is_the_eager_one(repeated, small_groups, monkeypatch, group_bytes, fold_rows):
    """Every source in a group of its own, or groups of several sources that mix formats
    differently in each copy, so every copy, superseded revision and conflict is decided across
    groups: records, rejects, statistics and conflicts are the single call's, in its order,
    whether the digests fold often or once."""
    from usagenorm import _dedupe

    monkeypatch.setattr(_scan, "GROUP_BYTES", group_bytes)
    monkeypatch.setattr(_dedupe, "FOLD_ROWS", fold_rows)
    eager = un.normalize(repeated, errors="collect")
    got: list[un.ScanReport] = []
    lazy = un.scan(repeated, errors="collect", rejects=got.append).collect()
    assert_frame_equal(lazy, eager.records)
    (report,) = got
    assert_frame_equal(report.rejected, eager.rejected)
    assert_frame_equal(report.stats, eager.stats)
    assert_frame_equal(report.conflicts, eager.conflicts)
    # The test has teeth: copies with and without ids, a superseded revision, an unresolved
    # conflict and a rejected record, all across sources.
    stats, conflicts = eager.stats, eager.conflicts
    assert stats.filter(pl.col("provider") == "vmware")["duplicates"].sum() > 0
    assert stats["duplicates"].sum() > 1000 and stats["superseded"].sum() > 0 and stats["rejected"].sum() > 0
    assert set(conflicts["resolution"]) == {"kept", "superseded", "kept_unresolved"}
    # A projection reads the second pass without tags, with the same rows.
    cols = ["source", "source_index", "record_id", "quantity"]
    projected = un.scan(repeated, errors="collect", rejects=got.append).select(cols).collect()
    assert_frame_equal(projected, eager.records.select(cols))
    assert_frame_equal(got[1].stats, eager.stats)


@pytest.mark.parametrize("rows", [1, 5000])
def test_a_streamed_dedupe_stopped_early_still_reports_every_conflict(repeated, small_groups, monkeypatch, rows):
    """The conflicts report names its versions from the second pass; a query that has its rows
    before the groups holding them are read again still gets the whole report, named."""
    monkeypatch.setattr(_scan, "GROUP_BYTES", 1)
    eager = un.normalize(repeated, errors="collect")
    got: list[un.ScanReport] = []
    head = un.scan(repeated, errors="collect", rejects=got.append).head(rows).collect()
    assert_frame_equal(head, eager.records.head(rows))
    (report,) = got
    assert report.conflicts["record_id"].null_count() == 0
    assert_frame_equal(report.conflicts, eager.conflicts)
    assert_frame_equal(report.stats, eager.stats)


def test_a_source_that_changes_between_the_passes_is_an_error(repeated, small_groups, monkeypatch):
    from usagenorm import _dedupe

    real = _dedupe.plan

    def plan_then_change(groups):  # the first pass, then a source changes
        decided = real(groups)
        (repeated / "a" / "gitpod.json").write_text(json.dumps({"records": []}))
        return decided

    monkeypatch.setattr(_dedupe, "plan", plan_then_change)
    before = (repeated / "a" / "gitpod.json").read_bytes()
    try:
        with pytest.raises(Exception, match=r"a/gitpod.json: the sources read differently in the second pass"):
            un.scan(repeated, errors="collect", rejects=lambda report: None).collect()
    finally:
        (repeated / "a" / "gitpod.json").write_bytes(before)


def test_a_streamed_dedupe_never_trusts_its_64_bit_fingerprint_alone():
    """Copies are found by one 64-bit fingerprint per version, then each checked field by field
    against its first: two versions that share a fingerprint both stay."""
    from usagenorm import _dedupe

    state = pl.DataFrame(
        {
            "__id": [True, True, True],
            "__k": [1, 1, 1],
            "__l": [2, 2, 2],
            "__h": [3, 4, 3],
            "__n": [1, 1, 1],
        },
        schema_overrides={"__n": pl.UInt32, **{c: pl.UInt64 for c in ("__k", "__l", "__h")}},
    )
    for fingerprint in ([9, 9, 9], [9, 8, 9], None):
        v = None if fingerprint is None else pl.Series(fingerprint, dtype=pl.UInt64)
        assert _dedupe._first_versions(state, v).to_list() == [True, True, False]
        # The first two kept by an earlier fold: the third is looked up among them.
        assert _dedupe._first_versions(state, v, known=2).to_list() == [True, True, False]
    # A new version whose fingerprint is an old one's is kept; a copy within the new is not.
    more = pl.concat([state, state.head(1).with_columns(pl.lit(7, pl.UInt64).alias("__h")), state.head(1)])
    v = pl.Series([9, 8, 9, 9, 9], dtype=pl.UInt64)
    assert _dedupe._first_versions(more, v, known=2).to_list() == [True, True, False, True, False]


def test_a_streamed_dedupe_tells_records_apart_by_the_order_of_their_rows():
    """A record of several rows (a Suger group) and the same rows in another order are two
    contents, as in one call of the core; the same rows in the same order are one."""
    group = json.loads((EXAMPLES / "suger.json").read_text())["usageRecordGroups"][0]
    assert len(group["records"]) > 1
    turned = dict(group, records=dict(reversed(list(group["records"].items()))))

    def page(g: dict) -> bytes:
        return json.dumps({"usageRecordGroups": [g]}).encode()

    digests = _dedupe._read_digests([("a.json", page(group)), ("b.json", page(group)), ("c.json", page(turned))])
    assert digests["__n"].to_list() == [len(group["records"])] * 3
    assert digests["__rec"].to_list() == [0, 2, 4]
    assert digests["__h"][0] == digests["__h"][1] != digests["__h"][2]
    # One id: one key, three versions of which two are copies.
    assert digests["__k"].n_unique() == 1 and digests["__id"].all()


def test_a_records_digest_does_not_depend_on_the_other_records_of_its_group():
    """A copy of a record read in a group of records of one row each, and in a group with
    records of several rows, has the same digest (groups mix formats as the sizes fall)."""

    def read(*names):
        return _dedupe._read_digests([(str(EXAMPLES / n), None) for n in names])

    alone, mixed = read("exabits.json"), read("exabits.json", "suger.json")
    assert (mixed["__n"] > 1).any()
    cols = ["__h", "__k", "__l", "__n"]
    assert_frame_equal(mixed.head(alone.height).select(cols), alone.select(cols))
    with pytest.raises(ValueError, match="digests need dedupe=False"):
        _core.normalize([(str(EXAMPLES / "exabits.json"), None)], digests=True)


def test_a_streamed_dedupe_of_no_groups_is_empty():
    from usagenorm import _dedupe

    decided = _dedupe.plan([])
    assert decided.kept == {} and decided.sizes == []
    assert decided.stats.is_empty() and decided.rejected.is_empty() and decided.conflicts.is_empty()
    report = _dedupe.conflicts(decided, [])
    assert report.schema == un.normalize([], errors="collect").conflicts.schema


@pytest.mark.parametrize("report", [False, True])
def test_a_streamed_dedupe_reads_again_only_the_groups_it_needs(tmp_path, small_groups, monkeypatch, report):
    """The second pass does not read a group whose records were all dropped (copies of records
    read before, older revisions), unless the conflicts report needs names from it; the result
    is the same."""
    for copy in ("x", "y"):
        (tmp_path / copy).mkdir()
        for f in EXAMPLES.iterdir():
            (tmp_path / copy / f.name).write_bytes(f.read_bytes())
    # A source holding only an older revision of one record: superseded, and in the conflicts.
    suger = json.loads((EXAMPLES / "suger.json").read_text())
    older = suger["usageRecordGroups"][0]
    older["lastUpdateTime"] = "2024-08-01T00:00:00Z"
    older["status"] = "PENDING"
    (tmp_path / "y" / "suger_older.json").write_text(json.dumps({"usageRecordGroups": [older]}))
    eager = un.normalize(tmp_path, errors="collect")
    assert eager.conflicts["source"].str.ends_with("suger_older.json").any()
    read: list[str] = []
    real = _core.normalize
    monkeypatch.setattr(_core, "normalize", lambda group, **kw: read.append(group[0][0]) or real(group, **kw))
    got: list[un.ScanReport] = []
    if report:
        lazy = un.scan(tmp_path, errors="collect", rejects=got.append).collect()
        assert_frame_equal(got[0].stats, eager.stats)
        assert_frame_equal(got[0].conflicts, eager.conflicts)
    else:
        lazy = un.scan(tmp_path).collect()
    assert_frame_equal(lazy, eager.records)
    sources = len(list(tmp_path.rglob("*.json")))
    first, second = read[:sources], read[sources:]
    assert sorted(first) == sorted(str(p) for p in tmp_path.rglob("*.json"))
    # Every x source has records kept; of y's, only the older revision, for its name.
    assert sorted(second) == sorted(str(p) for p in (tmp_path / "x").glob("*.json")) + (
        [str(tmp_path / "y" / "suger_older.json")] if report else []
    )

"""Every way a user can hand usagenorm an export: files, folders, globs, gzip, NDJSON, bytes, dicts."""

from __future__ import annotations

import gzip
import io
import json

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import usagenorm as un
from conftest import EXAMPLES
from conftest import PROVIDERS as REGISTERED

PROVIDERS = sorted(REGISTERED)


def sample(provider: str) -> dict:
    return json.loads((EXAMPLES / f"{provider}.json").read_text())


def records_key(provider: str) -> str:
    """The key of the sample page that holds its records: its one list of objects."""
    keys = [k for k, v in sample(provider).items() if isinstance(v, list) and v and isinstance(v[0], dict)]
    assert len(keys) == 1, (provider, keys)
    return keys[0]


# Formats whose records take what they need from their page (VMware's period; the bucket of an
# OpenAI or Anthropic result, `$parent` in a format file): a bare record is not read like the
# same record in its page.
_mapping = un.formats()
PAGE_BOUND = {"vmware"} | set(
    _mapping.filter(pl.col("source_field").str.contains("$parent", literal=True))["provider"]
    .append(_mapping.filter(pl.col("source_field").str.contains("$page", literal=True))["provider"])
    .to_list()
)
assert {"openai", "anthropic"} <= PAGE_BOUND


def content(df: pl.DataFrame) -> pl.DataFrame:
    """Rows without where they came from."""
    return df.drop("source", "source_index")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_detection_from_page_alone(provider):
    df = un.normalize(json.dumps(sample(provider)).encode())
    assert df["provider"].unique().to_list() == [provider]


@pytest.mark.parametrize("provider", [p for p in PROVIDERS if p not in PAGE_BOUND])
def test_bare_record_and_array_of_bare_records(provider):
    page = sample(provider)
    recs = page[records_key(provider)]
    whole = un.normalize(page)
    one = un.normalize(recs[0])
    assert_frame_equal(content(one), content(whole.filter(pl.col("source_index") == 0)))
    arr = un.normalize(recs)  # a list of dicts is one in-memory JSON array
    assert_frame_equal(content(arr), content(whole))
    assert arr["source_index"].to_list() == whole["source_index"].to_list()


def test_vmware_bare_items_need_no_metadata():
    items = sample("vmware")["content"]
    df = un.normalize(items)
    # Without the page's metadata the metric falls back to "usage"; the period is still inferred.
    assert set(df["metric"]) == {"usage"}
    assert (df["usage_end"] - df["usage_start"]).dt.total_hours().to_list() == [1] * df.height


@pytest.mark.parametrize("provider", PROVIDERS)
def test_array_of_pages_and_ndjson_of_pages(provider, tmp_path):
    page = sample(provider)
    whole = un.normalize(page)
    two = un.normalize([page, page], dedupe=False)  # JSON array of two pages
    assert_frame_equal(content(two), content(pl.concat([whole, whole])))
    n = whole["source_index"].max() + 1
    assert two["source_index"].to_list() == whole["source_index"].to_list() + [i + n for i in whole["source_index"]]
    nd = tmp_path / "pages.ndjson"
    nd.write_text(json.dumps(page) + "\n\n" + json.dumps(page) + "\n")
    assert_frame_equal(content(un.normalize(nd, dedupe=False)), content(two))
    # The same text without an NDJSON name is recognized by its shape.
    assert_frame_equal(content(un.normalize(nd.read_bytes(), dedupe=False)), content(two))
    # By default the second copy of each record is a duplicate: dropped, and counted.
    out = un.normalize(nd, errors="collect")
    assert_frame_equal(content(out.records), content(whole))
    assert out.stats.select("records", "accepted", "duplicates", "superseded").row(0) == (2 * n, n, n, 0)


@pytest.mark.parametrize("provider", [p for p in PROVIDERS if p not in PAGE_BOUND])
def test_ndjson_of_bare_records(provider, tmp_path):
    recs = sample(provider)[records_key(provider)]
    f = tmp_path / "recs.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    assert_frame_equal(content(un.normalize(f)), content(un.normalize(sample(provider))))


def test_gzip_files_and_bytes(tmp_path):
    raw = (EXAMPLES / "gitpod.json").read_bytes()
    gz = tmp_path / "gitpod.json.gz"
    gz.write_bytes(gzip.compress(raw))
    want = content(un.normalize(raw))
    assert_frame_equal(content(un.normalize(gz)), want)
    assert_frame_equal(content(un.normalize(gzip.compress(raw))), want)
    nd = tmp_path / "x.ndjson.gz"
    nd.write_bytes(gzip.compress(raw.replace(b"\n", b"") + b"\n" + raw.replace(b"\n", b"") + b"\n"))
    assert un.normalize(nd, dedupe=False).height == 2 * want.height


def test_mixed_folder_recursive_sorted_and_other_files_ignored(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "a").mkdir()
    (tmp_path / "b" / "suger.json").write_bytes((EXAMPLES / "suger.json").read_bytes())
    (tmp_path / "a" / "gitpod.json.gz").write_bytes(gzip.compress((EXAMPLES / "gitpod.json").read_bytes()))
    (tmp_path / "a" / "z.jsonl").write_text(json.dumps(sample("exabits")) + "\n")
    (tmp_path / "README.txt").write_text("not an export")
    df = un.normalize(tmp_path)
    sources = df["source"].unique(maintain_order=True).to_list()
    assert sources == [
        str(tmp_path / "a" / "gitpod.json.gz"),
        str(tmp_path / "a" / "z.jsonl"),
        str(tmp_path / "b" / "suger.json"),
    ]
    assert df["provider"].unique(maintain_order=True).to_list() == ["gitpod", "exabits", "suger"]


def test_globs_and_lists_keep_the_given_order(tmp_path):
    for p in PROVIDERS:
        (tmp_path / f"{p}.json").write_bytes((EXAMPLES / f"{p}.json").read_bytes())
    df = un.normalize([str(tmp_path / "s*.json"), tmp_path / "gitpod.json"])
    assert df["provider"].unique(maintain_order=True).to_list() == ["suger", "gitpod"]
    assert un.normalize(str(tmp_path / "**" / "*.json"))["provider"].n_unique() == len(PROVIDERS)


def test_bom_and_file_objects():
    raw = (EXAMPLES / "exabits.json").read_bytes()
    want = content(un.normalize(raw))
    assert_frame_equal(content(un.normalize(b"\xef\xbb\xbf" + raw)), want)
    assert_frame_equal(content(un.normalize(io.BytesIO(raw))), want)
    with open(EXAMPLES / "exabits.json", "rb") as fh:
        df = un.normalize(fh)
    assert df["source"][0] == str(EXAMPLES / "exabits.json")


def test_missing_paths_and_wrong_types_are_clear():
    with pytest.raises(FileNotFoundError, match="no such file"):
        un.normalize("does/not/exist.json")
    with pytest.raises(FileNotFoundError, match="no file matches"):
        un.normalize("does/not/*.json")
    with pytest.raises(TypeError, match="a source is a path"):
        un.normalize(12)
    with pytest.raises(TypeError, match="binary mode"):
        un.normalize(io.StringIO("{}"))
    with pytest.raises(ValueError, match="unknown provider"):
        un.normalize(b"{}", provider="aws")
    with pytest.raises(ValueError, match='errors must be "raise" or "collect"'):
        un.normalize(b"{}", errors="ignore")


def test_undetectable_and_ambiguous_documents_name_the_formats_tried():
    with pytest.raises(
        un.NormalizeError,
        match="matches no known format \\(tried gitpod, suger, exabits, vmware, consumption_log, anthropic, github, openai\\)",
    ):
        un.normalize({"hello": "world"})
    with pytest.raises(un.NormalizeError, match="more than one format \\(exabits, consumption_log\\)"):
        un.normalize({"data": [{"resource": {}, "total_uptime": 1, "metricType": "x"}]})
    # provider= settles it.
    rec, rej = un.normalize({"hello": "world"}, provider="gitpod", errors="collect")
    assert rec.height == 0
    assert rej["reason"].item() == "required field is missing"
    assert rej["path"].item() == "$.createdAt"


def test_empty_array_has_no_records_but_an_empty_file_is_reported(tmp_path):
    assert un.normalize(b"[]").height == 0
    f = tmp_path / "empty.json"
    f.write_bytes(b"")
    out = un.normalize(f, errors="collect")
    assert out.records.height == 0
    assert out.rejected["reason"].to_list() == ["the document is empty"]
    assert out.stats.select("records", "accepted", "rejected").row(0) == (1, 0, 1)


def test_readme_mapping_tables_match_formats():
    from conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    for provider, title, api, column, source_field, *_ in un.formats().rows():
        assert f"#### `{provider}` — {title}" in readme
        assert f"Reads: {api}" in readme
        assert f"| {column} | {source_field.replace('|', chr(92) + '|')} |" in readme, (provider, column)


def test_stats_name_each_sources_detected_format(tmp_path):
    (tmp_path / "junk.json").write_text('{"hello": 1}')
    files = [EXAMPLES / "suger.json", EXAMPLES / "vmware.json", tmp_path / "junk.json"]
    out = un.normalize(files, errors="collect")
    assert out.stats["provider"].to_list() == ["suger", "vmware", None]


def test_large_ndjson_mixing_records_pages_and_bad_lines_keeps_indices(tmp_path):
    rec = sample("gitpod")["records"][0]
    lines = []
    for i in range(5000):
        if i == 3000:
            lines.append('{"createdAt": "never", "environmentId": "x"}')  # a bad record
        elif i == 4000:
            lines.append(json.dumps({"records": [dict(rec, id="p1"), dict(rec, id="p2")]}))  # a page: 2 records
        else:
            lines.append(json.dumps(dict(rec, id=f"r{i}")))
    f = tmp_path / "mixed.ndjson"
    f.write_text("\n".join(lines) + "\n")
    out = un.normalize(f, errors="collect")
    # 4998 bare records + 2 from the page + 1 rejected = 5001 records read.
    assert out.stats.select("records", "accepted", "rejected").row(0) == (5001, 5000, 1)
    assert out.rejected.select("source_index", "line", "path").row(0) == (3000, 3001, "$.createdAt")
    idx = out.records["source_index"].to_list()
    assert idx == sorted(idx) and len(set(idx)) == 5000
    assert out.records.filter(pl.col("record_id") == "p2")["source_index"].item() == 4001
    assert out.records.filter(pl.col("record_id") == "r4999")["source_index"].item() == 5000


def _big_gitpod_page(n: int) -> dict:
    template = json.loads((EXAMPLES / "gitpod.json").read_text())["records"][0]
    records = [dict(template, id=f"r{i}", environmentId=f"env-{i % 97}") for i in range(n)]
    return {"pagination": {"nextToken": ""}, "records": records}


def test_a_large_page_read_in_parallel_equals_the_same_records_in_small_pages():
    # Over 4 MB a document's records are split and checked in parallel.
    page = _big_gitpod_page(30_000)
    big = json.dumps(page).encode()
    assert len(big) > 4 << 20
    small = [
        json.dumps(dict(page, records=page["records"][i : i + 1000])).encode() for i in range(0, 30_000, 1000)
    ]
    got = un.normalize(big).drop("source_index")
    want = un.normalize(small).drop("source_index")
    assert_frame_equal(got, want)
    assert un.normalize(big)["source_index"].to_list() == list(range(30_000))


def test_a_large_malformed_page_is_one_rejection_as_a_small_one_is():
    page = json.dumps(_big_gitpod_page(30_000))
    cut = page.index("}, {", len(page) // 2)  # between two records in the middle
    broken = (page[:cut] + "}" + page[cut:]).encode()
    records, rejected = un.normalize(broken, errors="collect")
    assert records.height == 0
    assert rejected.height == 1
    assert rejected["reason"][0].startswith("malformed JSON")
    small = json.dumps(_big_gitpod_page(3)).replace('"records": [', '"records": [}', 1).encode()
    assert un.normalize(small, errors="collect")[1]["reason"][0].startswith("malformed JSON")


def test_an_ndjson_file_over_64_mb_is_read_in_blocks_with_lines_counted_across_them(tmp_path):
    rec = {"id": "r", "createdAt": "2024-01-01T00:00:00Z", "stoppedAt": "2024-01-01T01:00:00Z", "environmentId": "e"}
    line = json.dumps(rec)
    n = 140 * 2**20 // (len(line) + 1) + 1000  # a little over 140 MB: streamed, two blocks of 128 MB
    lines = [line] * n
    bad = n - 500  # 1-based line number of a bad record in the last block
    lines[bad - 1] = '{"id": "bad", "createdAt": "yesterday", "environmentId": "e"}'
    path = tmp_path / "big.ndjson"
    path.write_text("\n".join(lines) + "\n")
    assert path.stat().st_size > 128 * 2**20
    records, rejected = un.normalize(path, errors="collect", dedupe=False)
    assert records.height == n - 1
    assert rejected["line"].to_list() == [bad]
    assert rejected["source_index"].to_list() == [bad - 1]
    assert records["source_index"][-1] == n - 1


def test_a_frame_of_many_sources_comes_in_chunks_of_whole_batches_equal_to_reading_them_one_by_one():
    # Consecutive sources are read in groups, one task each, their rows merged into chunks of
    # up to 2**18 while they are read, and handed to Polars without copying: 300 pages of 1,000
    # records make a frame of two chunks, in source order, with each source's own accounting.
    template = _big_gitpod_page(1000)
    pages = []
    for p in range(300):
        records = [dict(r, id=f"p{p}-{r['id']}") for r in template["records"]]
        pages.append(json.dumps(dict(template, records=records)).encode())
    df = un.normalize(pages)
    assert df.height == 300_000
    assert df.n_chunks() == 2
    assert_frame_equal(df, pl.concat([un.normalize(p) for p in pages]))
    assert df["record_id"][0] == "p0-r0" and df["record_id"][-1] == "p299-r999"
    assert df["source_index"].to_list() == list(range(1000)) * 300
    out = un.normalize(pages, errors="collect")
    assert out.stats.height == 300
    assert out.stats.select(pl.col("records", "accepted", "rows").unique()).rows() == [(1000, 1000, 1000)]
    # A chunked frame works wherever a frame is taken.
    by_day = un.aggregate(df, every="1d", by=["project_id"])
    assert_frame_equal(by_day, un.aggregate(df.rechunk(), every="1d", by=["project_id"]))
    assert by_day["quantity"].sum() == pytest.approx(df["quantity"].sum())


def test_the_benchmarks_frame_size_counts_views_and_each_text_buffer_once():
    df = un.normalize(EXAMPLES / "gitpod.json")
    size = un._core._frame_bytes(df)
    text = [c for c in df.columns if df[c].dtype == pl.String and df[c].null_count() < df.height]
    assert size >= 16 * df.height * len(text)  # the views Polars' estimated_size leaves out
    twice = pl.concat([df, df], rechunk=False)  # the same text buffers, views twice
    assert size < un._core._frame_bytes(twice) < 2 * size


def test_a_bad_record_deep_in_a_large_page_is_named_by_its_index():
    # A large page is read in a few big parallel tasks; indices and paths count across them.
    page = _big_gitpod_page(30_000)
    page["records"][20_001]["createdAt"] = "yesterday"
    records, rejected = un.normalize(json.dumps(page).encode(), errors="collect")
    assert records.height == 29_999
    assert rejected.select("source_index", "path").row(0) == (20_001, "$.records[20001].createdAt")
    assert records["source_index"].to_list() == [i for i in range(30_000) if i != 20_001]

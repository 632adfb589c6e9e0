"""Nothing lost, nothing invented: one test (or more) per class of input that testing from outside
found losing records, getting numbers wrong or refusing a normal export. Every test asserts the
accounting: records == accepted + rejected + duplicates + superseded, per source and in total."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from datetime import timedelta
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

import polars as pl
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

import usagenorm as un
from conftest import EXAMPLES, PROVIDERS

EXPORTS = PROVIDERS


def balanced(out: un.Collected) -> un.Collected:
    """Asserts the accounting of a collected result, per source and in total."""
    st_ = out.stats
    for row in st_.iter_rows(named=True):
        assert row["records"] == row["accepted"] + row["rejected"] + row["duplicates"] + row["superseded"], row
    assert int(st_["rejected"].sum()) == out.rejected.height
    assert int(st_["rows"].sum()) == out.records.height
    return out


def gitpod_line(i: int) -> str:
    return json.dumps(
        {
            "id": f"r{i}",
            "createdAt": "2024-03-10T10:00:00Z",
            "stoppedAt": "2024-03-10T11:00:00Z",
            "environmentId": f"e{i}",
        }
    )


# ---- 1. NDJSON recognised from the whole text ------------------------------------------------


@pytest.mark.parametrize(
    ("first", "rejected"),
    [("", 0), ("   \t", 0), ("{not json", 1), ('{"id": "x", ', 1), ("garbage", 1), ("[1, 2", 1)],
)
@pytest.mark.parametrize("as_file", [False, True])
def test_ndjson_with_a_blank_or_broken_first_line_keeps_every_good_line(tmp_path, first, rejected, as_file):
    text = "\n".join([first, gitpod_line(1), "", gitpod_line(2), gitpod_line(3), ""]).encode()
    if as_file:
        path = tmp_path / "export.json"  # a *.json name: not NDJSON by its name
        path.write_bytes(text)
        source = path
    else:
        source = text
    out = balanced(un.normalize(source, errors="collect"))
    assert out.records["record_id"].to_list() == ["r1", "r2", "r3"]
    assert out.rejected.height == rejected
    assert out.stats["records"].item() == 3 + rejected, "blank lines are not records"
    if rejected:
        assert out.rejected["line"].to_list() == [1]


def test_a_broken_pretty_printed_document_is_still_one_rejection():
    text = json.dumps(json.loads((EXAMPLES / "gitpod.json").read_text()), indent=2)
    broken = text[: len(text) // 2].encode()  # cut in the middle of a record
    out = balanced(un.normalize(broken, errors="collect"))
    assert out.records.height == 0
    assert out.rejected.height == 1


@st.composite
def ndjson_with_noise(draw):
    good = draw(st.integers(1, 6))
    kinds = draw(st.lists(st.sampled_from(["good", "blank", "broken"]), min_size=good, max_size=good + 8))
    kinds = ["good"] * good + [k for k in kinds if k != "good"]
    order = draw(st.permutations(kinds))
    lines, n_good, n_broken = [], 0, 0
    for kind in order:
        if kind == "good":
            lines.append(gitpod_line(n_good))
            n_good += 1
        elif kind == "blank":
            lines.append(draw(st.sampled_from(["", " ", "\t", "  \r"])))
        else:
            text = draw(
                st.one_of(
                    st.sampled_from(["{", "[", "{not json", '{"id": ', "}", "]", "nul", '"open', "{}{", "[1,]"]),
                    st.text(alphabet=st.characters(blacklist_characters="\n\r", codec="utf-8"), min_size=1, max_size=12),
                )
            )
            try:
                json.loads(text)
                ok = True
            except ValueError:
                ok = False
            assume(not ok and text.strip())
            lines.append(text)
            n_broken += 1
    return "\n".join(lines).encode(), n_good, n_broken


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(ndjson_with_noise())
def test_property_ndjson_with_random_blank_and_broken_lines_keeps_every_good_line(case):
    data, n_good, n_broken = case
    out = balanced(un.normalize(data, errors="collect"))
    assert sorted(out.records["record_id"].to_list()) == sorted(f"r{i}" for i in range(n_good))
    assert out.rejected.height == n_broken
    assert out.stats["records"].item() == n_good + n_broken


# ---- 2. a truncated gzip stream keeps the lines before the break, at every size --------------


@pytest.mark.parametrize("as_bytes", [False, True])
def test_a_small_truncated_gzip_keeps_the_lines_before_the_break(tmp_path, as_bytes):
    text = "".join(gitpod_line(i) + "\n" for i in range(200)).encode()
    packed = gzip.compress(text)
    cut = packed[: len(packed) * 2 // 3]
    path = tmp_path / "usage.ndjson.gz"
    path.write_bytes(cut)
    out = balanced(un.normalize(cut if as_bytes else path, errors="collect"))
    ids = out.records["record_id"].to_list()
    assert len(ids) > 20, "the readable lines are kept"
    assert ids == [f"r{i}" for i in range(len(ids))], "a prefix of the records, in order"
    assert out.rejected["reason"][-1].startswith("not a readable gzip stream")


def test_a_complete_small_gzip_reads_like_its_plain_text(tmp_path):
    text = (EXAMPLES / "suger.json").read_bytes()
    plain = un.normalize(text, errors="collect")
    packed = un.normalize(gzip.compress(text), errors="collect")
    assert packed.records.equals(plain.records)
    assert packed.stats.equals(plain.stats)


# ---- 3. floats JSON cannot hold, from Python dicts --------------------------------------------


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_a_non_finite_float_rejects_its_record_by_name(bad):
    page = json.loads((EXAMPLES / "suger.json").read_text())
    page["usageRecordGroups"][0]["records"]["api_calls"] = bad
    page["usageRecordGroups"][1]["partner"] = bad  # an unmapped field, kept in tags: rejected too
    out = balanced(un.normalize(page, errors="collect"))
    assert out.rejected["path"].to_list() == [
        "$.usageRecordGroups[0].records.api_calls",
        "$.usageRecordGroups[1].partner",
    ]
    assert "not a number JSON can hold" in out.rejected["reason"][0]
    assert out.stats["records"].item() == len(page["usageRecordGroups"])
    with pytest.raises(un.NormalizeError) as e:
        un.normalize(page)
    assert e.value.path == "$.usageRecordGroups[0].records.api_calls"


def test_a_non_finite_float_in_a_list_of_bare_records_and_a_lone_surrogate():
    records = [
        {"id": "a", "createdAt": "2024-01-01T00:00:00Z", "environmentId": "e", "weight": 1.5},
        {"id": "b", "createdAt": "2024-01-01T00:00:00Z", "environmentId": "e", "weight": float("nan")},
        {"id": "c", "createdAt": "2024-01-01T00:00:00Z", "environmentId": "e\ud800"},
    ]
    out = balanced(un.normalize(records, errors="collect"))
    assert out.records["record_id"].to_list() == ["a"]
    assert out.rejected["path"].to_list() == ["$[1].weight", "$[2].environmentId"]


# ---- 4. a repeated key keeps its last value -------------------------------------------------


def test_a_repeated_key_counts_once_with_the_last_value():
    text = (
        b'{"usageRecordGroups": [{"id": "g1", "id": "g2", "entitlementID": "ent", "creationTime": '
        b'"2024-08-12T01:02:15Z", "status": "REPORTED", "status": "REPORTED", '
        b'"records": {"api_calls": 1, "storage_gb": 3, "api_calls": 2}}]}'
    )
    out = balanced(un.normalize(text, errors="collect"))
    df = out.records.sort("metric")
    assert df["metric"].to_list() == ["api_calls", "storage_gb"]
    assert df["quantity"].to_list() == [2.0, 3.0]
    assert df["record_id"].to_list() == ["g2", "g2"]
    assert json.loads(df["tags"][0]).get("status") is None  # status has its column; no repeat in tags
    assert df["tags"][0].count('"status"') == 0


# ---- 5. money rounding is exact for every number text ----------------------------------------


def exabits_cost(fee: str) -> Decimal:
    text = (
        '{"status": true, "data": [{"id": "x", "resource": {"id": "r", "type": "vm"}, '
        f'"created_time": 1724945437, "terminated_time": 1724982385, "total_uptime": 60, "total_fee": {fee}'
        "}]}"
    )
    return un.normalize(text.encode())["cost"].item()


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet="0123456789", min_size=0, max_size=20).map(lambda s: s.lstrip("0") or "0"),
    st.text(alphabet="0123456789", min_size=1, max_size=60),
    st.booleans(),
)
@example("0", "000000000" + "9" * 38, False)
@example("0", "000000000" + "5" + "0" * 37, False)
@example("0", "000000001" + "5" + "0" * 50, True)
@example("12345678901234567890", "0000000005" + "0" * 30 + "1", False)
def test_property_rounding_equals_decimal_quantize_half_even(integer, fraction, negative):
    text = ("-" if negative else "") + integer + "." + fraction
    assume(len((integer + fraction).lstrip("0")) <= 60)
    with localcontext() as ctx:
        ctx.prec = 100
        want = Decimal(text).quantize(Decimal("1e-9"), rounding=ROUND_HALF_EVEN)
    assert exabits_cost(text) == want


def test_rounding_just_below_the_ninth_place_does_not_overflow():
    assert exabits_cost("0.000000000" + "9" * 38) == Decimal("1e-9")


# ---- 6. rate-card prices finer than the ninth place -----------------------------------------


def test_a_price_finer_than_the_ninth_place_is_refused_naming_the_row():
    with pytest.raises(un.RateCardError) as e:
        un.RateCard.from_records(
            [
                {"provider": "gitpod", "unit_price": "0.5"},
                {"provider": "suger", "unit_price": "0.0000000004", "unit": "byte"},
            ]
        )
    assert e.value.row == 2
    assert "0.0000000004" in str(e.value) and "9th decimal" in str(e.value)
    # Trailing zeros past the ninth place change nothing: accepted.
    card = un.RateCard.from_records([{"provider": "suger", "unit_price": "0.000000004000"}])
    assert card is not None


# ---- 7 and 8. VMware's period over the whole source, and averages as unit-hours ---------------


def vmware_page(items: list[tuple[str, float]], unit: str = "GB") -> dict:
    return {
        "content": [{"usage": u, "usage_datetime": t} for t, u in items],
        "metadata": {"metric_id": "memory", "unit_of_measure_display_name": unit},
        "total_elements": len(items),
    }


def test_vmware_daily_period_is_inferred_over_the_whole_source_not_per_page():
    days = [(f"2024-05-0{d}T00:00:00Z", 5.0) for d in range(1, 6)]
    pages = [vmware_page(days[:4]), vmware_page(days[4:])]  # the last page holds one item
    out = balanced(un.normalize(pages, errors="collect"))
    spans = (out.records["usage_end"] - out.records["usage_start"]).to_list()
    assert spans == [timedelta(days=1)] * 5
    assert {json.loads(t)["period"] for t in out.records["tags"]} == {"DAILY"}
    # The same pages as NDJSON lines of one file.
    ndjson = "\n".join(json.dumps(p) for p in pages).encode()
    lines = balanced(un.normalize(ndjson, errors="collect"))
    assert (lines.records["usage_end"] - lines.records["usage_start"]).to_list() == spans


def test_vmware_last_page_saved_as_its_own_file_takes_the_period_of_the_other_files(tmp_path):
    days = [(f"2024-05-0{d}T00:00:00Z", 5.0) for d in range(1, 6)]
    (tmp_path / "page-1.json").write_text(json.dumps(vmware_page(days[:4])))
    (tmp_path / "page-2.json").write_bytes(gzip.compress(json.dumps(vmware_page(days[4:])).encode()))
    out = balanced(un.normalize(tmp_path, errors="collect"))
    assert (out.records["usage_end"] - out.records["usage_start"]).to_list() == [timedelta(days=1)] * 5
    sources = [json.loads(t)["period_source"] for t in out.records["tags"]]
    assert sources == ["inferred"] * 4 + ["inferred_across_sources"]
    # On its own, one item says nothing: the API's default, HOURLY, and the tags say so.
    alone = un.normalize(tmp_path / "page-2.json")
    assert json.loads(alone["tags"][0])["period_source"] == "default"


def test_vmware_daily_items_at_local_midnight_across_dst_are_daily():
    # America/New_York: 2024-03-10 has 23 hours, 2024-11-03 has 25.
    spring = ["2024-03-09T00:00:00-05:00", "2024-03-10T00:00:00-05:00", "2024-03-11T00:00:00-04:00"]
    fall = ["2024-11-02T00:00:00-04:00", "2024-11-03T00:00:00-04:00", "2024-11-04T00:00:00-05:00"]
    for times, hours in ((spring, [24, 23]), (fall, [24, 25])):
        df = un.normalize(vmware_page([(t, 2.0) for t in times]))
        assert {json.loads(t)["period"] for t in df["tags"]} == {"DAILY"}
        spans = (df["usage_end"] - df["usage_start"]).to_list()
        assert spans[:2] == [timedelta(hours=h) for h in hours]
        assert df["quantity"].to_list()[:2] == [2.0 * h for h in hours], "the average × the day's hours"


def test_vmware_hourly_and_daily_exports_of_the_same_usage_sum_to_the_same_total():
    hourly = vmware_page([(f"2024-05-0{1 + h // 24}T{h % 24:02d}:00:00Z", 5.0) for h in range(48)])
    daily = vmware_page([("2024-05-01T00:00:00Z", 5.0), ("2024-05-02T00:00:00Z", 5.0)])
    monthly = vmware_page([("2024-04-01T00:00:00Z", 5.0), ("2024-05-01T00:00:00Z", 5.0)])
    h, d, m = (un.normalize(p) for p in (hourly, daily, monthly))
    assert h["quantity"].sum() == d["quantity"].sum() == 240.0
    assert h["unit"].unique().to_list() == d["unit"].unique().to_list() == ["GB-Hours"]
    assert m["quantity"].to_list() == [5.0 * 30 * 24, 5.0 * 31 * 24]
    # Aggregated by day, the two exports agree.
    agg = [un.aggregate(x, every="1d", by=["metric"]).sort("bucket_start")["quantity"].to_list() for x in (h, d)]
    assert agg[0] == agg[1] == [120.0, 120.0]
    # A duration unit stays Hours, converted and summed the same way.
    mins = un.normalize(vmware_page([("2024-05-01T00:00:00Z", 30.0), ("2024-05-02T00:00:00Z", 30.0)], unit="Minutes"))
    assert mins["unit"].unique().to_list() == ["Hours"]
    assert mins["quantity"].to_list() == [12.0, 12.0]


# ---- 9. empty pages are zero records ---------------------------------------------------------

EMPTY_PAGES = {
    "gitpod": [{"pagination": {}}, {"pagination": {"nextToken": ""}}, {"records": [], "pagination": {}}],
    "suger": [{"nextOffset": 0}, {"usageRecordGroups": [], "nextOffset": 0}, {"usageRecordGroups": None}],
    "exabits": [{"status": True, "total": 0}, {"status": True, "message": "ok", "data": []}],
    "consumption_log": [{"offset": 0, "limit": 100}, {"offset": 0, "limit": 100, "data": []}],
    "vmware": [
        {"empty": True, "total_elements": 0},
        {"content": [], "metadata": {"metric_id": "m"}},
        {"content": [], "empty": True},
    ],
}


@pytest.mark.parametrize(("provider", "page"), [(p, x) for p, pages in EMPTY_PAGES.items() for x in pages])
@pytest.mark.parametrize("forced", [False, True])
def test_an_empty_page_is_zero_records(provider, page, forced):
    for source in (page, json.dumps(page).encode()):
        out = balanced(un.normalize(source, errors="collect", provider=provider if forced else None))
        assert out.records.height == 0 and out.rejected.height == 0
        assert out.stats["records"].item() == 0
        un.normalize(source, provider=provider if forced else None)  # errors="raise" does not raise


def test_a_quiet_day_among_other_pages_and_the_empty_object():
    pages = [json.loads((EXAMPLES / "gitpod.json").read_text()), {"pagination": {"nextToken": ""}}, {}]
    out = balanced(un.normalize(pages, errors="collect"))
    assert out.rejected.height == 0
    assert out.records.height == un.normalize(EXAMPLES / "gitpod.json").height
    ndjson = b'{"pagination": {}}\n{}\n' + gitpod_line(1).encode() + b"\n"
    out = balanced(un.normalize(ndjson, errors="collect"))
    assert out.records["record_id"].to_list() == ["r1"] and out.rejected.height == 0


# ---- 10. a folder expands in sorted path order -------------------------------------------------


def test_a_folder_expands_in_sorted_path_order_like_a_glob(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.json").write_text(gitpod_line(1))
    (tmp_path / "b.json").write_text(gitpod_line(2))
    (tmp_path / "a.json").write_text(gitpod_line(3))
    out = balanced(un.normalize(tmp_path, errors="collect"))
    by_folder = out.stats["source"].to_list()
    by_glob = sorted(str(p) for p in tmp_path.rglob("*.json"))
    assert by_folder == by_glob == sorted(by_folder)
    assert by_folder.index(str(tmp_path / "a" / "x.json")) < by_folder.index(str(tmp_path / "b.json"))


def test_the_earlier_path_wins_a_duplicate_the_same_way_for_folder_and_glob(tmp_path):
    rec = json.loads(gitpod_line(1))
    (tmp_path / "z").mkdir()
    (tmp_path / "z" / "first.json").write_text(json.dumps(rec))
    (tmp_path / "zz.json").write_text(json.dumps(rec))
    a = balanced(un.normalize(tmp_path, errors="collect"))
    b = balanced(un.normalize(str(tmp_path / "**" / "*.json"), errors="collect"))
    assert a.records["source"].to_list() == b.records["source"].to_list() == [str(tmp_path / "z" / "first.json")]


# ---- 11. canonical inputs are checked, and read from Python too -------------------------------


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "usagenorm", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_cli_refuses_a_csv_that_is_not_canonical(tmp_path):
    bad = tmp_path / "other.csv"
    bad.write_text("a,b\n1,2\n")
    r = cli("normalize", str(bad), "-o", str(tmp_path / "out.parquet"))
    assert r.returncode == 2, r.stderr
    assert str(bad) in r.stderr and "'provider'" in r.stderr and "missing column" in r.stderr
    assert not (tmp_path / "out.parquet").exists()


def test_cli_refuses_a_canonical_column_of_the_wrong_type(tmp_path):
    df = un.normalize(EXAMPLES / "gitpod.json")
    bad = tmp_path / "usage.csv"
    df.with_columns(pl.lit("not a time").alias("usage_start")).write_csv(bad)
    r = cli("normalize", str(bad), "-o", str(tmp_path / "out.parquet"))
    assert r.returncode == 2 and str(bad) in r.stderr and "usage_start" in r.stderr, r.stderr


@pytest.mark.parametrize("suffix", ["parquet", "csv", "ndjson"])
def test_python_normalize_reads_a_canonical_table_like_the_cli(tmp_path, suffix):
    df = un.normalize(EXAMPLES)
    path = tmp_path / f"usage.{suffix}"
    r = cli("normalize", str(EXAMPLES), "-o", str(path))
    assert r.returncode == 0, r.stderr
    back = un.normalize(path)
    assert back.schema == df.schema
    assert back.equals(df)
    out = balanced(un.normalize([path, EXAMPLES / "gitpod.json"], errors="collect"))
    # The Gitpod records are already in the table: duplicates, not new rows (test_reruns).
    assert out.records.equals(df)
    assert out.stats.filter(pl.col("source") == str(EXAMPLES / "gitpod.json"))["duplicates"].item() > 0
    with pytest.raises(un.ColumnError, match="missing column"):
        bad = tmp_path / "bad.parquet"
        pl.DataFrame({"a": [1]}).write_parquet(bad)
        un.normalize(bad)


# ---- 12. our own FOCUS output passes our own check ----------------------------------------------


def test_a_tiered_price_passes_check_focus():
    card = un.RateCard.from_records(
        [
            {"provider": "suger", "metric": "api_calls", "unit_price": "0.000001"},
            {"provider": "suger", "metric": "api_calls", "unit_price": "0.0000005", "tier_from": 1000000},
        ]
    )
    page = {
        "usageRecordGroups": [
            {
                "id": "g",
                "entitlementID": "ent",
                "creationTime": "2024-08-12T01:02:15Z",
                "status": "REPORTED",
                "records": {"api_calls": 3000000},
            }
        ]
    }
    priced = un.price(un.normalize(page), card)
    assert priced["cost"].item() == Decimal(2)
    focus = un.to_focus(priced)
    # The average held to 9 places (0.000000667) times 3,000,000 is not the cost: FOCUS's unit
    # price is the cost over the quantity, to 18 places.
    assert abs(focus["ListUnitPrice"].item() - Decimal(2) / Decimal(3_000_000)) <= Decimal("1e-18")
    assert un.check_focus(focus).height == 0


# ---- 13. in-memory lists of mixed formats, and JSON text passed as str ----------------------------


def test_a_list_of_pages_of_different_formats_is_detected_per_page():
    pages = [json.loads((EXAMPLES / f"{p}.json").read_text()) for p in EXPORTS]
    out = balanced(un.normalize(pages, errors="collect"))
    one_by_one = [un.normalize(p) for p in pages]
    assert out.rejected.height == 0
    assert out.records["provider"].unique(maintain_order=True).to_list() == EXPORTS
    assert out.records.height == sum(df.height for df in one_by_one)
    assert out.records.drop("source_index").equals(pl.concat(one_by_one).drop("source_index"))
    # As an iterator, and as NDJSON lines of one file.
    assert un.normalize(iter(pages)).drop("source_index").equals(out.records.drop("source_index"))
    ndjson = "\n".join(json.dumps(p) for p in pages).encode()
    lines = balanced(un.normalize(ndjson, errors="collect"))
    assert lines.records.drop("source_index").equals(out.records.drop("source_index"))


def test_a_list_of_bare_records_of_two_formats():
    gitpod = json.loads((EXAMPLES / "gitpod.json").read_text())["records"][:2]
    suger = json.loads((EXAMPLES / "suger.json").read_text())["usageRecordGroups"][:1]
    out = balanced(un.normalize(gitpod + suger, errors="collect"))
    assert out.rejected.height == 0
    assert set(out.records["provider"]) == {"gitpod", "suger"}


def test_json_text_passed_as_str_says_to_pass_bytes():
    text = (EXAMPLES / "gitpod.json").read_text()
    with pytest.raises(FileNotFoundError) as e:
        un.normalize(text)
    message = str(e.value)
    assert "bytes" in message and "path" in message
    assert text not in message and len(message) < 80 + 200


def test_a_missing_long_path_is_shortened_in_the_message():
    with pytest.raises(FileNotFoundError) as e:
        un.normalize("x" * 500 + ".json")
    assert len(str(e.value)) < 150


def test_nothing_is_lost_across_every_sample_in_every_form(tmp_path):
    # The samples through every route, as a guard while the paths above changed.
    for provider in EXPORTS:
        path = EXAMPLES / f"{provider}.json"
        data = path.read_bytes()
        want = un.normalize(path, errors="collect")
        for source in (data, gzip.compress(data), json.loads(data)):
            got = balanced(un.normalize(source, errors="collect"))
            assert got.records.drop("source").equals(want.records.drop("source")), provider


# ---- the kind of each rejection (#16: typed errors) ------------------------------------------


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        (b"{not json", "malformed_json"),
        (b"\xff\xfe", "malformed_json"),
        (b"", "malformed_json"),
        (gzip.compress(b'{"records": []}')[:-9], "malformed_json"),
        (b"[1, 2]", "wrong_type"),
        (b'"a string"', "wrong_type"),
        (b'{"hello": 1}', "invalid"),
        (b'{"records": [{"createdAt": "2024-01-01T00:00:00Z", "environmentId": "e", "x": ' + b"[" * 200 + b"]" * 200 + b"}]}", "out_of_range"),
        (b'{"status": false, "message": "boom"}', "page"),
        (b'{"content": [{"usage_datetime": "2024-01-01T00:00:00Z", "usage": 1}], "metadata": {"metric_id": 5}}', "page"),
    ],
)
def test_each_rejection_has_a_kind(source, kind):
    out = balanced(un.normalize(source, errors="collect"))
    assert out.rejected["kind"].to_list()[-1:] == [kind], out.rejected.select("kind", "path", "reason").rows()
    assert set(out.rejected["kind"]) <= {"missing", "wrong_type", "out_of_range", "invalid", "malformed_json", "page"}

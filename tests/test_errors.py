"""Bad input: each case is a rejection with source, record index, JSON path and reason — never
a panic, never a guess, never a silent drop — and errors="raise" stops at the first one."""

from __future__ import annotations

import copy
import json

import polars as pl
import pytest

import usagenorm as un
from conftest import EXAMPLES

KEYS = {
    "gitpod": "records",
    "suger": "usageRecordGroups",
    "exabits": "data",
    "vmware": "content",
    "consumption_log": "data",
    "github": "usageItems",
}


def _del(field):
    def f(rec):
        rec.pop(field, None)
        if field == "metaInfo":
            rec.pop("creationTime", None)

    return f


def _both(*fs):
    def f(rec):
        for g in fs:
            g(rec)

    return f


def _set(field, value):
    def f(rec):
        target = rec
        parts = field.split(".")
        for p in parts[:-1]:
            target = target[p]
        target[parts[-1]] = value

    return f


# The kind of each case of the matrix below (the `kind` column, NormalizeError.kind).
KIND = {
    "missing": "missing",
    "null required": "missing",
    "terminated without end": "missing",
    "wrong type": "wrong_type",
    "bad timestamp": "invalid",
    "bad decimal": "invalid",
    "end before start": "invalid",
    "overage beyond usage": "invalid",
    "negative quantity": "invalid",
    "string as number": "invalid",
}

# (provider, case, mutation of record 1, path of the field within the record, reason fragment)
MATRIX = [
    ("gitpod", "missing", _del("createdAt"), "createdAt", "required field is missing"),
    ("gitpod", "wrong type", _set("createdAt", ["2024-01-01"]), "createdAt", "expected a timestamp, got an array"),
    ("gitpod", "bad timestamp", _set("createdAt", "yesterday"), "createdAt", "expected an RFC 3339 timestamp"),
    ("gitpod", "end before start", _set("stoppedAt", "2024-03-11T09:00:00Z"), "stoppedAt", "ends before createdAt"),
    ("gitpod", "null required", _set("createdAt", None), "createdAt", "required field is missing"),
    ("suger", "missing", _del("metaInfo"), "metaInfo.timestamp", "required field is missing"),
    ("suger", "wrong type", _set("records", [1, 2]), "records", "expected an object, got an array"),
    ("suger", "bad timestamp", _set("metaInfo.timestamp", "13/08/2024"), "metaInfo.timestamp", "expected an RFC 3339"),
    (
        "suger",
        "negative quantity",
        _set("metaInfo.billableRecords", [{"key": "seats", "quantity": -3}]),
        "metaInfo.billableRecords[0].quantity",
        "negative quantity -3",
    ),
    (
        "suger",
        "string as number",
        _set("metaInfo.billableRecords", [{"key": "seats", "quantity": "twelve"}]),
        "metaInfo.billableRecords[0].quantity",
        "expected a number",
    ),
    ("exabits", "missing", _del("created_time"), "created_time", "required field is missing"),
    ("exabits", "wrong type", _set("total_uptime", {"minutes": 5}), "total_uptime", "expected a number, got an object"),
    ("exabits", "bad timestamp", _set("created_time", "not-a-time"), "created_time", "expected an RFC 3339"),
    (
        "exabits",
        "end before start",
        _both(_set("status", "terminated"), _set("terminated_time", 1724945400)),
        "terminated_time",
        "ends before created_time",
    ),
    ("exabits", "bad decimal", _set("total_fee", "3,14"), "total_fee", "not a decimal number"),
    ("exabits", "terminated without end", _set("status", "terminated"), "terminated_time", "needs its terminated_time"),
    ("vmware", "missing", _del("usage_datetime"), "usage_datetime", "required field is missing"),
    ("vmware", "wrong type", _set("usage", [2]), "usage", "expected a number, got an array"),
    ("vmware", "bad timestamp", _set("usage_datetime", "2024-05-01 25:00"), "usage_datetime", "RFC 3339"),
    ("vmware", "overage beyond usage", _set("overage", 7), "overage", "overage 7 is not within usage 2"),
    ("consumption_log", "missing", _del("validFrom"), "validFrom", "required field is missing"),
    ("consumption_log", "wrong type", _set("value", True), "value", "expected a number, got a boolean"),
    ("consumption_log", "bad timestamp", _set("validFrom", "April 3rd"), "validFrom", "expected an RFC 3339"),
    (
        "consumption_log",
        "end before start",
        _set("validTo", "2024-04-03T07:00:00Z"),
        "validTo",
        "ends before validFrom",
    ),
    ("github", "missing", _del("date"), "date", "required field is missing"),
    ("github", "wrong type", _set("quantity", [1]), "quantity", "expected a number, got an array"),
    ("github", "bad timestamp", _set("date", "March 2nd"), "date", "expected a date (YYYY-MM-DD)"),
    ("github", "negative quantity", _set("quantity", -5), "quantity", "negative quantity -5"),
    ("github", "bad decimal", _set("netAmount", "1,5"), "netAmount", "not a decimal number"),
]


def page_with_bad_record(provider, mutate):
    page = json.loads((EXAMPLES / f"{provider}.json").read_text())
    recs = page[KEYS[provider]]
    if provider == "consumption_log":
        extra = copy.deepcopy(recs[0])
        extra["value"] = 30
        recs.append(extra)
    assert len(recs) >= 3
    mutate(recs[1])
    return page, len(recs)


@pytest.mark.parametrize("provider,case,mutate,field,reason", MATRIX, ids=[f"{m[0]}-{m[1]}" for m in MATRIX])
def test_raise_names_source_record_path_and_reason(provider, case, mutate, field, reason):
    page, _ = page_with_bad_record(provider, mutate)
    with pytest.raises(un.NormalizeError) as info:
        un.normalize(json.dumps(page).encode())
    e = info.value
    assert isinstance(e, ValueError)
    assert (e.source, e.index, e.provider) == ("<memory>", 1, provider)
    assert e.path == f"$.{KEYS[provider]}[1].{field}"
    assert e.kind == KIND[case]
    assert reason in e.reason
    assert str(e).startswith(f"<memory>: record 1, $.{KEYS[provider]}[1].{field}: ")


@pytest.mark.parametrize("provider,case,mutate,field,reason", MATRIX, ids=[f"{m[0]}-{m[1]}" for m in MATRIX])
def test_collect_keeps_every_other_record_and_accounts_for_all(provider, case, mutate, field, reason):
    page, n = page_with_bad_record(provider, mutate)
    out = un.normalize(page, errors="collect")
    records, rejected = out  # unpacks as a pair
    assert rejected.columns == ["source", "source_index", "line", "provider", "kind", "path", "reason", "raw"]
    assert rejected.height == 1
    bad = rejected.row(0, named=True)
    assert bad["kind"] == KIND[case], (case, bad["kind"], bad["reason"])
    assert (bad["source_index"], bad["provider"], bad["path"]) == (1, provider, f"$.{KEYS[provider]}[1].{field}")
    assert reason in bad["reason"]
    assert json.loads(bad["raw"]) == page[KEYS[provider]][1]
    assert 1 not in records["source_index"].to_list()
    assert sorted(set(records["source_index"].to_list())) == [i for i in range(n) if i != 1]
    st = out.stats.row(0, named=True)
    assert st["records"] == n and st["accepted"] == n - 1 and st["rejected"] == 1 and st["rows"] == records.height


@pytest.mark.parametrize("provider", list(KEYS))
def test_malformed_json_document_is_one_rejection(provider):
    text = (EXAMPLES / f"{provider}.json").read_bytes()
    cut = text[: len(text) // 2]
    with pytest.raises(un.NormalizeError, match=r"<memory>: record 0, \$: malformed JSON: EOF while parsing"):
        un.normalize(cut)
    out = un.normalize(cut, errors="collect")
    assert out.records.height == 0
    assert out.rejected["reason"].item().startswith("malformed JSON")
    assert out.rejected["raw"].item() == cut.decode()


@pytest.mark.parametrize("provider", list(KEYS))
def test_bad_ndjson_line_is_rejected_alone_with_its_line(provider, tmp_path):
    page = json.loads((EXAMPLES / f"{provider}.json").read_text())
    good = json.dumps(page)
    f = tmp_path / "x.ndjson"
    f.write_text(good + "\n" + '{"truncated": ' + "\n" + good + "\n")
    whole = un.normalize(page)
    n = whole["source_index"].max() + 1
    out = un.normalize(f, errors="collect", dedupe=False)
    assert out.records.height == 2 * whole.height
    assert out.rejected.select("source_index", "line", "path").row(0) == (n, 2, "$")
    assert out.records["source_index"].max() == 2 * n  # the bad line took one index
    with pytest.raises(un.NormalizeError) as info:
        un.normalize(f)
    assert (info.value.line, info.value.index) == (2, n)
    assert "(line 2)" in str(info.value)


def test_invalid_utf8_line_and_document():
    doc = b'{"records": [{"createdAt": "2024-01-01T00:00:00Z", "userId": "\xff"}]}'
    out = un.normalize(doc, errors="collect")
    at = doc.index(b"\xff")
    assert out.rejected["reason"].item() == f"invalid UTF-8 at byte {at}"
    assert out.stats["records"].item() == 1


def test_exabits_error_document_is_reported_not_empty():
    doc = {"status": False, "message": "token expired", "data": None}
    with pytest.raises(un.NormalizeError, match="the API returned an error: token expired"):
        un.normalize(doc)
    out = un.normalize(doc, errors="collect")
    assert out.records.height == 0 and out.rejected.height == 1
    assert out.rejected["provider"].item() == "exabits"


def test_first_error_in_source_order_wins(tmp_path):
    bad = {"records": [{"createdAt": "x"}]}
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(bad))
    b.write_text(json.dumps(bad))
    with pytest.raises(un.NormalizeError) as info:
        un.normalize([b, a])
    assert info.value.source == str(b)


def test_number_as_string_and_unknown_fields_are_accepted():
    rec = {
        "id": "x",
        "created_time": "1724945437",
        "status": "terminated",
        "terminated_time": 1724982385,
        "total_uptime": "616",
        "total_fee": "3.148992",
        "per_minute_fee": 0.005112,
        "resource": {"id": "r", "type": "vm", "gpu": "A4000"},
        "region": "eu",
    }
    df = un.normalize(rec)
    assert df["quantity"].item() == 616 / 60
    assert str(df["cost"].item()) == "3.148992000"
    assert json.loads(df["tags"].item()) == {"region": "eu", "resource.gpu": "A4000"}
    assert df.schema["cost"] == pl.Decimal(38, 9)

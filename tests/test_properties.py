"""Hypothesis strategies that generate valid records for every format; the normalized times,
quantities and money must match an independent Python computation from the raw JSON."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

import usagenorm as un
from conftest import EXAMPLES

UTC = timezone.utc
BASE = datetime(2020, 1, 1, tzinfo=UTC)

instants = st.integers(0, 5 * 365 * 86_400_000_000).map(lambda us: BASE + timedelta(microseconds=us))
offsets = st.sampled_from([0, 60, 120, -300, 330, 545])  # minutes east of UTC
styles = st.sampled_from(["Z", "Zms", "Zus", "offset", "offset_ms"])


def rfc3339(t: datetime, style: str, offset_min: int) -> str:
    if style.startswith("Z"):
        base = t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
        frac = {"Z": "", "Zms": f".{t.microsecond // 1000:03d}", "Zus": f".{t.microsecond:06d}"}[style]
        return base + frac + "Z"
    local = t.astimezone(timezone(timedelta(minutes=offset_min)))
    return local.isoformat(timespec="milliseconds" if style == "offset_ms" else "seconds")


def parsed(text: str) -> datetime:
    """The independent reading: Python's ISO parser, to UTC, truncated to the microsecond."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def micros(t: datetime) -> int:
    d = t - datetime(1970, 1, 1, tzinfo=UTC)
    return (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds


def check_accounting(out, n: int) -> None:
    st_ = out.stats.row(0, named=True)
    assert st_["records"] == n == st_["accepted"]
    assert out.rejected.height == 0


@st.composite
def gitpod_records(draw):
    start = draw(instants)
    running = draw(st.booleans())
    # Start and end share a style: truncating both the same way keeps the end after the start.
    style, offset = draw(styles), draw(offsets)
    rec = {
        "id": draw(st.uuids()).hex,
        "createdAt": rfc3339(start, style, offset),
        "environmentId": draw(st.text("abcdef0123456789", min_size=1, max_size=12)),
    }
    if not running:
        rec["stoppedAt"] = rfc3339(start + timedelta(seconds=draw(st.integers(0, 30 * 86_400))), style, offset)
    if draw(st.booleans()):
        rec["projectId"] = draw(st.sampled_from(["00000000-0000-0000-0000-000000000000", "proj-a", "proj-b"]))
    return rec


@settings(max_examples=150, deadline=None)
@given(st.lists(gitpod_records(), min_size=1, max_size=20, unique_by=lambda r: r["id"]))
def test_gitpod_times_and_hours(records):
    out = un.normalize({"records": records}, errors="collect")
    check_accounting(out, len(records))
    for rec, row in zip(records, out.records.iter_rows(named=True)):
        start = parsed(rec["createdAt"])
        assert row["usage_start"] == start
        if "stoppedAt" in rec:
            end = parsed(rec["stoppedAt"])
            assert row["usage_end"] == end
            assert row["quantity"] == (micros(end) - micros(start)) / 3_600_000_000
        else:
            assert row["usage_end"] is None and row["quantity"] is None
        nil = rec.get("projectId") == "00000000-0000-0000-0000-000000000000"
        assert row["project_id"] == (None if nil else rec.get("projectId"))


fees = st.decimals(min_value=0, max_value=100, places=6, allow_nan=False, allow_infinity=False)


@st.composite
def exabits_items(draw):
    created = draw(st.integers(1_500_000_000, 1_900_000_000))
    uptime = draw(st.integers(0, 60 * 24 * 90))
    active = draw(st.booleans())
    fee = draw(fees)
    total = draw(fees)
    return {
        "created": created,
        "uptime": uptime,
        "active": active,
        "fee": fee,
        "total": total,
        "id": draw(st.uuids()).hex,
    }


def exabits_text(items) -> bytes:
    data = []
    for it in items:
        terminated = 0 if it["active"] else it["created"] + it["uptime"] * 60
        status = "active" if it["active"] else "terminated"
        data.append(
            f'{{"id":"{it["id"]}","resource":{{"id":"r","name":"n","type":"vm"}},"created_time":{it["created"]},'
            f'"status":"{status}","terminated_time":{terminated},"total_uptime":{it["uptime"]},'
            f'"total_fee":{it["total"]},"per_minute_fee":{it["fee"]}}}'
        )
    return ('{"status":true,"message":"ok","data":[' + ",".join(data) + f'],"total":{len(items)}}}').encode()


@settings(max_examples=150, deadline=None)
@given(st.lists(exabits_items(), min_size=1, max_size=20, unique_by=lambda i: i["id"]))
def test_exabits_hours_and_exact_money(items):
    out = un.normalize(exabits_text(items), errors="collect")
    check_accounting(out, len(items))
    for it, row in zip(items, out.records.iter_rows(named=True)):
        assert row["usage_start"] == datetime.fromtimestamp(it["created"], UTC)
        assert row["usage_end"] == (
            None if it["active"] else datetime.fromtimestamp(it["created"] + it["uptime"] * 60, UTC)
        )
        assert row["quantity"] == it["uptime"] / 60
        assert row["cost"] == it["total"]  # exact: read from the number's text
        assert row["unit_price"] == it["fee"] * 60


@st.composite
def suger_groups(draw):
    dims = draw(
        st.dictionaries(
            st.sampled_from(["api_calls", "seats", "gb", "events"]),
            st.integers(0, 10**9) | st.floats(0, 1e6, allow_nan=False),
            min_size=1,
        )
    )
    in_billable = draw(st.booleans())
    at = draw(instants)
    meta = {"timestamp": rfc3339(at, draw(styles), draw(offsets))}
    if in_billable:
        meta["billableRecords"] = [{"key": k, "properties": {}, "quantity": q} for k, q in dims.items()]
    status = draw(st.sampled_from(["REPORTED", "CREATED", "DELETED", "INVALID", "REPORT_FAILED"]))
    return {
        "id": draw(st.uuids()).hex,
        "buyerID": "b",
        "organizationID": "o",
        "entitlementID": "e",
        "status": status,
        "records": {} if in_billable else dims,
        "metaInfo": meta,
        "_dims": dims,
    }


@settings(max_examples=150, deadline=None)
@given(st.lists(suger_groups(), min_size=1, max_size=10, unique_by=lambda g: g["id"]))
def test_suger_one_row_per_dimension(groups):
    dims = [g.pop("_dims") for g in groups]
    out = un.normalize({"usageRecordGroups": groups}, errors="collect")
    check_accounting(out, len(groups))
    rows = out.records.iter_rows(named=True)
    for g, d in zip(groups, dims):
        for metric, q in d.items():
            row = next(rows)
            assert (row["record_id"], row["metric"], row["quantity"]) == (g["id"], metric, float(q))
            assert row["usage_start"] == row["usage_end"] == parsed(g["metaInfo"]["timestamp"])
            assert row["billable"] == (g["status"] not in ("DELETED", "INVALID"))
    assert next(rows, None) is None


@st.composite
def vmware_pages(draw):
    n = draw(st.integers(1, 24))
    start = draw(instants).replace(minute=0, second=0, microsecond=0)
    items = []
    for i in range(n):
        usage = draw(st.integers(0, 50))
        commitment = draw(st.none() | st.integers(0, 20))
        item = {
            "usage_datetime": (start + timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "usage": usage,
            "resources": [{"resource_id": f"h{j}", "usage_quantity": 1} for j in range(draw(st.integers(0, 3)))],
        }
        if commitment is not None:
            item["commitment"] = commitment
            item["overage"] = max(0, usage - commitment)
        items.append(item)
    return {"content": items, "metadata": {"metric_id": "m", "unit_of_measure_display_name": "Host"}}


@settings(max_examples=150, deadline=None)
@given(vmware_pages())
def test_vmware_committed_and_overage_sum_to_usage(page):
    out = un.normalize(page, errors="collect")
    check_accounting(out, len(page["content"]))
    by_item = {}
    for row in out.records.iter_rows(named=True):
        by_item.setdefault(row["source_index"], []).append(row)
    for i, item in enumerate(page["content"]):
        rows = by_item[i]
        assert sum(r["quantity"] for r in rows) == item["usage"]
        kinds = [r["charge_type"] for r in rows]
        if "commitment" not in item:
            assert kinds == ["usage"]
        else:
            assert kinds == (["committed", "overage"] if item["overage"] > 0 else ["committed"])
        assert rows[0]["usage_start"] == parsed(item["usage_datetime"])
        expected_end = parsed(item["usage_datetime"]) + timedelta(hours=1)
        assert all(r["usage_end"] == expected_end for r in rows)  # hourly spacing (or the HOURLY default)


@st.composite
def consumption_entries(draw):
    start = draw(instants)
    unit = draw(st.sampled_from(["minute", "Minute", "MINUTES", "hour", "second", "GB"]))
    value = draw(st.integers(0, 10**6))
    style, offset = draw(styles), draw(offsets)
    entry = {
        "tenantId": "t",
        "validFrom": rfc3339(start, style, offset),
        "unit": unit,
        "value": value,
        "metricType": "ComputeTime",
        "billingInformation": {"billingReference": "B"},
    }
    if draw(st.booleans()):
        entry["validTo"] = rfc3339(start + timedelta(minutes=draw(st.integers(0, 10**5))), style, offset)
    return entry


@settings(max_examples=150, deadline=None)
@given(st.lists(consumption_entries(), min_size=1, max_size=20))
def test_consumption_units_and_times(entries):
    out = un.normalize({"offset": 0, "limit": len(entries), "data": entries}, errors="collect", dedupe=False)
    check_accounting(out, len(entries))
    factor = {"minute": 1 / 60, "minutes": 1 / 60, "hour": 1.0, "second": 1 / 3600}
    for e, row in zip(entries, out.records.iter_rows(named=True)):
        f = factor.get(e["unit"].lower())
        assert row["quantity"] == (e["value"] * f if f is not None else float(e["value"]))
        assert row["unit"] == ("Hours" if f is not None else e["unit"])
        assert row["usage_start"] == parsed(e["validFrom"])
        assert row["usage_end"] == (parsed(e["validTo"]) if "validTo" in e else None)


def test_the_bundled_samples_satisfy_the_same_oracles():
    page = json.loads((EXAMPLES / "gitpod.json").read_text())
    test_gitpod_times_and_hours.hypothesis.inner_test(page["records"])
    vm = json.loads((EXAMPLES / "vmware.json").read_text())
    test_vmware_committed_and_overage_sum_to_usage.hypothesis.inner_test(vm)

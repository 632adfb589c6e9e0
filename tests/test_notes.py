"""One test per fact in shared/formats/NOTES.md: what real exports do that the API docs don't say."""

from __future__ import annotations

import json
from decimal import Decimal

import polars as pl
import pytest

import usagenorm as un
from conftest import EXAMPLES, ts

NIL = "00000000-0000-0000-0000-000000000000"


def page(provider: str) -> dict:
    return json.loads((EXAMPLES / f"{provider}.json").read_text())


# ---- gitpod ---------------------------------------------------------------------------------


def test_gitpod_any_key_may_be_missing():
    df = un.normalize(
        {
            "records": [
                {"createdAt": "2024-01-01T00:00:00Z", "stoppedAt": "2024-01-01T00:30:00Z"},
                {"id": "only-id-and-start", "createdAt": "2024-01-01T00:00:00Z", "environmentId": "e"},
            ]
        }
    )
    assert df["quantity"].to_list() == [0.5, None]
    assert df.select("record_id", "project_id", "user_id", "sku").row(0) == (None, None, None, None)
    assert df["tags"].to_list() == ["{}", "{}"]


def test_gitpod_all_zero_project_is_no_project():
    df = un.normalize({"records": [{"createdAt": "2024-01-01T00:00:00Z", "projectId": NIL, "environmentId": "e"}]})
    assert df["project_id"].item() is None


@pytest.mark.parametrize(
    "text",
    [
        "2024-01-01T10:00:00Z",
        "2024-01-01T10:00:00.000Z",
        "2024-01-01T11:00:00+01:00",
        "2024-01-01T05:00:00.000000-05:00",
        "2024-01-01T10:00:00.000000000Z",
    ],
)
def test_gitpod_timestamps_with_or_without_fraction_and_offset(text):
    df = un.normalize({"records": [{"createdAt": text, "stoppedAt": "2024-01-01T12:00:00Z", "environmentId": "e"}]})
    assert df["usage_start"].item() == ts("2024-01-01T10:00:00Z")
    assert df["quantity"].item() == 2.0


def test_gitpod_pages_chain_and_the_token_is_not_a_record(tmp_path):
    p1 = {
        "pagination": {"nextToken": "abc"},
        "records": [{"id": "1", "createdAt": "2024-01-01T00:00:00Z", "environmentId": "e"}],
    }
    p2 = {
        "pagination": {"nextToken": ""},
        "records": [{"id": "2", "createdAt": "2024-01-02T00:00:00Z", "environmentId": "e"}],
    }
    p3 = {"pagination": {}, "records": []}
    f = tmp_path / "pages.ndjson"
    f.write_text("\n".join(json.dumps(p) for p in (p1, p2, p3)) + "\n")
    out = un.normalize(f, errors="collect")
    assert out.records["record_id"].to_list() == ["1", "2"]
    assert out.stats["records"].item() == 2


# ---- suger ----------------------------------------------------------------------------------


def test_suger_quantities_from_records_never_plus_billable_or_origin_records():
    g = page("suger")["usageRecordGroups"][0]
    g["metaInfo"]["billableRecords"] = [{"key": "api_calls", "properties": {}, "quantity": 1200}]
    g["metaInfo"]["originRecords"] = {"api_calls": 1500}
    df = un.normalize(g)
    assert df.select("metric", "quantity").rows() == [("api_calls", 1200.0), ("storage_gb", 35.5)]
    assert json.loads(df["tags"][0])["metaInfo.originRecords"] == {"api_calls": 1500}


def test_suger_metronome_amounts_are_tags_never_cost():
    df = un.normalize(page("suger"))
    assert df["cost"].null_count() == df.height
    tags = json.loads(df["tags"][0])
    assert tags["metaInfo.metronomeDailyCostAmount"] == 41.5
    assert tags["metaInfo.metronomeMonthlyInvoiceAmount"] == 812.25


def test_suger_refetched_group_keeps_the_latest_last_update_time():
    old = page("suger")["usageRecordGroups"][0]
    new = json.loads(json.dumps(old))
    new["status"] = "REPORT_FAILED"
    new["lastUpdateTime"] = "2024-08-12T02:00:00Z"
    # The newer version arrives first, the older one in a later page: the newer still wins.
    out = un.normalize([{"usageRecordGroups": [new]}, {"usageRecordGroups": [old]}], errors="collect")
    assert out.records["status"].unique().to_list() == ["REPORT_FAILED"]
    assert out.conflicts.select("source_index", "resolution").rows() == [(0, "kept"), (1, "superseded")]
    assert out.stats.select("records", "accepted", "superseded").row(0) == (2, 1, 1)


def test_suger_timestamp_styles_new_sources_and_reported_time():
    g = page("suger")["usageRecordGroups"][0]
    g["metaInfo"]["timestamp"] = "2024-08-12T01:00:00+00:00"
    g["metaInfo"]["source"] = "STRIPE"
    g["metaInfo"]["reportedTime"] = "2024-08-12T01:01:00Z"
    df = un.normalize(g)
    assert df["usage_start"][0] == ts("2024-08-12T01:00:00Z")
    tags = json.loads(df["tags"][0])
    assert (tags["metaInfo.source"], tags["metaInfo.reportedTime"]) == ("STRIPE", "2024-08-12T01:01:00Z")


# ---- exabits --------------------------------------------------------------------------------


def test_exabits_active_running_total_is_replaced_by_the_later_export():
    first = page("exabits")
    later = json.loads(json.dumps(first))
    later["data"][1]["total_uptime"] = 2880
    later["data"][1]["total_fee"] = 5760.0
    out = un.normalize([first, later], errors="collect")
    active = out.records.filter(pl.col("status") == "active")
    assert active.select("quantity", "cost").rows() == [(48.0, Decimal(5760))]
    # The terminated rows were identical in both exports: duplicates, not conflicts.
    assert out.stats.select("records", "accepted", "duplicates", "superseded").row(0) == (6, 3, 2, 1)


@pytest.mark.parametrize("terminated", [0, None, "missing"])
def test_exabits_active_has_no_end(terminated):
    rec = page("exabits")["data"][1]
    if terminated == "missing":
        rec.pop("terminated_time")
    else:
        rec["terminated_time"] = terminated
    assert un.normalize(rec)["usage_end"].item() is None


def test_exabits_error_with_http_200_is_an_error_not_an_empty_page():
    with pytest.raises(un.NormalizeError, match="the API returned an error: Invalid token"):
        un.normalize({"status": False, "message": "Invalid token"})


def test_exabits_currency_is_usd():
    assert un.normalize(page("exabits"))["currency"].unique().to_list() == ["USD"]


def test_exabits_fees_are_exact_decimals_from_the_number_text():
    rec = page("exabits")["data"][0]
    text = (
        json.dumps(rec).replace("3.148992", "0.1000000000000000055511151231257827").replace("0.005112", "0.123456789")
    )
    df = un.normalize(text.encode())
    # 0.1 in binary is not 0.1; read from the text it is, rounded half-even at 9 places.
    assert df["cost"].item() == Decimal("0.100000000")
    assert df["unit_price"].item() == Decimal("7.40740734")  # 0.123456789 × 60, exact


# ---- vmware ---------------------------------------------------------------------------------


def test_vmware_resources_are_a_breakdown_not_more_usage():
    df = un.normalize(page("vmware"))
    assert df["quantity"].sum() == 3 + 2 + 4  # the usage values, not usage + resources


@pytest.mark.parametrize("step,period,hours", [("days", "DAILY", 24), ("months", "MONTHLY", None)])
def test_vmware_daily_and_monthly_periods_are_inferred(step, period, hours):
    p = page("vmware")
    stamps = {
        "days": ["2024-02-28T00:00:00Z", "2024-02-29T00:00:00Z", "2024-03-01T00:00:00Z"],
        "months": ["2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z", "2024-03-01T00:00:00Z"],
    }[step]
    for item, stamp in zip(p["content"], stamps):
        item["usage_datetime"] = stamp
    df = un.normalize(p).unique("usage_start", keep="first", maintain_order=True)
    assert {json.loads(t)["period"] for t in df["tags"]} == {period}
    lengths = (df["usage_end"] - df["usage_start"]).dt.total_hours().to_list()
    assert lengths == ([hours] * 3 if hours else [31 * 24, 29 * 24, 31 * 24])  # calendar months, leap February


def test_vmware_period_argument_overrides_inference_and_a_lone_item_defaults_to_hourly():
    p = page("vmware")
    df = un.normalize(p, period="DAILY")
    assert json.loads(df["tags"][0])["period_source"] == "given"
    assert (df["usage_end"] - df["usage_start"]).dt.total_hours().unique().to_list() == [24]
    p["content"] = p["content"][:1]
    lone = un.normalize(p)
    assert json.loads(lone["tags"][0])["period_source"] == "default"
    assert (lone["usage_end"] - lone["usage_start"]).dt.total_hours().unique().to_list() == [1]


def test_vmware_overage_zero_or_absent_when_under_commitment():
    p = page("vmware")
    p["content"][0].pop("overage")
    p["content"][0]["usage"] = 1
    df = un.normalize(p).filter(pl.col("source_index") == 0)
    assert df.select("charge_type", "quantity").rows() == [("committed", 1.0)]
    p["content"][0].pop("commitment")
    df = un.normalize(p).filter(pl.col("source_index") == 0)
    assert df.select("charge_type", "quantity").rows() == [("usage", 1.0)]


# ---- consumption_log ------------------------------------------------------------------------


@pytest.mark.parametrize("unit", ["minute", "Minute", "MINUTE", "minutes"])
def test_consumption_unit_any_case(unit):
    rec = page("consumption_log")["data"][0] | {"unit": unit}
    df = un.normalize(rec)
    assert df.select("quantity", "unit").row(0) == (1.5, "Hours")


def test_consumption_log_shapes_list_my_list_and_single_log():
    single = {
        "id": 0,
        "validFrom": "2024-04-02T11:39:15.525Z",
        "validTo": "2024-08-02T11:39:15.525Z",
        "createdAt": "2024-08-02T11:45:41.428Z",
        "projectId": "p",
        "operationId": "op",
        "clientId": "c",
        "clientName": "cli",
        "clientVersion": "1",
        "tags": {"additionalProp1": "x"},
        "tenantId": "t",
        "resourceId": "r",
        "metricType": "ComputeTime",
        "unit": "minute",
        "value": 0,
        "billingInformation": {"billingReference": "B", "billingReferenceTag": "T", "billingReferenceType": "EXT"},
    }
    df = un.normalize(json.dumps(single).encode())
    assert df.select("provider", "record_id", "account_id", "quantity").row(0) == ("consumption_log", "0", "t", 0.0)
    assert json.loads(df["tags"].item())["tags"] == {"additionalProp1": "x"}
    assert json.loads(df["tags"].item())["operationId"] == "op"
    my_list = {"offset": 0, "limit": 0, "data": [single | {"id": None}]}
    assert un.normalize(my_list)["provider"].item() == "consumption_log"


def test_consumption_aggregated_dimensions_are_null():
    rec = {
        "tenantId": "t",
        "projectId": None,
        "validFrom": "2024-04-02T00:00:00Z",
        "validTo": "2024-04-03T00:00:00Z",
        "unit": "minute",
        "value": 60,
        "billingInformation": {"billingReference": "B"},
    }
    df = un.normalize({"offset": 0, "limit": 10, "data": [rec]})
    assert df.select("project_id", "resource_id", "metric").row(0) == (None, None, "all")


def test_consumption_missing_valid_to_is_open():
    rec = page("consumption_log")["data"][0]
    rec.pop("validTo")
    assert un.normalize(rec)["usage_end"].item() is None


# ---- page counts (issue 6's bad-input matrix) -----------------------------------------------


@pytest.mark.parametrize(
    "provider,key,value",
    [
        ("exabits", "total", 1),
        ("vmware", "number_of_elements", 5),
        ("vmware", "total_elements", 2),
        ("consumption_log", "limit", 1),
    ],
)
def test_a_page_whose_count_disagrees_is_read_and_flagged(provider, key, value):
    p = page(provider)
    p[key] = value
    out = un.normalize(p, errors="collect")
    whole = un.normalize(page(provider))
    assert out.records.height == whole.height and out.rejected.height == 0  # nothing dropped
    warnings = {json.loads(t).get("_page_warning") for t in out.records["tags"]}
    assert len(warnings) == 1 and f"the page's {key} is {value}" in warnings.pop()


def test_consistent_page_counts_are_not_flagged():
    for provider in ("exabits", "vmware", "consumption_log"):
        assert all("_page_warning" not in t for t in un.normalize(page(provider))["tags"])

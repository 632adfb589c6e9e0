"""Each bundled sample export normalizes to exactly these canonical rows, however it is fed."""

from __future__ import annotations

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import usagenorm as un
from conftest import EXAMPLES, SCHEMA, dec, expected, feeds, ts

GITPOD = [
    {
        "provider": "gitpod",
        "record_id": "3f1c2a9e-5b7d-4c1a-9e2f-0a1b2c3d4e01",
        "project_id": "d2c94c27-3b76-4a42-b88c-95a85e392c68",
        "user_id": "user-ada",
        "resource_id": "0190f7c1-env-a",
        "resource_type": "environment",
        "metric": "environment_runtime",
        "sku": "g1-standard",
        "usage_start": ts("2024-03-10T22:00:00Z"),
        "usage_end": ts("2024-03-11T03:30:00Z"),
        "quantity": 5.5,
        "unit": "Hours",
        "status": "stopped",
        "tags": '{"runnerId":"runner-eu-1"}',
        "source_index": 0,
    },
    {
        # The all-zero projectId means "no project"; the +01:00 offset is converted to UTC.
        "provider": "gitpod",
        "record_id": "3f1c2a9e-5b7d-4c1a-9e2f-0a1b2c3d4e02",
        "user_id": "user-grace",
        "resource_id": "0190f7c1-env-b",
        "resource_type": "environment",
        "metric": "environment_runtime",
        "sku": "g1-large",
        "usage_start": ts("2024-03-11T09:15:30.500Z"),
        "usage_end": ts("2024-03-11T10:45:30.500Z"),
        "quantity": 1.5,
        "unit": "Hours",
        "status": "stopped",
        "source_index": 1,
    },
    {
        # Still running: no stoppedAt, so no end and no quantity yet.
        "provider": "gitpod",
        "record_id": "3f1c2a9e-5b7d-4c1a-9e2f-0a1b2c3d4e03",
        "user_id": "user-ada",
        "resource_id": "0190f7c1-env-c",
        "resource_type": "environment",
        "metric": "environment_runtime",
        "sku": "g1-standard",
        "usage_start": ts("2024-03-11T12:00:00Z"),
        "unit": "Hours",
        "status": "running",
        "source_index": 2,
    },
]

SUGER_TAGS_1 = (
    '{"creationTime":"2024-08-12T01:02:15.910Z","lastUpdateTime":"2024-08-12T01:05:00Z","partner":"AWS",'
    '"serialID":17,"usageRecordReportID":"rep-9","metaInfo.metronomeDailyCostAmount":41.5,'
    '"metaInfo.metronomeMonthlyInvoiceAmount":812.25,"metaInfo.originRecords":{"api_calls":1200,"storage_gb":35.5},'
    '"metaInfo.source":"API"}'
)
_SUGER_1 = {
    "provider": "suger",
    "record_id": "urg-0001",
    "account_id": "org-suger-1",
    "customer_id": "buyer-acme",
    "resource_id": "ent-001",
    "resource_type": "entitlement",
    "usage_start": ts("2024-08-12T01:00:00Z"),
    "usage_end": ts("2024-08-12T01:00:00Z"),
    "status": "REPORTED",
    "tags": SUGER_TAGS_1,
    "revision": 1723424700000000,  # lastUpdateTime 2024-08-12T01:05:00Z, µs
    "source_index": 0,
}
SUGER = [
    _SUGER_1 | {"metric": "api_calls", "quantity": 1200.0},
    _SUGER_1 | {"metric": "storage_gb", "quantity": 35.5},
    {
        # Quantities from metaInfo.billableRecords; DELETED is kept but not billable.
        "provider": "suger",
        "record_id": "urg-0002",
        "account_id": "org-suger-1",
        "customer_id": "buyer-globex",
        "resource_id": "ent-002",
        "resource_type": "entitlement",
        "metric": "seats",
        "quantity": 12.0,
        "usage_start": ts("2024-08-13T00:00:00Z"),
        "usage_end": ts("2024-08-13T00:00:00Z"),
        "status": "DELETED",
        "billable": False,
        "revision": 1723507800000000,  # lastUpdateTime 2024-08-13T00:10:00Z
        "source_index": 1,
        "tags": '{"creationTime":"2024-08-13T00:00:05Z","lastUpdateTime":"2024-08-13T00:10:00+00:00","partner":"AZURE",'
        '"metaInfo.source":"LAGO","billableRecord.properties":{"tier":"pro"}}',
    },
    {
        # No metaInfo.timestamp: creationTime is the usage time.
        "provider": "suger",
        "record_id": "urg-0003",
        "account_id": "org-suger-1",
        "customer_id": "buyer-acme",
        "resource_id": "ent-001",
        "resource_type": "entitlement",
        "metric": "api_calls",
        "quantity": 300.0,
        "usage_start": ts("2024-08-14T06:30:00Z"),
        "usage_end": ts("2024-08-14T06:30:00Z"),
        "status": "CREATED",
        "tags": '{"creationTime":"2024-08-14T06:30:00Z","partner":"GCP"}',
        "source_index": 2,
    },
]

EXABITS = [
    {
        "provider": "exabits",
        "record_id": "66d0941d2b2a500012c73314",
        "resource_id": "66d093df2b2a500012c732e8",
        "resource_name": "TestxA4000",
        "resource_type": "vm",
        "metric": "uptime",
        "usage_start": ts("2024-08-29T15:30:37Z"),
        "usage_end": ts("2024-08-30T01:46:25Z"),
        "quantity": 616 / 60,
        "unit": "Hours",
        "cost": dec("3.148992"),
        "unit_price": dec("0.30672"),
        "currency": "USD",
        "status": "terminated",
        "tags": '{"resource.name":"medical-breakable-pipe"}',
        "revision": 616_000,  # total_uptime 616 minutes, in thousandths
        "source_index": 0,
    },
    {
        # Active: terminated_time 0 means no end yet.
        "provider": "exabits",
        "record_id": "66d1a0002b2a500012c74000",
        "resource_id": "66d19ff02b2a500012c73fff",
        "resource_name": "H100x8",
        "resource_type": "vm",
        "metric": "uptime",
        "usage_start": ts("2024-08-30T06:40:00Z"),
        "quantity": 24.0,
        "unit": "Hours",
        "cost": dec("2880"),
        "unit_price": dec("120"),
        "currency": "USD",
        "status": "active",
        "tags": '{"resource.name":"quiet-orange-lake"}',
        "revision": 1_440_000,
        "source_index": 1,
    },
    {
        # No display_name: the name is the resource_name.
        "provider": "exabits",
        "record_id": "66d1a0002b2a500012c74001",
        "resource_id": "66d19ff02b2a500012c74aaa",
        "resource_name": "data-volume-1",
        "resource_type": "volume",
        "metric": "uptime",
        "usage_start": ts("2024-08-29T15:30:37Z"),
        "usage_end": ts("2024-08-30T15:30:37Z"),
        "quantity": 24.0,
        "unit": "Hours",
        "cost": dec("0.144"),
        "unit_price": dec("0.006"),
        "currency": "USD",
        "status": "terminated",
        "tags": '{"resource.name":"data-volume-1"}',
        "revision": 1_440_000,
        "source_index": 2,
    },
]

_VM_META = (
    '"period":"HOURLY","period_source":"inferred","metadata.charge_attributes":{"region":"us-west-2"},'
    '"metadata.display_name":"VMC host usage","metadata.service_definition_id":"svc-vmc-aws"}'
)
_VM_TAGS_0 = (
    '{"commitment":2,"overage":1,"resources":[{"resource_id":"host-01","usage_quantity":1},'
    '{"resource_id":"host-02","usage_quantity":2}],"usage":3,' + _VM_META
)
_VM_TAGS_1 = (
    '{"commitment":2,"overage":0,"resources":[{"resource_id":"host-01","usage_quantity":2}],"usage":2,' + _VM_META
)
_VM_TAGS_2 = '{"commitment":2,"overage":2,"resources":[],"usage":4,' + _VM_META
_VM = {"provider": "vmware", "metric": "vmc-host-count", "unit": "Host-Hours"}
VMWARE = [
    # usage 3 over commitment 2: committed 2 + overage 1.
    _VM
    | {
        "charge_type": "committed",
        "usage_start": ts("2024-05-01T00:00:00Z"),
        "usage_end": ts("2024-05-01T01:00:00Z"),
        "quantity": 2.0,
        "tags": _VM_TAGS_0,
        "source_index": 0,
    },
    _VM
    | {
        "charge_type": "overage",
        "usage_start": ts("2024-05-01T00:00:00Z"),
        "usage_end": ts("2024-05-01T01:00:00Z"),
        "quantity": 1.0,
        "tags": _VM_TAGS_0,
        "source_index": 0,
    },
    # Under commitment: no overage row; one resource becomes the resource_id.
    _VM
    | {
        "charge_type": "committed",
        "resource_id": "host-01",
        "usage_start": ts("2024-05-01T01:00:00Z"),
        "usage_end": ts("2024-05-01T02:00:00Z"),
        "quantity": 2.0,
        "tags": _VM_TAGS_1,
        "source_index": 1,
    },
    _VM
    | {
        "charge_type": "committed",
        "usage_start": ts("2024-05-01T02:00:00Z"),
        "usage_end": ts("2024-05-01T03:00:00Z"),
        "quantity": 2.0,
        "tags": _VM_TAGS_2,
        "source_index": 2,
    },
    _VM
    | {
        "charge_type": "overage",
        "usage_start": ts("2024-05-01T02:00:00Z"),
        "usage_end": ts("2024-05-01T03:00:00Z"),
        "quantity": 2.0,
        "tags": _VM_TAGS_2,
        "source_index": 2,
    },
]

_CL = {
    "provider": "consumption_log",
    "account_id": "7f0c1e2a-0000-4000-8000-00000000aaaa",
    "project_id": "7f0c1e2a-0000-4000-8000-00000000bbbb",
    "metric": "ComputeTime",
    "unit": "Hours",
}
CONSUMPTION_LOG = [
    _CL
    | {
        "resource_id": "7f0c1e2a-0000-4000-8000-00000000cccc",
        "usage_start": ts("2024-04-02T11:00:00Z"),
        "usage_end": ts("2024-04-02T12:30:00Z"),
        "quantity": 1.5,
        "source_index": 0,
        "tags": '{"unit":"minute","billingInformation":{"billingReference":"ABC123","billingReferenceTag":"team-a",'
        '"billingReferenceType":"EXT"}}',
    },
    # "Minute" in another case is the same unit; no validTo is an open entry.
    _CL
    | {
        "usage_start": ts("2024-04-03T08:00:00Z"),
        "quantity": 4.5 / 60,
        "source_index": 1,
        "tags": '{"unit":"Minute","billingInformation":{"billingReference":"ABC123","billingReferenceType":"EXT"}}',
    },
]

CASES = {
    "gitpod": GITPOD,
    "suger": SUGER,
    "exabits": EXABITS,
    "vmware": VMWARE,
    "consumption_log": CONSUMPTION_LOG,
}


@pytest.mark.parametrize("provider", list(CASES))
def test_sample_rows_exact_whatever_the_input_kind(provider):
    path = EXAMPLES / f"{provider}.json"
    for source, name in feeds(path):
        got = un.normalize(source)
        assert_frame_equal(got, expected(CASES[provider], name))


@pytest.mark.parametrize("provider", list(CASES))
def test_forced_provider_gives_the_same_rows(provider):
    path = EXAMPLES / f"{provider}.json"
    assert_frame_equal(un.normalize(path, provider=provider), expected(CASES[provider], str(path)))


# The canonical schema as documented in the README: the one place the tests state it.
PINNED_SCHEMA = {
    "provider": pl.String,
    "record_id": pl.String,
    "account_id": pl.String,
    "customer_id": pl.String,
    "project_id": pl.String,
    "user_id": pl.String,
    "resource_id": pl.String,
    "resource_name": pl.String,
    "resource_type": pl.String,
    "metric": pl.String,
    "sku": pl.String,
    "charge_type": pl.String,
    "usage_start": pl.Datetime("us", "UTC"),
    "usage_end": pl.Datetime("us", "UTC"),
    "quantity": pl.Float64,
    "unit": pl.String,
    "cost": pl.Decimal(38, 9),
    "unit_price": pl.Decimal(38, 9),
    "currency": pl.String,
    "status": pl.String,
    "billable": pl.Boolean,
    "tags": pl.String,
    "revision": pl.Int64,
    "source": pl.String,
    "source_index": pl.UInt64,
}


def test_schema_is_canonical_even_when_empty():
    df = un.normalize({"pagination": {}, "records": []})
    assert df.schema == pl.Schema(PINNED_SCHEMA) == pl.Schema(SCHEMA)
    assert df.height == 0


def test_whole_sample_folder_in_sorted_order():
    from test_format_files import CASES as FILE_CASES

    df = un.normalize(EXAMPLES)
    # Files are read in sorted path order, rows within a file by source_index.
    every = CASES | FILE_CASES
    order = sorted(every)
    want = pl.concat([expected(every[p], str(EXAMPLES / f"{p}.json")) for p in order])
    assert_frame_equal(df, want)


def test_formats_lists_every_provider_mapping():
    from test_format_files import CASES as FILE_CASES

    f = un.formats()
    assert set(f["provider"]) == set(CASES) | set(FILE_CASES)
    assert f.columns == [
        "provider",
        "title",
        "api",
        "column",
        "source_field",
        "origin",
        "focus_provider",
        "focus_service",
        "focus_category",
        "focus_subcategory",
        "focus_resource_type",
    ]
    # Every mapped column is a canonical column.
    assert set(f["column"]) <= set(SCHEMA)
    assert (
        f.filter(pl.col("provider") == "exabits", pl.col("column") == "cost")["source_field"]
        .item()
        .startswith("total_fee")
    )


@pytest.mark.parametrize(
    "path",
    sorted(EXAMPLES.glob("*.json")) + sorted((EXAMPLES.parent.parent / "fuzz" / "corpus" / "detect").glob("*"))[:60],
    ids=lambda p: p.name,
)
def test_every_fixture_accounts_for_every_record(path):
    out = un.normalize(path, errors="collect")
    for st in out.stats.iter_rows(named=True):
        assert st["records"] == st["accepted"] + st["rejected"] + st["duplicates"] + st["superseded"]
        assert st["rows"] == out.records.height
    assert out.rejected.height == sum(s["rejected"] for s in out.stats.iter_rows(named=True))

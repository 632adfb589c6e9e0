"""FOCUS 1.2: every format's sample passes check_focus; check_focus catches each rule it is given
a frame that breaks (tests/conformance checks the same frames with the official validator)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal

import polars as pl
import pytest

import usagenorm as un
from conftest import EXAMPLES, PROVIDERS

AS_OF = datetime(2024, 9, 1, tzinfo=timezone.utc)
RATES = un.RateCard.from_records(
    [
        {"provider": "gitpod", "unit_price": "0.36", "unit": "hour"},
        {"provider": "suger", "metric": "api_calls", "unit_price": "0.001"},
        {"provider": "suger", "unit_price": "0.5"},
        {"provider": "vmware", "charge_type": "committed", "unit_price": "2"},
        {"provider": "vmware", "charge_type": "overage", "unit_price": "3"},
        {"provider": "consumption_log", "unit_price": "0.01", "unit": "minute"},
    ]
)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_sample_maps_to_focus_without_violations(provider):
    df = un.price(un.normalize(EXAMPLES / f"{provider}.json"), RATES, billable_only=False)
    focus = un.to_focus(df, as_of=AS_OF)
    violations = un.check_focus(focus)
    assert violations.height == 0, violations.to_dicts()
    # One row per row and month it covers: the split keeps every row, its quantity and its cost.
    assert focus.height >= df.height
    assert focus["BilledCost"].sum() == (df["cost"].sum() or 0)
    reported = focus.filter(pl.col("x_QuantitySource") == "reported")
    assert reported["ConsumedQuantity"].sum() == pytest.approx(df["quantity"].sum())
    assert focus["ChargeCategory"].unique().to_list() == ["Usage"]
    # Usage rows always carry quantities with units and unit prices (FOCUS MUST).
    for c in ("PricingQuantity", "ConsumedQuantity", "PricingUnit", "ConsumedUnit", "ListUnitPrice", "SkuPriceId"):
        assert focus[c].null_count() == 0, c
    unpriced = focus.filter(pl.col("x_CostStatus") == "unpriced")
    assert unpriced["BilledCost"].unique().to_list() in ([], [Decimal(0)])


def test_unpriced_rows_are_zero_cost_and_say_so():
    focus = un.to_focus(un.normalize(EXAMPLES / "vmware.json"))
    assert focus["BilledCost"].unique().to_list() == [Decimal(0)]
    assert focus["ListUnitPrice"].unique().to_list() == [Decimal(0)]
    assert focus["x_CostStatus"].unique().to_list() == ["unpriced"]
    assert un.check_focus(focus).height == 0


def test_mapping_details():
    focus = un.to_focus(un.price(un.normalize(EXAMPLES / "gitpod.json"), RATES), as_of=AS_OF)
    row = focus.row(0, named=True)
    assert row["ProviderName"] == "Gitpod" and row["ServiceCategory"] == "Developer Tools"
    assert row["ServiceSubcategory"] == "Development Environments"
    assert row["BillingPeriodStart"] == datetime(2024, 3, 1, tzinfo=timezone.utc)
    assert row["BillingPeriodEnd"] == datetime(2024, 4, 1, tzinfo=timezone.utc)
    assert row["BilledCost"] == Decimal("1.98")  # 5.5 h at 0.36
    assert row["ListUnitPrice"] == Decimal("0.36")
    assert row["SubAccountId"] == row["SubAccountName"] == "d2c94c27-3b76-4a42-b88c-95a85e392c68"
    assert row["SkuId"] == row["x_Sku"] == "g1-standard" and row["SkuMeter"] == row["x_Metric"]
    assert row["SkuPriceId"] == f"{row['SkuId']}/usage"
    assert json.loads(row["Tags"]) == {"runnerId": "runner-eu-1"}
    assert row["x_RecordId"] == "3f1c2a9e-5b7d-4c1a-9e2f-0a1b2c3d4e01"
    assert row["x_QuantitySource"] == "reported"
    suger = un.to_focus(un.normalize(EXAMPLES / "suger.json"))
    # A point-in-time report is charged for the hour that holds it.
    assert (suger["ChargePeriodEnd"] - suger["ChargePeriodStart"]).dt.total_hours().unique().to_list() == [1]


def test_a_running_record_is_split_by_month_up_to_as_of():
    df = un.price(un.normalize(EXAMPLES / "gitpod.json"), RATES)
    running = df.filter(pl.col("usage_end").is_null())
    assert running.height == 1
    start = running["usage_start"].item()
    focus = un.to_focus(running, as_of=AS_OF)
    # From its start in March 2024 to as_of (1 September 2024): one row per month, each inside
    # its billing period, the hours so far as the quantity.
    assert focus.height == 6
    assert focus["ChargePeriodStart"][0] == start and focus["ChargePeriodEnd"][-1] == AS_OF
    assert (focus["ChargePeriodStart"] >= focus["BillingPeriodStart"]).all()
    assert (focus["ChargePeriodEnd"] <= focus["BillingPeriodEnd"]).all()
    assert focus["ChargePeriodStart"][1:].to_list() == focus["ChargePeriodEnd"][:-1].to_list()
    hours = (AS_OF - start).total_seconds() / 3600
    assert focus["PricingQuantity"].sum() == pytest.approx(hours)
    assert focus["x_QuantitySource"].unique().to_list() == ["elapsed"]
    whole = un.price(running, RATES, overwrite=True)  # unpriced while running: no quantity yet
    assert whole["cost"].item() is None and focus["BilledCost"].sum() == 0
    assert un.check_focus(focus).height == 0
    # The same input and as_of give the same rows; without as_of, a warning says what to pass.
    assert focus.equals(un.to_focus(running, as_of=AS_OF))
    with pytest.warns(un.RunningRecordsWarning, match="as_of"):
        un.to_focus(running)


def test_cost_split_across_months_is_exact():
    page = [
        {
            "id": "r1",
            "environmentId": "env",
            "createdAt": "2024-03-31T23:00:00Z",
            "stoppedAt": "2024-04-01T02:00:00Z",
        }
    ]
    df = un.price(
        un.normalize({"records": page}), un.RateCard.from_records([{"provider": "gitpod", "unit_price": "0.1"}])
    )
    focus = un.to_focus(df)
    assert focus["BillingPeriodStart"].dt.month().to_list() == [3, 4]
    assert focus["PricingQuantity"].to_list() == pytest.approx([1.0, 2.0])
    assert focus["BilledCost"].to_list() == [Decimal("0.1"), Decimal("0.2")]
    assert un.check_focus(focus).height == 0


def test_a_cost_without_quantity_is_one_unit_of_its_charge():
    focus = un.to_focus(un.normalize(EXAMPLES / "anthropic.json"))
    assert focus["PricingQuantity"].unique().to_list() == [1.0]
    assert focus["PricingUnit"].unique().to_list() == ["Units"]
    assert (focus["ListUnitPrice"].cast(pl.Decimal(38, 9)) == focus["ListCost"]).all()
    assert focus["x_QuantitySource"].unique().to_list() == ["charge"]
    assert un.check_focus(focus).height == 0


def test_tags_values_are_never_objects_or_arrays():
    focus = un.to_focus(un.normalize(EXAMPLES / "vmware.json"))
    for text in focus["Tags"]:
        assert not any(isinstance(v, (dict, list)) for v in json.loads(text).values())
    nested = [json.loads(t) for t in un.normalize(EXAMPLES / "vmware.json")["tags"]]
    flat = [json.loads(t) for t in focus["Tags"]]
    # Nothing is lost: a nested value is its JSON text.
    for n, f in zip(nested, flat):
        assert {k: json.loads(v) if isinstance(n[k], (dict, list)) else v for k, v in f.items()} == n


def test_focus_1_3_adds_service_and_host_provider_names():
    f12 = un.to_focus(un.normalize(EXAMPLES / "exabits.json"), as_of=AS_OF)
    f13 = un.to_focus(un.normalize(EXAMPLES / "exabits.json"), as_of=AS_OF, version="1.3")
    assert set(f13.columns) - set(f12.columns) == {"ServiceProviderName", "HostProviderName"}
    assert f13["ServiceProviderName"].to_list() == f13["HostProviderName"].to_list() == f12["ProviderName"].to_list()
    assert f13.drop("ServiceProviderName", "HostProviderName").equals(
        f12.select(f13.drop("ServiceProviderName", "HostProviderName").columns)
    )
    with pytest.raises(ValueError, match="version '1.4': one of 1.2, 1.3"):
        un.to_focus(f12.head(0), version="1.4")


def good() -> pl.DataFrame:
    return un.to_focus(un.price(un.normalize(EXAMPLES / "gitpod.json"), RATES), as_of=AS_OF)


# Frames that each break rules of the FOCUS 1.2 model; tests/conformance checks the official
# validator finds the same ones.
BREAKS = [
    ("CostAndUsage-D-006-M", "BilledCost", lambda f: f.drop("BilledCost")),
    (
        "ChargePeriodStart-C-001-M",
        "ChargePeriodStart",
        lambda f: f.with_columns(pl.col("ChargePeriodStart").cast(pl.String)),
    ),
    (
        "BillingAccountId-C-001-M",
        "BillingAccountId",
        lambda f: f.with_columns(pl.lit(None, pl.String).alias("BillingAccountId")),
    ),
    ("ChargeCategory-C-003-M", "ChargeCategory", lambda f: f.with_columns(pl.lit("Usage-ish").alias("ChargeCategory"))),
    (
        "ChargeFrequency-C-003-M",
        "ChargeFrequency",
        lambda f: f.with_columns(pl.lit("Sometimes").alias("ChargeFrequency")),
    ),
    ("ChargeClass-C-005-C", "ChargeClass", lambda f: f.with_columns(pl.lit("Refund").alias("ChargeClass"))),
    ("PricingCategory-C-007-M", "PricingCategory", lambda f: f.with_columns(pl.lit("Cheap").alias("PricingCategory"))),
    ("ServiceCategory-C-003-M", "ServiceCategory", lambda f: f.with_columns(pl.lit("Coding").alias("ServiceCategory"))),
    ("BillingCurrency-C-006-M", "BillingCurrency", lambda f: f.with_columns(pl.lit("XYZ").alias("BillingCurrency"))),
    ("PricingUnit-C-006-C", "PricingUnit", lambda f: f.with_columns(pl.lit(None, pl.String).alias("PricingUnit"))),
    (
        "PricingQuantity-C-005-C",
        "PricingQuantity",
        lambda f: f.with_columns(pl.lit(None, pl.Float64).alias("PricingQuantity")),
    ),
    (
        "ConsumedQuantity-C-006-C",
        "ConsumedQuantity",
        lambda f: f.with_columns(pl.lit(None, pl.Float64).alias("ConsumedQuantity")),
    ),
    ("ListCost-C-009-C", "ListCost", lambda f: f.with_columns(pl.col("ListCost") + pl.lit(Decimal(1)))),
    ("ContractedUnitPrice-C-011-C", "ContractedUnitPrice", lambda f: f.with_columns(pl.col("ContractedUnitPrice") * 2)),
    ("ContractedUnitPrice-C-009-C", "ContractedUnitPrice", lambda f: f.with_columns(-pl.col("ContractedUnitPrice"))),
    (
        "ListUnitPrice-C-005-C",
        "ListUnitPrice",
        lambda f: f.with_columns(pl.lit(None, pl.Decimal(38, 18)).alias("ListUnitPrice")),
    ),
    ("ResourceType-C-004-C", "ResourceType", lambda f: f.with_columns(pl.lit(None, pl.String).alias("ResourceId"))),
    ("ResourceType-C-005-C", "ResourceType", lambda f: f.with_columns(pl.lit(None, pl.String).alias("ResourceType"))),
    (
        "SubAccountName-C-005-C",
        "SubAccountName",
        lambda f: f.with_columns(pl.lit(None, pl.String).alias("SubAccountName")),
    ),
    (
        "ServiceSubcategory-C-004-M",
        "ServiceSubcategory",
        lambda f: f.with_columns(pl.lit("Bots").alias("ServiceSubcategory")),
    ),
    (
        "SkuPriceId-C-008-M",
        "SkuPriceId",
        lambda f: f.with_columns(
            pl.when(pl.int_range(pl.len()) == 0).then(pl.lit("x")).otherwise(pl.col("SkuId")).alias("SkuId")
        ),
    ),
    ("PricingUnit-C-003-O", "PricingUnit", lambda f: f.with_columns(pl.lit("gibibyte_hours").alias("PricingUnit"))),
    ("KeyValueFormat-A-004-M", "Tags", lambda f: f.with_columns(pl.lit('{"a": [1, 2]}').alias("Tags"))),
    ("KeyValueFormat-A-003-M", "Tags", lambda f: f.with_columns(pl.lit("[1, 2]").alias("Tags"))),
    (
        "usagenorm:period-order",
        "ChargePeriodStart",
        lambda f: f.with_columns(pl.col("ChargePeriodStart").alias("ChargePeriodEnd")),
    ),
    (
        "usagenorm:charge-in-billing-period",
        "ChargePeriodStart",
        lambda f: f.with_columns(
            pl.col("BillingPeriodStart").dt.offset_by("-1mo").alias("BillingPeriodEnd"),
            pl.col("BillingPeriodStart").dt.offset_by("-2mo").alias("BillingPeriodStart"),
        ),
    ),
]


@pytest.mark.parametrize("rule,column,breaker", BREAKS, ids=[b[0] for b in BREAKS])
def test_check_focus_catches_each_rule(rule, column, breaker):
    base = good()
    assert un.check_focus(base).height == 0
    violations = un.check_focus(breaker(base))
    hits = violations.filter(pl.col("rule") == rule)
    assert hits.height == 1, violations.to_dicts()
    assert hits["column"].item() == column
    assert hits["rows"].item() >= 1


def test_check_focus_knows_the_whole_model():
    """Every rule of the bundled FOCUS 1.2 model is either checked on data or, being Dynamic,
    a MAY, or outside the criteria usagenorm claims, listed as not checked."""
    from usagenorm import _focus_rules

    ids = _focus_rules.rule_ids()
    assert len(ids) == 621 and _focus_rules.model()["model_version"] == "1.2.0.1"
    findings, unchecked = _focus_rules.check(good())
    assert findings == []
    rules = _focus_rules.model()["rules"]
    checked = set(ids) - set(unchecked)
    assert len(checked) > 150
    for rid in unchecked:
        r = rules[rid]
        assert (
            r["type"] == "Dynamic"
            or r["keyword"] == "MAY"
            or not r["requirement"]
            or not set(r["criteria"]) <= set(_focus_rules.CLAIMED)
            or rid not in _reachable(rules)
            or _under_unclaimed(rid, rules)
        ), rid


def _reachable(rules: dict) -> set[str]:
    from usagenorm import _focus_rules

    seen: set[str] = set()
    todo = [_focus_rules.model()["root"]]
    while todo:
        rid = todo.pop()
        if rid in seen or rid not in rules:
            continue
        seen.add(rid)
        todo.extend(_focus_rules._refs(rules[rid]["requirement"]) or [])
    return seen


def _under_unclaimed(rid: str, rules: dict) -> bool:
    from usagenorm import _focus_rules

    for pid, r in rules.items():
        if rid not in (_focus_rules._refs(r["requirement"]) or []):
            continue
        if not set(r["criteria"]) <= set(_focus_rules.CLAIMED) or r["keyword"] == "MAY" or _under_unclaimed(pid, rules):
            return True
    return False

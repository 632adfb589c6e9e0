"""FOCUS 1.2: every format's sample passes check_focus; each rule check_focus claims is tested."""

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
    assert focus.height == df.height
    assert focus["ChargeCategory"].unique().to_list() == ["Usage"]
    # Only a row without a quantity (the running Gitpod environment) stays unpriced, and says so.
    unpriced = focus.filter(pl.col("x_CostStatus") == "unpriced")
    assert unpriced["PricingQuantity"].null_count() == unpriced.height
    assert unpriced["BilledCost"].unique().to_list() in ([], [Decimal(0)])


def test_unpriced_rows_are_zero_cost_and_say_so():
    focus = un.to_focus(un.normalize(EXAMPLES / "vmware.json"))
    assert focus["BilledCost"].unique().to_list() == [Decimal(0)]
    assert focus["x_CostStatus"].unique().to_list() == ["unpriced"]
    assert un.check_focus(focus).height == 0


def test_mapping_details():
    focus = un.to_focus(un.price(un.normalize(EXAMPLES / "gitpod.json"), RATES), as_of=AS_OF)
    row = focus.row(0, named=True)
    assert row["ProviderName"] == "Gitpod" and row["ServiceCategory"] == "Developer Tools"
    assert row["BillingPeriodStart"] == datetime(2024, 3, 1, tzinfo=timezone.utc)
    assert row["BillingPeriodEnd"] == datetime(2024, 4, 1, tzinfo=timezone.utc)
    assert row["BilledCost"] == Decimal("1.98")  # 5.5 h at 0.36
    assert row["SubAccountId"] == "d2c94c27-3b76-4a42-b88c-95a85e392c68"
    assert json.loads(row["Tags"]) == {"runnerId": "runner-eu-1"}
    assert row["x_RecordId"] == "3f1c2a9e-5b7d-4c1a-9e2f-0a1b2c3d4e01"
    # The running environment ends at as_of.
    assert focus["ChargePeriodEnd"][2] == AS_OF
    suger = un.to_focus(un.normalize(EXAMPLES / "suger.json"))
    # A point-in-time report is charged for the hour that holds it.
    assert (suger["ChargePeriodEnd"] - suger["ChargePeriodStart"]).dt.total_hours().unique().to_list() == [1]


def good() -> pl.DataFrame:
    return un.to_focus(un.price(un.normalize(EXAMPLES / "gitpod.json"), RATES), as_of=AS_OF)


BREAKS = [
    ("presence", "BilledCost", lambda f: f.drop("BilledCost")),
    ("type", "ChargePeriodStart", lambda f: f.with_columns(pl.col("ChargePeriodStart").cast(pl.String))),
    ("not null", "BillingAccountId", lambda f: f.with_columns(pl.lit(None, pl.String).alias("BillingAccountId"))),
    ("allowed values", "ChargeCategory", lambda f: f.with_columns(pl.lit("Usage-ish").alias("ChargeCategory"))),
    ("allowed values", "ChargeFrequency", lambda f: f.with_columns(pl.lit("Sometimes").alias("ChargeFrequency"))),
    ("allowed values", "ChargeClass", lambda f: f.with_columns(pl.lit("Refund").alias("ChargeClass"))),
    ("allowed values", "PricingCategory", lambda f: f.with_columns(pl.lit("Cheap").alias("PricingCategory"))),
    ("allowed values", "ServiceCategory", lambda f: f.with_columns(pl.lit("Coding").alias("ServiceCategory"))),
    ("allowed values", "BillingCurrency", lambda f: f.with_columns(pl.lit("usd").alias("BillingCurrency"))),
    (
        "period order",
        "ChargePeriodStart, ChargePeriodEnd",
        lambda f: f.with_columns(pl.col("ChargePeriodStart").alias("ChargePeriodEnd")),
    ),
    (
        "period order",
        "BillingPeriodStart, BillingPeriodEnd",
        lambda f: f.with_columns(pl.col("BillingPeriodEnd").alias("BillingPeriodStart")),
    ),
    (
        "charge in billing period",
        "ChargePeriodStart",
        lambda f: f.with_columns(
            pl.col("BillingPeriodStart").dt.offset_by("-1mo").alias("BillingPeriodEnd"),
            pl.col("BillingPeriodStart").dt.offset_by("-2mo").alias("BillingPeriodStart"),
        ),
    ),
    ("unit with quantity", "PricingUnit", lambda f: f.with_columns(pl.lit(None, pl.String).alias("PricingUnit"))),
    (
        "cost = unit price × quantity",
        "ListCost",
        lambda f: f.with_columns((pl.col("ListCost") + pl.lit(Decimal(1))).alias("ListCost")),
    ),
    ("cost = unit price × quantity", "ContractedCost", lambda f: f.with_columns(pl.col("ContractedUnitPrice") * 2)),
    ("tags", "Tags", lambda f: f.with_columns(pl.lit("[1, 2]").alias("Tags"))),
]


@pytest.mark.parametrize("rule,column,breaker", BREAKS, ids=[f"{b[0]}:{b[1]}" for b in BREAKS])
def test_check_focus_catches_each_rule(rule, column, breaker):
    base = good()
    assert un.check_focus(base).height == 0
    violations = un.check_focus(breaker(base))
    hits = violations.filter((pl.col("rule") == rule) & (pl.col("column") == column))
    assert hits.height == 1, violations.to_dicts()
    assert hits["rows"].item() >= 1

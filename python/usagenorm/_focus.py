"""FOCUS 1.2 output: ``to_focus`` maps a canonical (ideally priced) frame to FOCUS columns, and
``check_focus`` checks a frame against the FOCUS column rules that can be verified in-process.

Choices where FOCUS needs a value the export does not have (README "FOCUS"):
- Cost columns MUST NOT be null. An unpriced row gets 0 in every cost column and
  ``x_CostStatus = "unpriced"`` (never a silent zero: the status says so); a row with a cost
  (reported by the provider or from a rate card) is ``"priced"``.
- BillingCurrency MUST NOT be null: the row's currency, else USD (every format's platform bills
  in USD unless a rate card says otherwise).
- A point-in-time record (Suger) is charged for the UTC hour holding it; a running record
  ends at ``as_of`` (default: now).
- BillingAccountId MUST NOT be null: account_id, else customer_id, else the provider.
- A quantity needs a unit: a count without one (Suger dimensions) is ``Units``.
- Everything else of the canonical row is kept in ``x_``-prefixed columns.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import polars as pl

from . import _core
from ._frames import MONEY, micros


def provider_names() -> dict[str, tuple[str, str, str]]:
    """(ProviderName, ServiceName, ServiceCategory) per format, from each format's own
    description: built in, installed, or registered (``usagenorm.formats()``)."""
    from . import _formats

    f = _core.formats(_formats.active(), _formats.replacements()).unique("provider", keep="first", maintain_order=True)
    return {p: (a, b, c) for p, a, b, c in f.select("provider", "focus_provider", "focus_service", "focus_category").rows()}

CHARGE_CATEGORIES = ["Usage", "Purchase", "Tax", "Credit", "Adjustment"]
CHARGE_FREQUENCIES = ["One-Time", "Recurring", "Usage-Based"]
PRICING_CATEGORIES = ["Standard", "Dynamic", "Committed", "Other"]
SERVICE_CATEGORIES = [
    "AI and Machine Learning",
    "Analytics",
    "Business Applications",
    "Compute",
    "Databases",
    "Developer Tools",
    "Multicloud",
    "Identity",
    "Integration",
    "Internet of Things",
    "Management and Governance",
    "Media",
    "Migration",
    "Mobile",
    "Networking",
    "Security",
    "Storage",
    "Web",
    "Other",
]

DT = pl.Datetime("us", "UTC")
# (column, dtype, may be null)
FOCUS_COLUMNS: list[tuple[str, pl.DataType, bool]] = [
    ("BilledCost", MONEY, False),
    ("BillingAccountId", pl.String, False),
    ("BillingAccountName", pl.String, True),
    ("BillingCurrency", pl.String, False),
    ("BillingPeriodEnd", DT, False),
    ("BillingPeriodStart", DT, False),
    ("ChargeCategory", pl.String, False),
    ("ChargeClass", pl.String, True),
    ("ChargeDescription", pl.String, True),
    ("ChargeFrequency", pl.String, True),
    ("ChargePeriodEnd", DT, False),
    ("ChargePeriodStart", DT, False),
    ("ConsumedQuantity", pl.Float64, True),
    ("ConsumedUnit", pl.String, True),
    ("ContractedCost", MONEY, False),
    ("ContractedUnitPrice", MONEY, True),
    ("EffectiveCost", MONEY, False),
    ("InvoiceIssuerName", pl.String, False),
    ("ListCost", MONEY, False),
    ("ListUnitPrice", MONEY, True),
    ("PricingCategory", pl.String, True),
    ("PricingQuantity", pl.Float64, True),
    ("PricingUnit", pl.String, True),
    ("ProviderName", pl.String, False),
    ("PublisherName", pl.String, False),
    ("RegionId", pl.String, True),
    ("RegionName", pl.String, True),
    ("ResourceId", pl.String, True),
    ("ResourceName", pl.String, True),
    ("ResourceType", pl.String, True),
    ("ServiceCategory", pl.String, False),
    ("ServiceName", pl.String, False),
    ("SkuId", pl.String, True),
    ("SkuPriceId", pl.String, True),
    ("SubAccountId", pl.String, True),
    ("SubAccountName", pl.String, True),
    ("Tags", pl.String, True),
]


def _lookup(col: str, index: int, default: str) -> pl.Expr:
    mapping = {k: v[index] for k, v in provider_names().items()}
    return pl.col(col).replace_strict(mapping, default=pl.col(col).fill_null(default), return_dtype=pl.String)


def to_focus(df: pl.DataFrame | pl.LazyFrame, *, as_of: datetime | None = None) -> pl.DataFrame:
    """Map a canonical frame to FOCUS 1.2 columns (see the module docstring for the choices).

    Arguments:
        df: a canonical frame, ideally priced with ``price``.
        as_of: the end of running records' charge periods (default: now).

    Returns:
        One FOCUS row per canonical row: the FOCUS columns with their FOCUS types, then every
        other canonical column as ``x_<Name>``, and ``x_CostStatus``.

    Example:
        >>> focus = to_focus(price(normalize("exports/"), rates))
    """
    frame = df.collect() if isinstance(df, pl.LazyFrame) else df
    now = micros(as_of or datetime.now(timezone.utc), "UTC", "as_of")
    col = pl.col
    start, end = col("usage_start"), col("usage_end")
    point = end == start
    charge_start = pl.when(point).then(start.dt.truncate("1h")).otherwise(start)
    charge_end = (
        pl.when(end.is_null())
        .then(
            pl.max_horizontal(
                pl.lit(now).cast(pl.Datetime("us")).dt.replace_time_zone("UTC"), start + pl.duration(microseconds=1)
            )
        )
        .when(point)
        .then(start.dt.truncate("1h") + pl.duration(hours=1))
        .otherwise(end)
    )
    status = pl.when(col("cost").is_null()).then(pl.lit("unpriced")).otherwise(pl.lit("priced"))
    cost = col("cost").cast(MONEY).fill_null(0)
    # FOCUS wants a unit with every quantity; a count without one (Suger dimensions) is "Units".
    unit = pl.when(col("quantity").is_not_null()).then(col("unit").fill_null("Units")).otherwise(col("unit"))
    month = charge_start.dt.truncate("1mo")
    out = frame.select(
        cost.alias("BilledCost"),
        pl.coalesce(col("account_id"), col("customer_id"), col("provider")).alias("BillingAccountId"),
        pl.lit(None, pl.String).alias("BillingAccountName"),
        col("currency").fill_null("USD").alias("BillingCurrency"),
        month.dt.offset_by("1mo").alias("BillingPeriodEnd"),
        month.alias("BillingPeriodStart"),
        pl.lit("Usage").alias("ChargeCategory"),
        pl.lit(None, pl.String).alias("ChargeClass"),
        pl.concat_str(col("metric"), pl.lit(" ("), col("charge_type"), pl.lit(")")).alias("ChargeDescription"),
        pl.lit("Usage-Based").alias("ChargeFrequency"),
        charge_end.alias("ChargePeriodEnd"),
        charge_start.alias("ChargePeriodStart"),
        col("quantity").alias("ConsumedQuantity"),
        unit.alias("ConsumedUnit"),
        cost.alias("ContractedCost"),
        col("unit_price").cast(MONEY).alias("ContractedUnitPrice"),
        cost.alias("EffectiveCost"),
        _lookup("provider", 0, "Unknown").alias("InvoiceIssuerName"),
        cost.alias("ListCost"),
        col("unit_price").cast(MONEY).alias("ListUnitPrice"),
        pl.when(col("charge_type") == "committed")
        .then(pl.lit("Committed"))
        .otherwise(pl.lit("Standard"))
        .alias("PricingCategory"),
        col("quantity").alias("PricingQuantity"),
        unit.alias("PricingUnit"),
        _lookup("provider", 0, "Unknown").alias("ProviderName"),
        _lookup("provider", 0, "Unknown").alias("PublisherName"),
        pl.lit(None, pl.String).alias("RegionId"),
        pl.lit(None, pl.String).alias("RegionName"),
        col("resource_id").alias("ResourceId"),
        col("resource_name").alias("ResourceName"),
        col("resource_type").alias("ResourceType"),
        _lookup("provider", 2, "Other").alias("ServiceCategory"),
        _lookup("provider", 1, "Unknown").alias("ServiceName"),
        col("sku").alias("SkuId"),
        pl.lit(None, pl.String).alias("SkuPriceId"),
        col("project_id").alias("SubAccountId"),
        pl.lit(None, pl.String).alias("SubAccountName"),
        col("tags").alias("Tags"),
        *[col(c).alias("x_" + "".join(p.title() for p in c.split("_"))) for c in frame.columns if c not in ("tags",)],
        status.alias("x_CostStatus"),
    )
    return out


def _violation(rule: str, column: str, mask: pl.Series, detail: str) -> dict | None:
    bad = mask.fill_null(False)
    n = int(bad.sum())
    if not n:
        return None
    return {"rule": rule, "column": column, "rows": n, "first_row": int(bad.arg_true()[0]), "detail": detail}


def check_focus(df: pl.DataFrame) -> pl.DataFrame:
    """Check a frame against the FOCUS 1.2 column rules verifiable in-process.

    Rules: every column present; FOCUS types; no nulls where FOCUS forbids them; allowed values
    (ChargeCategory, ChargeFrequency, ChargeClass, PricingCategory, ServiceCategory, ISO 4217
    BillingCurrency); ChargePeriodStart < ChargePeriodEnd and BillingPeriodStart <
    BillingPeriodEnd, the charge inside its billing period; units present with quantities;
    ListCost = ListUnitPrice × PricingQuantity and ContractedCost = ContractedUnitPrice ×
    PricingQuantity where the unit prices are given (to 10⁻⁶ or 10⁻⁹ relative, plus half a unit
    of the 9th decimal per unit of quantity: a unit price averaged over tiers is held to 9
    decimals); Tags a JSON object.

    Returns:
        One row per violated rule: rule, column, rows (how many), first_row, detail. Empty when
        the frame passes.
    """
    found: list[dict | None] = []
    height = df.height
    for name, dtype, nullable in FOCUS_COLUMNS:
        if name not in df.columns:
            found.append(
                {"rule": "presence", "column": name, "rows": height, "first_row": 0, "detail": "missing column"}
            )
            continue
        actual = df.schema[name]
        ok = (
            (actual == dtype)
            or (isinstance(dtype, pl.Decimal) and isinstance(actual, pl.Decimal))
            or (isinstance(dtype, pl.Datetime) and isinstance(actual, pl.Datetime) and actual.time_zone == "UTC")
        )
        if actual == pl.Null and nullable:
            ok = True
        if not ok:
            found.append(
                {
                    "rule": "type",
                    "column": name,
                    "rows": height,
                    "first_row": 0,
                    "detail": f"{actual}, FOCUS wants {dtype}",
                }
            )
        elif not nullable:
            found.append(_violation("not null", name, df[name].is_null(), "FOCUS does not allow null here"))
    have = set(df.columns)

    def allowed(name: str, values: list[str], nullable: bool) -> None:
        if name in have and df.schema[name] in (pl.String, pl.Null):
            s = df[name]
            bad = ~s.is_in(values) if not nullable else (s.is_not_null() & ~s.is_in(values))
            found.append(_violation("allowed values", name, bad, f"one of {', '.join(values)}"))

    allowed("ChargeCategory", CHARGE_CATEGORIES, False)
    allowed("ChargeFrequency", CHARGE_FREQUENCIES, True)
    allowed("ChargeClass", ["Correction"], True)
    allowed("PricingCategory", PRICING_CATEGORIES, True)
    allowed("ServiceCategory", SERVICE_CATEGORIES, False)
    if "BillingCurrency" in have and df.schema["BillingCurrency"] == pl.String:
        found.append(
            _violation(
                "allowed values",
                "BillingCurrency",
                ~df["BillingCurrency"].str.contains(r"^[A-Z]{3}$"),
                "an ISO 4217 currency code",
            )
        )
    pairs = [("ChargePeriodStart", "ChargePeriodEnd"), ("BillingPeriodStart", "BillingPeriodEnd")]
    for a, b in pairs:
        if {a, b} <= have and isinstance(df.schema[a], pl.Datetime) and isinstance(df.schema[b], pl.Datetime):
            found.append(_violation("period order", f"{a}, {b}", df[a] >= df[b], f"{a} must be before {b}"))
    if {"ChargePeriodStart", "BillingPeriodStart", "BillingPeriodEnd"} <= have:
        try:
            outside = (df["ChargePeriodStart"] < df["BillingPeriodStart"]) | (
                df["ChargePeriodStart"] >= df["BillingPeriodEnd"]
            )
            found.append(
                _violation(
                    "charge in billing period",
                    "ChargePeriodStart",
                    outside,
                    "the charge period must start inside its billing period",
                )
            )
        except pl.exceptions.PolarsError:
            pass  # a type violation is already reported
    for q, u in (("PricingQuantity", "PricingUnit"), ("ConsumedQuantity", "ConsumedUnit")):
        if {q, u} <= have:
            found.append(
                _violation(
                    "unit with quantity", u, df[q].is_not_null() & df[u].is_null(), f"{u} is required when {q} is given"
                )
            )
    for cost, price in (("ListCost", "ListUnitPrice"), ("ContractedCost", "ContractedUnitPrice")):
        if {cost, price, "PricingQuantity"} <= have:
            try:
                c = df[cost].cast(pl.Float64)
                q = df["PricingQuantity"].cast(pl.Float64)
                expected = df[price].cast(pl.Float64) * q
                # A unit price is held to 9 decimals: an average over tiers is rounded there, so
                # the product may be off by up to half a unit of the 9th decimal per unit
                # quantity; the cost itself is exact to 9 decimals. Float slack on top.
                tolerance = q.abs() * 5e-10 + expected.abs() * 1e-9 + 1e-6
                bad = df[price].is_not_null() & ((c - expected).abs() > tolerance)
                found.append(
                    _violation(
                        "cost = unit price × quantity", cost, bad, f"{cost} must equal {price} × PricingQuantity"
                    )
                )
            except pl.exceptions.PolarsError:
                pass
    if "Tags" in have and df.schema["Tags"] == pl.String:

        def not_object(text: str | None) -> bool:
            if text is None:
                return False
            try:
                return not isinstance(json.loads(text), dict)
            except ValueError:
                return True

        found.append(
            _violation("tags", "Tags", df["Tags"].map_elements(not_object, return_dtype=pl.Boolean), "a JSON object")
        )
    rows = [f for f in found if f]
    schema = {"rule": pl.String, "column": pl.String, "rows": pl.Int64, "first_row": pl.Int64, "detail": pl.String}
    return pl.DataFrame(rows, schema=schema)

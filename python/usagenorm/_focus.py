"""FOCUS 1.2 output: ``to_focus`` maps a canonical (ideally priced) frame to FOCUS columns, and
``check_focus`` checks a frame against the rules of the FOCUS 1.2 rule model (``_focus_rules``).

Choices where FOCUS needs a value the export does not have (README "FOCUS"):
- A charge lies inside its billing period (the calendar month, UTC): a row whose usage crosses
  a month boundary becomes one FOCUS row per month, its quantity and cost split in proportion to
  time exactly as ``aggregate`` splits them (the cost to the last of its 9 decimals, the parts
  summing to the whole).
- A running record (usage_end null) is charged up to ``as_of``; without ``as_of`` that is now, with
  a ``RunningRecordsWarning`` (pass ``as_of`` for output that is the same on every run). A running
  record counted in hours gets the hours so far as its quantity (``x_QuantitySource`` "elapsed").
- A point-in-time record (Suger) is charged for the UTC hour holding it.
- A Usage row needs quantities: a row with none (a cost-report line) is one unit of its charge:
  quantities 1, unit ``Units``, ``x_QuantitySource`` "charge"; reported quantities are "reported".
- Cost columns MUST NOT be null. An unpriced row gets 0 in every cost column and unit price and
  ``x_CostStatus = "unpriced"`` (never a silent zero: the status says so); a row with a cost
  (reported by the provider or from a rate card) is ``"priced"``.
- Unit prices MUST NOT be null on Usage rows and MUST give the cost with PricingQuantity: the
  row's unit price where it does (to 10⁻⁹ relative, the validator's tolerance), else the cost
  divided by the quantity (18 decimals). A cost on a zero quantity is charged as one unit.
- BillingCurrency MUST NOT be null: the row's currency, else USD; prices are in that currency
  (PricingCurrency = BillingCurrency).
- BillingAccountId MUST NOT be null: account_id, else customer_id, else the provider.
  SubAccountName is the SubAccountId (exports carry no project names).
- SkuId is the row's sku, else its metric; SkuPriceId is SkuId and the charge type; SkuMeter the
  metric. ResourceType is the row's resource_type, else the format's (``formats()``), and null
  without a ResourceId.
- Tags: values that are objects or arrays are kept as their JSON text (KeyValueFormat).
- Everything else of the canonical row is kept in ``x_``-prefixed columns.
"""

from __future__ import annotations

import warnings
from datetime import date, datetime, timedelta, timezone
from typing import overload

import polars as pl

from . import _core, _frames, _lazy
from ._aggregate import RunningRecordsWarning, aggregate
from ._frames import MONEY, micros

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def provider_names() -> dict[str, tuple[str, str, str, str, str]]:
    """(ProviderName, ServiceName, ServiceCategory, ServiceSubcategory, ResourceType) per format,
    from each format's own description: built in, installed, or registered (``formats()``)."""
    from . import _formats

    f = _core.formats(_formats.active(), _formats.replacements()).unique("provider", keep="first", maintain_order=True)
    cols = ("focus_provider", "focus_service", "focus_category", "focus_subcategory", "focus_resource_type")
    return {p: tuple(rest) for p, *rest in f.select("provider", *cols).rows()}  # type: ignore[misc]


DT = pl.Datetime("us", "UTC")
UNIT_PRICE = pl.Decimal(38, 18)
# (column, dtype, may be null): the FOCUS 1.2 columns to_focus writes, in its order.
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
    ("ContractedUnitPrice", UNIT_PRICE, True),
    ("EffectiveCost", MONEY, False),
    ("InvoiceId", pl.String, True),
    ("InvoiceIssuerName", pl.String, False),
    ("ListCost", MONEY, False),
    ("ListUnitPrice", UNIT_PRICE, True),
    ("PricingCategory", pl.String, True),
    ("PricingCurrency", pl.String, True),
    ("PricingCurrencyContractedUnitPrice", UNIT_PRICE, True),
    ("PricingCurrencyEffectiveCost", MONEY, True),
    ("PricingCurrencyListUnitPrice", UNIT_PRICE, True),
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
    ("ServiceSubcategory", pl.String, False),
    ("SkuId", pl.String, True),
    ("SkuMeter", pl.String, True),
    ("SkuPriceDetails", pl.String, True),
    ("SkuPriceId", pl.String, True),
    ("SubAccountId", pl.String, True),
    ("SubAccountName", pl.String, True),
    ("Tags", pl.String, True),
]

# Unit spellings of exports that FOCUS's UnitFormat does not accept, with FOCUS's.
FOCUS_UNITS = {
    "gibibyte_hours": "GiB-Hours",
    "gigabyte_hours": "GB-Hours",
    "GigabyteHours": "GB-Hours",
    "gibibytes": "GiB",
    "gigabytes": "GB",
    "bytes": "B",
}


def _lookup(names: dict[str, tuple[str, ...]], col: str, index: int, default: str) -> pl.Expr:
    mapping = {k: v[index] for k, v in names.items()}
    return pl.col(col).replace_strict(mapping, default=pl.lit(default), return_dtype=pl.String)


def _by_month(frame: pl.DataFrame, as_of: datetime) -> pl.DataFrame:
    """`frame` with one row per (row, UTC calendar month it covers) and ``__month``,
    ``__quantity`` and ``__cost``: the row's quantity and cost in that month. A row inside one
    month keeps its own; the others (crossing a month boundary, or running) are split by time
    the way ``aggregate`` splits them, exactly (it does the splitting)."""
    start, end = pl.col("usage_start"), pl.col("usage_end")
    month = start.dt.truncate("1mo")
    single = end.is_not_null() & (end <= month.dt.offset_by("1mo"))
    whole = frame.with_columns(
        month.alias("__month"), pl.col("quantity").alias("__quantity"), pl.col("cost").alias("__cost")
    )
    if "usage_end" in frame.columns and frame.select(single.all()).item():
        return whole
    flags = frame.select(single.fill_null(False)).to_series()
    narrow = frame.select(
        pl.int_range(pl.len(), dtype=pl.UInt32).alias("__row"), "usage_start", "usage_end", "quantity", "unit", "cost"
    )
    parts = aggregate(narrow.filter(~flags), every="1mo", by="__row", as_of=as_of, billable_only=False).select(
        "__row",
        pl.col("bucket_start").alias("__month"),
        pl.col("quantity").alias("__quantity"),
        pl.col("cost").cast(pl.Decimal(38, 9)).alias("__cost"),
    )
    kept = narrow.filter(flags).select(
        "__row",
        pl.col("usage_start").dt.truncate("1mo").alias("__month"),
        pl.col("quantity").alias("__quantity"),
        pl.col("cost").cast(pl.Decimal(38, 9)).alias("__cost"),
    )
    # One gather of the wide frame, in input order (a split row's months in calendar order).
    pieces = pl.concat([kept, parts.with_columns(pl.col("__row").cast(pl.UInt32))]).sort("__row", "__month")
    return frame.select(pl.all().gather(pieces["__row"])).with_columns(pieces.drop("__row"))


VERSIONS = ("1.2", "1.3")


@overload
def to_focus(df: pl.DataFrame, *, as_of: datetime | date | str | None = ..., version: str = ...) -> pl.DataFrame: ...
@overload
def to_focus(df: pl.LazyFrame, *, as_of: datetime | date | str | None = ..., version: str = ...) -> pl.LazyFrame: ...
def to_focus(
    df: pl.DataFrame | pl.LazyFrame, *, as_of: datetime | date | str | None = None, version: str = "1.2"
) -> pl.DataFrame | pl.LazyFrame:
    """Map a canonical frame to FOCUS 1.2 columns (see the module docstring for the choices).

    Arguments:
        df: a canonical frame, ideally priced with ``price``.
        as_of: the end of running records' charge periods: a datetime, date or ISO text (naive:
            UTC). Default: now, with a ``RunningRecordsWarning``; give it for output that is the
            same on every run.
        version: ``"1.2"`` (the default: the version the official validator checks offline) or
            ``"1.3"``, which adds ServiceProviderName (FOCUS 1.3's replacement for ProviderName,
            never null) and HostProviderName (the service provider's name: none of the formats
            exposes a separate host); ProviderName and PublisherName stay, deprecated in 1.3.

    Returns:
        One FOCUS row per canonical row and calendar month it covers (UTC billing periods): the
        FOCUS columns with their FOCUS types, then every other canonical column as
        ``x_<Name>``, ``x_CostStatus`` and ``x_QuantitySource``. A DataFrame for a DataFrame;
        for a LazyFrame a LazyFrame that maps its input batch by batch when collected (the
        default ``as_of`` is the time of the call; the warning comes when it is collected).

    Example:
        >>> focus = to_focus(price(normalize("exports/"), rates), as_of="2026-12-01T00:00:00Z")
    """
    if version not in VERSIONS:
        raise ValueError(f"version {version!r}: one of {', '.join(VERSIONS)}")
    lf = _frames.lazy(df, "to_focus")
    end = EPOCH + timedelta(microseconds=micros(as_of, "UTC", "as_of") or 0) if as_of is not None else None
    when = end or datetime.now(timezone.utc)

    def running(frame: pl.DataFrame) -> int:
        return int(frame["usage_end"].null_count()) if "usage_end" in frame.columns else 0

    def warn(running: int) -> None:
        if running and end is None:
            warnings.warn(
                f"{running} running record(s) (usage_end null) are charged up to now; "
                "pass as_of= (--as-of on the command line) for output that is the same on every run",
                RunningRecordsWarning,
                stacklevel=3,
            )

    if isinstance(df, pl.DataFrame):
        warn(running(df))
        return _focus_frame(df, when, version)
    return _lazy.mapped(lf, lambda batch: (_focus_frame(batch, when, version), running(batch)), warn)


def _focus_frame(frame: pl.DataFrame, as_of: datetime, version: str) -> pl.DataFrame:
    """``to_focus`` of one frame, running records charged up to ``as_of``."""
    col = pl.col
    if "tags" in frame.columns:
        frame = frame.with_columns(_core.focus_tags(frame.select(col("tags").cast(pl.String)))["tags"].alias("__tags"))
    base = _by_month(frame, as_of)
    as_of_lit = pl.lit(as_of).cast(DT)
    start, end = col("usage_start"), col("usage_end")
    month_end = col("__month").dt.offset_by("1mo")
    piece_start = pl.max_horizontal(start, col("__month"))
    piece_end = pl.min_horizontal(pl.coalesce(end, pl.max_horizontal(as_of_lit, start)), month_end)
    point = piece_end <= piece_start
    charge_start = pl.when(point).then(piece_start.dt.truncate("1h")).otherwise(piece_start)
    charge_end = pl.when(point).then(piece_start.dt.truncate("1h").dt.offset_by("1h")).otherwise(piece_end)

    status = pl.when(col("cost").is_null()).then(pl.lit("unpriced")).otherwise(pl.lit("priced"))
    cost = col("__cost").cast(MONEY).fill_null(0)
    quantity = col("__quantity")
    source = (
        pl.when(col("quantity").is_not_null())
        .then(pl.lit("reported"))
        .when(quantity.is_not_null())
        .then(pl.lit("elapsed"))
        .otherwise(pl.lit("charge"))
    )
    unit = col("unit").replace(FOCUS_UNITS)
    consumed_q = quantity.fill_null(1.0)
    consumed_u = pl.when(quantity.is_null()).then(pl.lit("Units")).otherwise(unit.fill_null("Units"))
    # A cost on a zero quantity has no unit price: it is priced as one unit of the charge.
    lump = (consumed_q == 0) & (cost != 0)
    pricing_q = pl.when(lump).then(pl.lit(1.0)).otherwise(consumed_q)
    pricing_u = pl.when(lump).then(pl.lit("Units")).otherwise(consumed_u)
    given = col("unit_price").cast(pl.Float64) if "unit_price" in frame.columns else pl.lit(None, pl.Float64)
    c, q = cost.cast(pl.Float64), pricing_q
    fits = (given * q - c).abs() <= 1e-9 * pl.max_horizontal(c.abs(), pl.lit(1.0))
    derived = pl.when(q == 0).then(pl.lit(0.0)).otherwise(c / q)
    # Exact where it can be: the row's own unit price, or the cost of one unit; else the ratio
    # (a float quotient to 18 places: within 1e-15 relative of the exact one).
    unit_price = (
        pl.when(fits)
        .then(col("unit_price").cast(UNIT_PRICE) if "unit_price" in frame.columns else pl.lit(None, UNIT_PRICE))
        .when(q == 1)
        .then(cost.cast(UNIT_PRICE))
        .otherwise(derived.cast(UNIT_PRICE))
    )
    names = provider_names()  # the registry, read once
    currency = col("currency").fill_null("USD")
    resource_type = (
        pl.when(col("resource_id").is_null())
        .then(pl.lit(None, pl.String))
        .otherwise(pl.coalesce(col("resource_type"), _lookup(names, "provider", 4, "Resource")))
    )
    category = _lookup(names, "provider", 2, "Other")
    sku_id = pl.coalesce(col("sku"), col("metric"))
    month = col("__month")
    out = base.select(
        cost.alias("BilledCost"),
        pl.coalesce(col("account_id"), col("customer_id"), col("provider")).alias("BillingAccountId"),
        pl.lit(None, pl.String).alias("BillingAccountName"),
        currency.alias("BillingCurrency"),
        month_end.alias("BillingPeriodEnd"),
        month.alias("BillingPeriodStart"),
        pl.lit("Usage").alias("ChargeCategory"),
        pl.lit(None, pl.String).alias("ChargeClass"),
        pl.concat_str(col("metric"), pl.lit(" ("), col("charge_type"), pl.lit(")")).alias("ChargeDescription"),
        pl.lit("Usage-Based").alias("ChargeFrequency"),
        charge_end.alias("ChargePeriodEnd"),
        charge_start.alias("ChargePeriodStart"),
        consumed_q.alias("ConsumedQuantity"),
        consumed_u.alias("ConsumedUnit"),
        cost.alias("ContractedCost"),
        unit_price.alias("ContractedUnitPrice"),
        cost.alias("EffectiveCost"),
        pl.lit(None, pl.String).alias("InvoiceId"),
        _lookup(names, "provider", 0, "Unknown").alias("InvoiceIssuerName"),
        cost.alias("ListCost"),
        unit_price.alias("ListUnitPrice"),
        pl.when(col("charge_type") == "committed")
        .then(pl.lit("Committed"))
        .otherwise(pl.lit("Standard"))
        .alias("PricingCategory"),
        currency.alias("PricingCurrency"),
        unit_price.alias("PricingCurrencyContractedUnitPrice"),
        cost.alias("PricingCurrencyEffectiveCost"),
        unit_price.alias("PricingCurrencyListUnitPrice"),
        pricing_q.alias("PricingQuantity"),
        pricing_u.alias("PricingUnit"),
        _lookup(names, "provider", 0, "Unknown").alias("ProviderName"),
        _lookup(names, "provider", 0, "Unknown").alias("PublisherName"),
        pl.lit(None, pl.String).alias("RegionId"),
        pl.lit(None, pl.String).alias("RegionName"),
        col("resource_id").alias("ResourceId"),
        col("resource_name").alias("ResourceName"),
        resource_type.alias("ResourceType"),
        category.alias("ServiceCategory"),
        _lookup(names, "provider", 1, "Unknown").alias("ServiceName"),
        _lookup(names, "provider", 3, "Other (Other)").alias("ServiceSubcategory"),
        sku_id.alias("SkuId"),
        col("metric").alias("SkuMeter"),
        pl.lit(None, pl.String).alias("SkuPriceDetails"),
        pl.concat_str(sku_id, pl.lit("/"), col("charge_type")).alias("SkuPriceId"),
        col("project_id").alias("SubAccountId"),
        col("project_id").alias("SubAccountName"),
        (col("__tags") if "tags" in frame.columns else pl.lit(None, pl.String)).alias("Tags"),
        *[
            col(c).alias("x_" + "".join(p.title() for p in c.split("_")))
            for c in frame.columns
            if c not in ("tags", "__tags")
        ],
        status.alias("x_CostStatus"),
        source.alias("x_QuantitySource"),
    )
    if version == "1.3":
        order = [c for c, _, _ in FOCUS_COLUMNS]
        out = out.with_columns(
            pl.col("ProviderName").alias("ServiceProviderName"), pl.col("ProviderName").alias("HostProviderName")
        ).select(
            *order[: order.index("ServiceName")],
            "ServiceProviderName",
            "HostProviderName",
            pl.exclude(order[: order.index("ServiceName")], "ServiceProviderName", "HostProviderName"),
        )
    return out


def check_focus(df: pl.DataFrame) -> pl.DataFrame:
    """Check a frame against the FOCUS 1.2 rule model (the FinOps Foundation's, as its official
    validator bundles it), under the applicability criteria usagenorm's output claims.

    Every Static rule that applies is evaluated on the data, as are the key-value rules for
    Tags; MAY rules and Dynamic rules (which no data check decides) are not. Two checks of
    usagenorm's own follow rules the model leaves to prose: ``usagenorm:period-order`` (a period
    starts before it ends) and ``usagenorm:charge-in-billing-period`` (a charge lies inside its
    billing period). See ``_focus_rules`` for where this follows a rule's intent rather than the
    validator's SQL.

    Returns:
        One row per violated rule: rule (its id), keyword (MUST, SHOULD, ...), column, rows (how
        many), first_row (0-based), detail (the rule's text). Empty when the frame passes.
    """
    from . import _focus_rules

    findings, _ = _focus_rules.check(df)
    rows = [
        {
            "rule": x.rule,
            "keyword": x.keyword,
            "column": x.column,
            "rows": x.rows,
            "first_row": x.first_row,
            "detail": x.detail,
        }
        for x in findings
    ]
    have = set(df.columns)

    def add(rule: str, column: str, bad: pl.Series, detail: str) -> None:
        bad = bad.fill_null(False)
        n = int(bad.sum())
        if n:
            rows.append(
                {
                    "rule": rule,
                    "keyword": "MUST",
                    "column": column,
                    "rows": n,
                    "first_row": int(bad.arg_true()[0]),
                    "detail": detail,
                }
            )

    def times(*names: str) -> bool:
        return set(names) <= have and all(isinstance(df.schema[n], pl.Datetime) for n in names)

    for a, b in (("ChargePeriodStart", "ChargePeriodEnd"), ("BillingPeriodStart", "BillingPeriodEnd")):
        if times(a, b):
            add("usagenorm:period-order", a, df[a] >= df[b], f"{a} must be before {b}")
    if times("ChargePeriodStart", "ChargePeriodEnd", "BillingPeriodStart", "BillingPeriodEnd"):
        outside = (df["ChargePeriodStart"] < df["BillingPeriodStart"]) | (
            df["ChargePeriodEnd"] > df["BillingPeriodEnd"]
        )
        add(
            "usagenorm:charge-in-billing-period",
            "ChargePeriodStart",
            outside,
            "the charge period must lie inside its billing period",
        )
    schema = {
        "rule": pl.String,
        "keyword": pl.String,
        "column": pl.String,
        "rows": pl.Int64,
        "first_row": pl.Int64,
        "detail": pl.String,
    }
    return pl.DataFrame(rows, schema=schema)

"""Checks and prepares the canonical columns a frame-consuming function (aggregate, price)
hands to the core: datetimes become µs UTC, quantity f64, money decimal(38, 9)."""

from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl

from ._errors import ColumnError

MONEY = pl.Decimal(38, 9)
UTC_US = pl.Datetime("us", "UTC")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def lazy(df: pl.DataFrame | pl.LazyFrame, fn: str) -> pl.LazyFrame:
    if isinstance(df, pl.DataFrame):
        return df.lazy()
    if isinstance(df, pl.LazyFrame):
        return df
    raise TypeError(f"{fn}: expected a polars DataFrame or LazyFrame, got {type(df).__name__}")


def zone(tz: str) -> ZoneInfo | timezone:
    if tz in ("UTC", "utc", "Z", "Etc/UTC"):
        return timezone.utc
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {tz!r}") from None


def micros(value: datetime | date | str | None, tz: str, name: str) -> int | None:
    """A point in time as µs since the epoch; naive values and dates are read in ``tz``."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{name}: not an ISO 8601 date or time: {value!r}") from None
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if not isinstance(value, datetime):
        raise TypeError(f"{name}: expected a datetime, date or ISO string, got {type(value).__name__}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone(tz))
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def utc_datetime(name: str, dtype: pl.DataType, fn: str) -> pl.Expr:
    """A datetime (or date) column as datetime[μs, UTC]; naive datetimes are read as UTC."""
    col = pl.col(name)
    if dtype == pl.Date:
        return col.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    if isinstance(dtype, pl.Datetime):
        col = col.dt.replace_time_zone("UTC") if dtype.time_zone is None else col.dt.convert_time_zone("UTC")
        return col.dt.cast_time_unit("us")
    raise ColumnError(f"{fn}: column {name!r} must be a datetime, got {dtype}")


def number(name: str, dtype: pl.DataType, fn: str) -> pl.Expr:
    if dtype.is_numeric():
        return pl.col(name).cast(pl.Float64)
    raise ColumnError(f"{fn}: column {name!r} must be numeric, got {dtype}")


def money(name: str, dtype: pl.DataType, fn: str) -> pl.Expr:
    """Money stays exact: decimals and integers only, never floats."""
    if isinstance(dtype, pl.Decimal) and (dtype.scale or 0) <= 9:
        return pl.col(name).cast(MONEY)
    if dtype.is_integer() or dtype == pl.Null:
        return pl.col(name).cast(MONEY)
    raise ColumnError(
        f"{fn}: column {name!r} must be a decimal with at most 9 decimals (money is exact), got {dtype}; "
        f"cast it with pl.col({name!r}).cast(pl.Decimal(38, 9)) if you accept the rounding"
    )


def text(name: str, dtype: pl.DataType, fn: str) -> pl.Expr:
    if dtype in (pl.String, pl.Null) or isinstance(dtype, pl.Categorical | pl.Enum):
        return pl.col(name).cast(pl.String)
    if dtype == pl.Boolean or dtype.is_integer():
        return pl.col(name).cast(pl.String)
    raise ColumnError(f"{fn}: column {name!r} must be text (or boolean / integer), got {dtype}")


def require(schema: pl.Schema, names: list[str], fn: str) -> None:
    missing = [n for n in names if n not in schema]
    if missing:
        raise ColumnError(
            f"{fn}: the frame has no column {', '.join(repr(m) for m in missing)} (it has {', '.join(schema.names())})"
        )


def usage_series(frame: pl.DataFrame, fn: str) -> list[pl.Series]:
    """The usage columns the core reads, each its own Series in the order the core takes them:
    ``usage_start`` and ``usage_end`` (µs UTC; a missing end makes point records),
    ``quantity`` (f64), ``cost`` (decimal(38, 9); null when absent), ``billable`` (default
    true). As Series they never clash with group or match columns, whatever those are named."""
    schema, rows = frame.schema, frame.height

    def column(expr: pl.Expr) -> pl.Series:
        return frame.select(expr).to_series()

    start = column(utc_datetime("usage_start", schema["usage_start"], fn))
    end = column(utc_datetime("usage_end", schema["usage_end"], fn)) if "usage_end" in schema else start
    cost = column(money("cost", schema["cost"], fn)) if "cost" in schema else pl.Series("cost", [None] * rows, MONEY)
    billable = (
        column(pl.col("billable").cast(pl.Boolean))
        if "billable" in schema
        else pl.Series("billable", [True], pl.Boolean).new_from_index(0, rows)
    )
    return [start, end.alias("usage_end"), column(number("quantity", schema["quantity"], fn)), cost, billable]


def text_or_null(name: str, schema: pl.Schema, fn: str, alias: str | None = None) -> pl.Expr:
    """A text column, or a null one when the frame lacks it."""
    return (text(name, schema[name], fn) if name in schema else pl.lit(None, pl.String)).alias(alias or name)

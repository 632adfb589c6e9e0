"""Rate cards, ``price`` and ``reconcile``: exact decimal money from the Rust core."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, Literal, overload

import polars as pl

from . import _core, _frames, _lazy
from ._errors import ColumnError, RateCardError

MATCH_COLUMNS = tuple(_core.MATCH_COLUMNS)


class UnpricedRowsWarning(UserWarning):
    """Some billable rows matched no rate: their cost stays null (never zero)."""


def _text(value: Any) -> str | None:
    """A rate-card cell as exact text: decimals and numbers keep their digits, times are RFC 3339."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    return str(value)


class RateCard:
    """A validated rate card. Build one with ``from_csv``, ``from_frame`` or ``from_records``.

    Columns: match columns (any of provider, metric, sku, resource_type, charge_type,
    account_id, customer_id, project_id; empty matches anything), ``unit_price`` (required),
    ``unit`` (what the price is per; durations convert), ``currency`` (ISO 4217, default USD),
    ``valid_from`` / ``valid_to`` (RFC 3339, [from, to)), ``tier_from`` and ``tier_period``.
    Every cell is kept as text so prices stay exact.
    """

    def __init__(self, frame: pl.DataFrame) -> None:
        text = frame.select(pl.col(c).cast(pl.String) for c in frame.columns)
        _core.check_rate_card(text)
        self.frame = text

    @classmethod
    def from_csv(cls, path: str | os.PathLike[str]) -> RateCard:
        """Reads a CSV file; every column is read as text. A ``RateCardError`` names the file."""
        try:
            return cls(pl.read_csv(path, infer_schema=False))
        except RateCardError as e:
            text = str(e)
            if e.row:
                # The header is line 1: data row N is line N + 1.
                text = text.replace(f"rate card row {e.row}:", f"rate card row {e.row} (line {e.row + 1}):", 1)
            raise RateCardError(f"{os.fspath(path)}: {text}", row=e.row) from None

    @classmethod
    def from_frame(cls, frame: pl.DataFrame) -> RateCard:
        """Takes a DataFrame; decimals keep their digits, datetimes become RFC 3339 UTC."""
        cols = []
        for name, dtype in frame.schema.items():
            col = pl.col(name)
            if isinstance(dtype, pl.Datetime):
                utc = col.dt.replace_time_zone("UTC") if dtype.time_zone is None else col.dt.convert_time_zone("UTC")
                col = utc.dt.to_string("%Y-%m-%dT%H:%M:%S%.fZ")
            elif dtype == pl.Date:
                col = col.dt.to_string("%Y-%m-%d")
            elif dtype.is_float():
                col = col.map_elements(_text, return_dtype=pl.String)
            cols.append(col.cast(pl.String).alias(name))
        return cls(frame.select(cols))

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]]) -> RateCard:
        """Takes dicts (``Decimal``, ``str``, numbers, ``datetime`` values)."""
        rows = list(records)
        names: list[str] = []
        for r in rows:
            names.extend(k for k in r if k not in names)
        data = {n: [_text(r.get(n)) for r in rows] for n in names}
        return cls(pl.DataFrame(data, schema=dict.fromkeys(names, pl.String)))

    def __len__(self) -> int:
        return self.frame.height

    def __repr__(self) -> str:
        return f"RateCard({self.frame.height} rows: {', '.join(self.frame.columns)})"


def _prepared(df: pl.DataFrame, fn: str) -> list[pl.Series | pl.DataFrame]:
    """The core's pricing arguments: the usage Series, the unit, and the match columns."""
    schema = df.schema
    _frames.require(schema, ["usage_start", "quantity"], fn)
    unit = df.select(_frames.text_or_null("unit", schema, fn)).to_series()
    matches = df.select(_frames.text_or_null(c, schema, fn) for c in MATCH_COLUMNS)
    return [*_frames.usage_series(df, fn), unit, matches]


def _collect(df: pl.DataFrame | pl.LazyFrame, fn: str) -> pl.DataFrame:
    return _frames.lazy(df, fn).collect()


def _usage_row(frame: pl.DataFrame, i: int) -> str:
    """A usage row named by where it came from: source, record (its source_index) and record_id."""
    row = frame.row(i, named=True)
    parts = [f"{row['source']} record {row['source_index']}" if "source" in row and "source_index" in row else ""]
    if row.get("record_id") is not None:
        parts.append(f"record_id {row['record_id']!r}")
    named = ", ".join(p for p in parts if p)
    return f"usage row {i} is {named}" if named else f"usage row {i}"


@overload
def price(
    df: pl.DataFrame,
    rates: RateCard,
    *,
    overwrite: bool = ...,
    billable_only: bool = ...,
    summary: Literal[False] = ...,
) -> pl.DataFrame: ...
@overload
def price(
    df: pl.LazyFrame,
    rates: RateCard,
    *,
    overwrite: bool = ...,
    billable_only: bool = ...,
    summary: Literal[False] = ...,
) -> pl.LazyFrame: ...
@overload
def price(
    df: pl.DataFrame,
    rates: RateCard,
    *,
    overwrite: bool = ...,
    billable_only: bool = ...,
    summary: Literal[True],
) -> tuple[pl.DataFrame, pl.DataFrame]: ...
@overload
def price(
    df: pl.DataFrame,
    rates: RateCard,
    *,
    overwrite: bool = ...,
    billable_only: bool = ...,
    summary: bool,
) -> pl.DataFrame | tuple[pl.DataFrame, pl.DataFrame]: ...
def price(
    df: pl.DataFrame | pl.LazyFrame,
    rates: RateCard,
    *,
    overwrite: bool = False,
    billable_only: bool = True,
    summary: bool = False,
) -> pl.DataFrame | pl.LazyFrame | tuple[pl.DataFrame, pl.DataFrame]:
    """Fill ``cost``, ``unit_price`` and ``currency`` from a rate card, exactly.

    Arguments:
        df: a canonical DataFrame or LazyFrame.
        rates: a ``RateCard``.
        overwrite: also price rows that carry a provider cost (Exabits); by default they keep it.
        billable_only: leave rows with ``billable`` false unpriced (default).
        summary: also return one row per (outcome, provider, metric) with its row count, then
            one row per rate row that priced no usage row (outcome ``unused_rate``, its
            provider and metric, ``rate_row`` counted from 1 as in errors).

    Returns:
        The frame with ``cost`` / ``unit_price`` / ``currency`` filled where a rate applied;
        with ``summary=True``, ``(priced, summary)``. Outcomes: ``priced``, ``provider_cost``
        (kept), ``no_rate``, ``not_billable``, ``no_quantity``; and ``unused_rate``. For a
        LazyFrame, a LazyFrame that prices its input batch by batch when collected (rows are
        priced one by one, so batches do not change a cost; the warning comes once, when it
        is collected).

    Raises:
        ValueError: ``summary=True`` with a LazyFrame (a summary counts every row: collect first).
        RateCardError: two rates match a row equally well (both rate rows named, and the usage
            row by its source, record and record_id).
        ColumnError: a missing or mistyped column.

    Warns:
        UnpricedRowsWarning: billable rows that matched no rate keep a null cost.

    Example:
        >>> priced = price(df, RateCard.from_csv("rates.csv"))
    """
    if not isinstance(rates, RateCard):
        raise TypeError(f"price: rates must be a RateCard, got {type(rates).__name__}")
    lf = _frames.lazy(df, "price")
    if isinstance(df, pl.LazyFrame):
        if summary:
            raise ValueError("price: summary=True counts every row; give it a DataFrame (collect the LazyFrame)")

        def step(batch: pl.DataFrame) -> tuple[pl.DataFrame, int]:
            out, result, _ = _priced(batch, rates, overwrite, billable_only)
            return out, _unpriced(result)

        return _lazy.mapped(lf, step, _warn_unpriced)
    frame = lf.collect()
    out, result, unused = _priced(frame, rates, overwrite, billable_only)
    _warn_unpriced(_unpriced(result))
    if not summary:
        return out
    counts = (
        pl.DataFrame({"outcome": result["outcome"]})
        .with_columns(
            (frame["provider"] if "provider" in frame.columns else pl.lit(None, pl.String)).alias("provider"),
            (frame["metric"] if "metric" in frame.columns else pl.lit(None, pl.String)).alias("metric"),
        )
        .group_by("outcome", "provider", "metric")
        .len("rows")
        .sort("outcome", "provider", "metric", nulls_last=False)
        .with_columns(pl.lit(None, pl.Int64).alias("rate_row"))
    )
    # The rate rows that priced nothing: a typo in a metric, a rate for usage not in this frame.
    card = rates.frame
    unmatched = pl.DataFrame(
        {
            "outcome": ["unused_rate"] * len(unused),
            "provider": card["provider"].gather([r - 1 for r in unused]) if "provider" in card.columns else None,
            "metric": card["metric"].gather([r - 1 for r in unused]) if "metric" in card.columns else None,
            "rows": [0] * len(unused),
            "rate_row": unused,
        },
        schema=counts.schema,
    )
    return out, pl.concat([counts, unmatched])


def _unpriced(result: pl.DataFrame) -> int:
    """Billable rows of the core's result that no rate matched."""
    return int((result["outcome"] == "no_rate").sum())


def _warn_unpriced(missing: int) -> None:
    if missing:
        # Pointing at price()'s caller (eager; lazily it is raised while the query runs).
        warnings.warn(
            f"{missing} billable row(s) matched no rate; their cost stays null", UnpricedRowsWarning, stacklevel=3
        )


def _priced(
    frame: pl.DataFrame, rates: RateCard, overwrite: bool, billable_only: bool
) -> tuple[pl.DataFrame, pl.DataFrame, list[int]]:
    """``frame`` priced, the core's per-row result (``outcome`` among it), and the unused card rows."""
    try:
        result, unused = _core.price(
            *_prepared(frame, "price"), rates.frame, overwrite=overwrite, billable_only=billable_only
        )
    except RateCardError as e:
        if e.usage_row is None:
            raise
        raise RateCardError(
            f"{e}: {_usage_row(frame, e.usage_row)}", row=e.row, usage_row=e.usage_row
        ) from None
    done = result["outcome"] == "priced"

    def merged(name: str, dtype: pl.DataType | type[pl.DataType]) -> pl.Series:
        # Priced rows take the rate card's values; every other row keeps what it had. The
        # result is null wherever a row was not priced, so it is the column a frame lacked.
        if name not in frame.columns:
            return result[name]
        return result[name].zip_with(done, frame[name].cast(dtype)).alias(name)

    out = frame.with_columns(
        merged("cost", _frames.MONEY), merged("unit_price", _frames.MONEY), merged("currency", pl.String)
    )
    return out, result, unused


def reconcile(df: pl.DataFrame | pl.LazyFrame, rates: RateCard, *, tolerance: Decimal | str | int = 0) -> pl.DataFrame:
    """Every row with a provider-reported cost whose rate-card cost differs by more than ``tolerance``.

    Returns one row per such row: provider, record_id, source, source_index, metric, quantity,
    unit, ``provider_cost``, ``rate_cost``, ``difference`` (rate − provider), ``currency``,
    ``rate_currency`` and ``status`` (``differs``, ``no_rate``, ``currency_mismatch``).
    """
    if not isinstance(rates, RateCard):
        raise TypeError(f"reconcile: rates must be a RateCard, got {type(rates).__name__}")
    tol = Decimal(str(tolerance))
    if tol < 0:
        raise ValueError("tolerance must not be negative")
    frame = _collect(df, "reconcile")
    if "cost" not in frame.columns:
        raise ColumnError("reconcile: the frame has no column 'cost' (nothing to reconcile)")
    frame = frame.with_row_index("__row").filter(pl.col("cost").is_not_null())
    result, _ = _core.price(*_prepared(frame, "reconcile"), rates.frame, overwrite=True, billable_only=False)
    ident = [
        c
        for c in ("provider", "record_id", "source", "source_index", "metric", "quantity", "unit")
        if c in frame.columns
    ]
    both = frame.select(
        *ident,
        pl.col("cost").cast(_frames.MONEY).alias("provider_cost"),
        (pl.col("currency") if "currency" in frame.columns else pl.lit(None, pl.String)).alias("currency"),
    ).with_columns(
        result["cost"].alias("rate_cost"),
        result["currency"].alias("rate_currency"),
    )
    both = both.with_columns((pl.col("rate_cost") - pl.col("provider_cost")).alias("difference")).with_columns(
        pl.when(pl.col("rate_cost").is_null())
        .then(pl.lit("no_rate"))
        .when(pl.col("rate_currency") != pl.col("currency"))
        .then(pl.lit("currency_mismatch"))
        .otherwise(pl.lit("differs"))
        .alias("status")
    )
    return both.filter(
        (pl.col("status") != "differs") | (pl.col("difference").abs() > pl.lit(tol, _frames.MONEY))
    ).select(*ident, "provider_cost", "rate_cost", "difference", "currency", "rate_currency", "status")

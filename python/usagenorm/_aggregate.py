"""``aggregate``: usage split across calendar buckets and summed per group, in the Rust core."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import overload

import polars as pl

from . import _core, _frames, _lazy


class RunningRecordsWarning(UserWarning):
    """Running records (usage_end null) were placed whole in their start bucket: pass ``as_of``."""


@overload
def aggregate(
    df: pl.DataFrame,
    every: str | None = ...,
    by: str | Sequence[str] = ...,
    *,
    tz: str = ...,
    start: datetime | date | str | None = ...,
    end: datetime | date | str | None = ...,
    as_of: datetime | date | str | None = ...,
    billable_only: bool = ...,
) -> pl.DataFrame: ...
@overload
def aggregate(
    df: pl.LazyFrame,
    every: str | None = ...,
    by: str | Sequence[str] = ...,
    *,
    tz: str = ...,
    start: datetime | date | str | None = ...,
    end: datetime | date | str | None = ...,
    as_of: datetime | date | str | None = ...,
    billable_only: bool = ...,
) -> pl.LazyFrame: ...
def aggregate(
    df: pl.DataFrame | pl.LazyFrame,
    every: str | None = "1d",
    by: str | Sequence[str] = (),
    *,
    tz: str = "UTC",
    start: datetime | date | str | None = None,
    end: datetime | date | str | None = None,
    as_of: datetime | date | str | None = None,
    billable_only: bool = True,
) -> pl.DataFrame | pl.LazyFrame:
    """Split usage across calendar buckets and sum it per (bucket, group).

    Arguments:
        df: a canonical DataFrame or LazyFrame (``usage_start`` and ``quantity`` required;
            ``usage_end``, ``cost``, ``billable``, ``unit``, ``currency`` used when present).
        every: ``30m``, ``1h``, ``6h``, ``1d``, ``1w``, ``1mo``, ``1q``, ``1y`` or ``None`` (no buckets).
        by: group columns; ``unit`` and ``currency`` are always added.
        tz: the IANA time zone whose calendar the buckets follow (default UTC).
        start, end: clip to [start, end); datetimes, dates or ISO text (naive: in ``tz``).
        as_of: the end given to running records (usage_end null).
        billable_only: leave out rows with ``billable`` false (default).

    Returns:
        One row per (bucket, group), sorted: ``bucket_start``, ``bucket_end``, the ``by``
        columns, ``unit``, ``currency``, ``quantity``, ``cost``, ``records``. A DataFrame for a
        DataFrame; for a LazyFrame a LazyFrame that, when collected, reads its input batch by
        batch (streaming; ``un.scan(...)`` included) and holds only the sums: the result is
        the eager one, bit for bit (the sums are exact, so batches do not change them).

    Raises:
        ColumnError: a missing or mistyped column (for a LazyFrame: when ``aggregate`` is called).
        ValueError: a bad ``every``, ``tz`` or time argument.

    Warns:
        RunningRecordsWarning: running records were counted whole in their start bucket
            (for a LazyFrame: when it is collected).

    Example:
        >>> daily = aggregate(df, every="1d", by=["provider", "project_id"])
        >>> lazy_daily = aggregate(scan("exports/"), every="1d", by=["provider"])  # a LazyFrame
    """
    fn = "aggregate"
    lf = _frames.lazy(df, fn)
    schema = lf.collect_schema()
    by = [by] if isinstance(by, str) else list(by)
    _frames.require(schema, ["usage_start", "quantity", *by], fn)
    _frames.zone(tz)
    keys = by + [k for k in ("unit", "currency") if k not in by]
    usage = ["usage_start", "usage_end", "quantity", "cost", "billable"]
    columns = list(dict.fromkeys(c for c in [*usage, *keys] if c in schema))
    bounds = [_frames.micros(t, tz, name) for t, name in ((start, "start"), (end, "end"), (as_of, "as_of"))]

    def run(frames: Iterable[pl.DataFrame]) -> pl.DataFrame:
        sums = _core.Aggregator(
            keys, every=every, tz=tz, start=bounds[0], end=bounds[1], as_of=bounds[2], billable_only=billable_only
        )
        for frame in frames:
            sums.add(*_frames.usage_series(frame, fn), frame.select(_frames.text_or_null(k, schema, fn) for k in keys))
        out, running = sums.finish()
        # Group columns come back as text; give them their own dtype again.
        restore = {k: schema[k] for k in keys if k in schema and schema[k] != pl.String}
        if restore:
            out = out.with_columns(
                (pl.col(k) == "true") if t == pl.Boolean else pl.col(k).cast(t) for k, t in restore.items()
            )
        if running:
            warnings.warn(
                f"{running} running record(s) (usage_end null) were counted whole in the bucket of their start; "
                "pass as_of= to split them up to that time",
                RunningRecordsWarning,
                stacklevel=3,
            )
        return out

    if isinstance(df, pl.DataFrame):
        return run([df.select(columns)])
    # The result's schema, and every column check, from the same code on no rows.
    result_schema = run([pl.DataFrame(schema={c: schema[c] for c in columns})]).schema
    return _lazy.source(result_schema, lambda: iter([run(_lazy.batches(lf.select(columns)))]))

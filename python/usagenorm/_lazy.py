"""LazyFrame in, LazyFrame out: ``aggregate``, ``price`` and ``to_focus`` given a LazyFrame
return one (a Polars IO source) that runs when it is collected, reading its input batch by
batch from Polars' streaming engine. Memory holds a batch (and ``aggregate``'s sums), not the
input."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

import polars as pl
from polars.io.plugins import register_io_source

#: Rows per batch read from the input, and the most rows one batch handed on holds.
BATCH_ROWS = 65_536


def batches(lf: pl.LazyFrame) -> Iterator[pl.DataFrame]:
    """The rows of ``lf`` in batches, streamed by Polars' engine where this Polars can
    (``LazyFrame.collect_batches``, Polars 1.33+); older ones collect it first."""
    stream = getattr(lf, "collect_batches", None)
    if stream is None:
        yield from lf.collect().iter_slices(BATCH_ROWS)
        return
    yield from stream(chunk_size=BATCH_ROWS)


def source(schema: pl.Schema, produce: Callable[[], Iterator[pl.DataFrame]]) -> pl.LazyFrame:
    """A LazyFrame of ``schema`` whose rows ``produce`` yields when it is collected; the
    columns selected, the filters and ``head`` are applied batch by batch."""

    def read(
        with_columns: list[str] | None, predicate: pl.Expr | None, n_rows: int | None, batch_size: int | None
    ) -> Iterator[pl.DataFrame]:
        return handed_on(produce(), with_columns, predicate, n_rows, batch_size)

    return register_io_source(read, schema=schema, **named("usagenorm"))


def mapped(
    lf: pl.LazyFrame, step: Callable[[pl.DataFrame], tuple[pl.DataFrame, int]], done: Callable[[int], None]
) -> pl.LazyFrame:
    """``step`` applied to ``lf`` batch by batch, as a LazyFrame. ``step`` gives a batch's
    result and a count; ``done`` gets the counts' total once, when the query ends (for one
    warning with the total). The schema is ``step``'s on no rows, so a missing or mistyped
    column is an error now, not when the query runs."""
    schema = step(pl.DataFrame(schema=lf.collect_schema()))[0].schema

    def produce() -> Iterator[pl.DataFrame]:
        total = 0
        try:
            for batch in batches(lf):
                out, count = step(batch)
                total += count
                yield out
        finally:
            done(total)

    return source(schema, produce)


def handed_on(
    frames: Iterator[pl.DataFrame],
    with_columns: list[str] | None,
    predicate: pl.Expr | None,
    n_rows: int | None,
    batch_size: int | None,
) -> Iterator[pl.DataFrame]:
    """What an IO source hands Polars of ``frames``: the selected columns, in batches of at
    most ``batch_size`` (else ``BATCH_ROWS``) rows, filtered, and no more than ``n_rows`` rows.
    Once it has them it stops and closes ``frames`` (whose ``finally`` runs then)."""
    left = n_rows
    step = max(batch_size or BATCH_ROWS, 1)
    try:
        for frame in frames:
            if with_columns is not None:
                frame = frame.select(with_columns)
            for offset in range(0, frame.height, step):
                batch = frame.slice(offset, step)
                if predicate is not None:
                    batch = batch.filter(predicate)
                if left is not None:
                    batch = batch.head(left)
                    left -= batch.height
                if batch.height:
                    yield batch
                if left is not None and left <= 0:
                    return
    finally:
        close = getattr(frames, "close", None)
        if close is not None:
            close()


def named(name: str) -> dict[str, Any]:
    """The plan's label (``explain()``) where this Polars has one (1.34+)."""
    return {"explain_name": name} if "explain_name" in inspect.signature(register_io_source).parameters else {}

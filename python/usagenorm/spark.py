"""usagenorm on Spark: the same normalize, aggregate and price on a cluster, with the Rust core
running inside Spark's Python workers on Arrow batches (``mapInArrow`` / ``applyInArrow``, Spark
>= 3.4), and results identical to the single-machine library.

    from usagenorm import spark as uns                  # pip install "usagenorm[spark]"
    out = uns.normalize(spark, "/dbfs/exports/")         # or a list of paths, or a binaryFile DataFrame
    daily = uns.aggregate(out.records, every="1d", by=["project_id"], tz="Europe/Berlin")
    priced = uns.price(out.records, un.RateCard.from_csv("rates.csv"))

How each step is distributed (and what it costs):

- ``normalize``: the driver lists the sources (sorted, as ``usagenorm.normalize`` does) and
  spreads them over partitions; each task runs the core on its files with dedupe off, and
  gives the records, the rejects and the per-source accounting. Sources are paths the
  executors can read (a shared or local file system: ``local[*]``, ``/dbfs/...``), or a
  DataFrame with ``path`` and ``content`` columns (``spark.read.format("binaryFile")``, for
  object stores through the cluster's Hadoop file systems).
- Dedupe across executors follows the single machine's rules (README "Duplicates"): each
  record gets a key (``provider`` and ``record_id``, or its content for records without an id),
  the records are shuffled by that key so every version of a record meets in one task, sorted
  there in source order, and decided as one machine decides. Its cost is one shuffle of the
  records. The accounting (duplicates, superseded, rows) is summed back per source.
- ``aggregate``: ``groupBy(by, unit, currency).applyInArrow``: every row of a group reaches one
  call of ``usagenorm.aggregate``, so its exact sums are the single machine's. A group must fit
  in an executor's memory.
- ``price``: a card without tiers prices each partition on its own (the card travels with the
  task). A tiered card needs the rows of a ladder and period in order: they are brought into
  one partition, in source order, and priced there (one task: correct, not parallel).

The DataFrames returned are lazy; ``normalize`` persists its two stages so that the records,
rejects and accounting are computed once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

import polars as pl

from . import _canonical, _core, _formats, _merge, _sources

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

    from ._pricing import RateCard

__all__ = ["Normalized", "aggregate", "normalize", "price"]

REJECTED_COLUMNS = ["source", "source_index", "line", "provider", "kind", "path", "reason", "raw"]
STATS_COLUMNS = ["source", "provider", "records", "accepted", "rejected", "duplicates", "superseded", "rows"]
CONFLICT_COLUMNS = ["provider", "record_id", "source", "source_index", "revision", "resolution"]


class Normalized(NamedTuple):
    """What ``normalize`` returns: Spark DataFrames of the records (the canonical schema), the
    rejected records, the accounting per source and the conflicts."""

    records: DataFrame
    rejected: DataFrame
    stats: DataFrame
    conflicts: DataFrame


# ---- types ----------------------------------------------------------------------------------


def _spark_type(dtype: pl.DataType) -> Any:
    from pyspark.sql import types as T

    if dtype == pl.String or isinstance(dtype, pl.Categorical | pl.Enum):
        return T.StringType()
    if isinstance(dtype, pl.Datetime):
        return T.TimestampType()
    if isinstance(dtype, pl.Decimal):
        return T.DecimalType(dtype.precision or 38, dtype.scale or 0)
    if dtype == pl.Boolean:
        return T.BooleanType()
    if dtype.is_float():
        return T.DoubleType()
    if dtype.is_integer():
        return T.LongType()
    if isinstance(dtype, pl.Struct):
        return T.StructType([T.StructField(f.name, _spark_type(f.dtype), True) for f in dtype.fields])
    raise TypeError(f"no Spark type for {dtype}")


def _struct(schema: dict[str, pl.DataType]) -> Any:
    from pyspark.sql import types as T

    return T.StructType([T.StructField(name, _spark_type(dtype), True) for name, dtype in schema.items()])


def _arrow_type(dtype: pl.DataType) -> pa.DataType:
    import pyarrow as pa

    if dtype == pl.String or isinstance(dtype, pl.Categorical | pl.Enum):
        return pa.string()
    if isinstance(dtype, pl.Datetime):
        return pa.timestamp("us", tz="UTC")
    if isinstance(dtype, pl.Decimal):
        return pa.decimal128(dtype.precision or 38, dtype.scale or 0)
    if dtype == pl.Boolean:
        return pa.bool_()
    if dtype.is_float():
        return pa.float64()
    if dtype.is_integer():
        return pa.int64()
    if isinstance(dtype, pl.Struct):
        return pa.struct([pa.field(f.name, _arrow_type(f.dtype)) for f in dtype.fields])
    raise TypeError(f"no Arrow type for {dtype}")


def _batches(df: pl.DataFrame, schema: dict[str, pl.DataType]) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa

    full = df.select(
        pl.col(n) if n in df.columns else pl.lit(None, dtype).alias(n) for n, dtype in schema.items()
    ).with_columns(pl.col(pl.UInt64, pl.UInt32).cast(pl.Int64))
    target = pa.schema([pa.field(n, _arrow_type(t)) for n, t in schema.items()])
    table = full.to_arrow(compat_level=pl.CompatLevel.oldest()).cast(target)
    yield from table.to_batches(max_chunksize=65_536)


def _from_arrow(batch: pa.RecordBatch | pa.Table) -> pl.DataFrame:
    out = pl.from_arrow(batch)
    assert isinstance(out, pl.DataFrame)
    return out


def _rejected_schema() -> dict[str, pl.DataType]:
    s = {c: pl.String for c in REJECTED_COLUMNS}
    return s | {"source_index": pl.Int64, "line": pl.Int64}


def _stats_schema() -> dict[str, pl.DataType]:
    return {c: (pl.String if c in ("source", "provider") else pl.Int64) for c in STATS_COLUMNS}


def _conflicts_schema() -> dict[str, pl.DataType]:
    return {c: pl.String for c in CONFLICT_COLUMNS} | {"source_index": pl.Int64, "revision": pl.Int64}


def _stage_schema() -> dict[str, pl.DataType]:
    """One schema for every row a stage gives: ``__kind`` 0 a record (the canonical columns,
    ``__ord`` its source's place in the listing, ``__row`` its row's place in the source, and
    ``__key`` its dedupe key), 1 a rejected record, 2 a source's accounting, 3 a conflict (each
    of the last three in its struct column)."""
    return {
        **_canonical.schema(),
        "__kind": pl.Int64,
        "__ord": pl.Int64,
        "__row": pl.Int64,
        "__key": pl.Int64,
        "__rejected": pl.Struct(_rejected_schema()),
        "__stats": pl.Struct(_stats_schema()),
        "__conflict": pl.Struct(_conflicts_schema()),
    }


def _side(kind: int, name: str, frame: pl.DataFrame, schema: dict[str, pl.DataType], ords: pl.Series) -> pl.DataFrame:
    """Rows of another kind than records: ``frame`` as the struct column ``name``."""
    cast = frame.select(pl.col(c).cast(t) for c, t in schema.items())
    return pl.DataFrame(
        {"__kind": pl.Series([kind] * frame.height, dtype=pl.Int64), "__ord": ords.cast(pl.Int64)}
    ).with_columns(cast.select(pl.struct(pl.all()).alias(name)).to_series())


def _read_stage(provider: str | None, period: str | None) -> Any:
    """The first stage, run on the executors: the core reads each batch of sources."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        schema = _stage_schema()
        for batch in batches:
            t = _from_arrow(batch)
            if t.is_empty():
                continue
            inputs = list(zip(t["path"].to_list(), t["content"].to_list(), strict=True))
            records, rejected, stats, _ = _core.normalize(
                inputs,
                provider=provider,
                errors="collect",
                period=period,
                dedupe=False,
                replace=_formats.replacements(),
                formats=_formats.active(None),
            )
            ords = t["__ord"].cast(pl.Int64)
            by_source = ords.gather(_merge.source_of_rows(stats))
            ord_of = dict(zip(t["path"].to_list(), ords.to_list(), strict=True))
            parts = [
                records.with_columns(
                    pl.lit(0, pl.Int64).alias("__kind"),
                    by_source.alias("__ord"),
                    pl.int_range(pl.len(), dtype=pl.Int64).alias("__row"),
                    _merge.record_keys(records).reinterpret(signed=True).alias("__key"),
                ),
                _side(1, "__rejected", rejected, _rejected_schema(), rejected["source"].replace_strict(ord_of, return_dtype=pl.Int64)),
                _side(2, "__stats", stats, _stats_schema(), ords),
            ]
            yield from _batches(pl.concat(parts, how="diagonal_relaxed"), schema)

    return run


def _dedupe_stage() -> Any:
    """The second stage: one partition holds every version of its keys, in source order; the
    single machine's rules decide (``_merge.decide``), and what they dropped is accounted to
    its source."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        schema = _stage_schema()
        frames = [_from_arrow(b) for b in batches]
        if not frames:
            return
        part = pl.concat(frames).sort("__ord", "source_index", "__row")
        src = part["__ord"].cast(pl.UInt32)
        everything = (
            part.select(*_canonical.schema(), "__ord", "__row", "__key")
            .rename({"__row": "__source_row"})
            .with_columns(src.alias("__part"), src.alias("__src"))
            .with_row_index("__row")
        )
        d = _merge.decide(everything)
        moved = d.drops()
        moves = moved.select(
            pl.lit(None, pl.String).alias("source"),
            pl.lit(None, pl.String).alias("provider"),
            pl.lit(0).alias("records"),
            (-(pl.col("duplicates") + pl.col("superseded"))).alias("accepted"),
            pl.lit(0).alias("rejected"),
            "duplicates",
            "superseded",
            (-pl.col("rows")).alias("rows"),
        )
        conflicts = d.conflicted.select(CONFLICT_COLUMNS)
        parts = [
            d.records.select(*_canonical.schema(), "__ord", pl.col("__source_row").alias("__row"), "__key").with_columns(
                pl.lit(0, pl.Int64).alias("__kind")
            ),
            _side(2, "__stats", moves, _stats_schema(), moved["__src"]),
            _side(3, "__conflict", conflicts, _conflicts_schema(), d.conflicted["__src"]),
        ]
        yield from _batches(pl.concat(parts, how="diagonal_relaxed"), schema)

    return run


def _listing(spark: SparkSession, sources: Any) -> DataFrame:
    """The sources as a DataFrame of (``__ord``, ``path``, ``content``), in listing order."""
    from pyspark.sql import DataFrame as SparkFrame
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if isinstance(sources, SparkFrame):
        if "path" not in sources.columns:
            raise ValueError(
                "a DataFrame of sources needs a path column (and content, as binaryFile gives, "
                f"unless the executors read the paths); it has {', '.join(sources.columns)}"
            )
        content = F.col("content") if "content" in sources.columns else F.lit(None).cast("binary")
        order = F.row_number().over(Window.orderBy("path")) - 1
        return sources.select(order.cast("long").alias("__ord"), "path", content.alias("content"))
    listed = _sources.collect(sources if isinstance(sources, list | tuple) else [sources])
    rows = [(i, name, None if data is None else bytes(data)) for i, (name, data) in enumerate(listed)]
    return spark.createDataFrame(rows, "__ord long, path string, content binary")


def normalize(
    spark: SparkSession,
    sources: Any,
    *,
    provider: str | None = None,
    period: str | None = None,
    dedupe: bool = True,
    partitions: int | None = None,
) -> Normalized:
    """Normalize sources on the cluster; the same records, rejects and accounting as
    ``usagenorm.normalize(sources, errors="collect")`` on one machine.

    Arguments:
        spark: the session.
        sources: a path, folder or glob, or a list of them, that the executors can read (as
            ``usagenorm.normalize`` takes them, listed on the driver in sorted order); or a
            DataFrame with a ``path`` column (read by the executors) and optionally ``content``
            (the bytes), such as
            ``spark.read.format("binaryFile").option("recursiveFileLookup", "true").load(url)``
            for object stores (each source is named by its full URL).
        provider, period, dedupe: as for ``usagenorm.normalize``. The formats are the built-in
            ones and those installed packages provide (``usagenorm.formats`` entry points):
            what every executor has installed.
        partitions: how many tasks read the sources (default: the cluster's parallelism × 4,
            at most one per source); the dedupe shuffle uses as many.

    Returns:
        ``Normalized(records, rejected, stats, conflicts)``, Spark DataFrames: the canonical
        schema (decimal(38, 9) money, UTC timestamps); the rejected records; one row per source
        with ``records == accepted + rejected + duplicates + superseded``; the conflicts.
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    listing = _listing(spark, sources)
    count = listing.count()
    n = partitions or max(1, min(count, spark.sparkContext.defaultParallelism * 4))
    schema = _struct(_stage_schema())
    stage1 = listing.repartition(n).mapInArrow(_read_stage(provider, period), schema).persist(StorageLevel.MEMORY_AND_DISK)
    canonical = list(_canonical.schema())
    records = stage1.filter(F.col("__kind") == 0)
    rejected = stage1.filter(F.col("__kind") == 1).select("__ord", "__rejected.*")
    rejected = rejected.orderBy("__ord", "source_index").drop("__ord")
    stats = stage1.filter(F.col("__kind") == 2).select("__ord", "__stats.*")
    conflicts = spark.createDataFrame([], _struct(_conflicts_schema()))
    if dedupe:
        stage2 = (
            records.repartition(n, "__key")
            .sortWithinPartitions("__ord", "source_index", "__row")
            .mapInArrow(_dedupe_stage(), schema)
            .persist(StorageLevel.MEMORY_AND_DISK)
        )
        records = stage2.filter(F.col("__kind") == 0)
        moves = (
            stage2.filter(F.col("__kind") == 2)
            .select("__ord", "__stats.*")
            .groupBy("__ord")
            .agg(*[F.sum(c).alias(f"__d_{c}") for c in ("accepted", "duplicates", "superseded", "rows")])
        )
        stats = stats.join(moves, "__ord", "left").select(
            "__ord",
            "source",
            "provider",
            "records",
            *[
                (F.col(c) + F.coalesce(F.col(f"__d_{c}"), F.lit(0))).alias(c) if c != "rejected" else F.col(c)
                for c in ("accepted", "rejected", "duplicates", "superseded", "rows")
            ],
        )
        conflicts = stage2.filter(F.col("__kind") == 3).select("__conflict.*")
    return Normalized(
        records.select(canonical),
        rejected,
        stats.orderBy("__ord").drop("__ord"),
        conflicts,
    )


def _polars_schema(spark_schema: Any) -> dict[str, pl.DataType]:
    """A Spark schema as the canonical dtypes where the names are canonical, else by type."""
    from pyspark.sql import types as T

    canonical = _canonical.schema()
    out: dict[str, pl.DataType] = {}
    for f in spark_schema.fields:
        if f.name in canonical:
            out[f.name] = canonical[f.name]
        elif isinstance(f.dataType, T.StringType):
            out[f.name] = pl.String()
        elif isinstance(f.dataType, T.TimestampType):
            out[f.name] = pl.Datetime("us", "UTC")
        elif isinstance(f.dataType, T.DecimalType):
            out[f.name] = pl.Decimal(f.dataType.precision, f.dataType.scale)
        elif isinstance(f.dataType, T.BooleanType):
            out[f.name] = pl.Boolean()
        elif isinstance(f.dataType, T.DoubleType | T.FloatType):
            out[f.name] = pl.Float64()
        elif isinstance(f.dataType, T.IntegralType):
            out[f.name] = pl.Int64()
        else:
            out[f.name] = pl.String()
    return out


def aggregate(
    usage: DataFrame,
    *,
    every: str | None,
    by: list[str] | str = (),  # type: ignore[assignment]
    tz: str = "UTC",
    start: Any = None,
    end: Any = None,
    as_of: Any = None,
    billable_only: bool = True,
) -> DataFrame:
    """``usagenorm.aggregate`` on the cluster, exactly: the rows of each (``by``, unit,
    currency) group reach one call of the single-machine function (``applyInArrow``), so
    its sums are the single machine's to the last digit. Arguments as ``usagenorm.aggregate``."""
    import warnings

    from . import aggregate as one

    keys = [by] if isinstance(by, str) else list(by)
    groups = keys + [k for k in ("unit", "currency") if k not in keys]
    empty = pl.DataFrame(schema=_polars_schema(usage.schema))
    options = {"every": every, "by": keys, "tz": tz, "start": start, "end": end, "as_of": as_of, "billable_only": billable_only}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out_schema = dict(one(empty, **options).schema)

    def run(table: pa.Table) -> pa.Table:
        import pyarrow as pa

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = one(_from_arrow(table), **options)
        target = pa.schema([pa.field(n, _arrow_type(t)) for n, t in out_schema.items()])
        return pa.Table.from_batches(list(_batches(result, out_schema)), schema=target)

    return usage.groupBy(*groups).applyInArrow(run, _struct(out_schema))


def price(usage: DataFrame, rates: RateCard, *, overwrite: bool = False, billable_only: bool = True) -> DataFrame:
    """``usagenorm.price`` on the cluster, exactly. A card without tiers prices each partition
    on its own; a tiered card (rows with ``tier_from``) prices every row in one partition in
    source order, as one machine does (tiers depend on the order of use). Arguments as
    ``usagenorm.price``."""
    import warnings

    from . import price as one

    card = rates.frame
    tiered = "tier_from" in card.columns and card["tier_from"].drop_nulls().str.strip_chars().ne("").any()
    empty = pl.DataFrame(schema=_polars_schema(usage.schema))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out_schema = dict(one(empty, rates, overwrite=overwrite, billable_only=billable_only).schema)

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        frames = (_from_arrow(b) for b in batches)
        if tiered:
            # A tiered card needs the partition whole (there is one); otherwise batch by batch.
            whole = list(frames)
            frames = iter([pl.concat(whole)] if whole else [])
        for frame in frames:
            if frame.is_empty():
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                priced = one(frame, rates, overwrite=overwrite, billable_only=billable_only)
            yield from _batches(priced, out_schema)

    if tiered:
        usage = usage.repartition(1).sortWithinPartitions("source", "source_index")
    return usage.mapInArrow(run, _struct(out_schema))

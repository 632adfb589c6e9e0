"""Canonical tables given back as inputs dedupe together with the records read fresh, by the
rules the core applies to records it reads (README "Duplicates"), so that a rerun over the same
exports gives the same table and adding a day adds only that day:

- a record is all rows of one (source, source_index) within one input (a table, or the
  records read fresh); its content is every canonical column but ``source``, ``source_index``
  and ``revision`` (extra columns a table carries, a priced table's say, are not content);
- the tables come first, in the order given, then the records read fresh: of identical copies
  the first is kept, so a table's rows keep their place and a record read again is a
  ``duplicate`` of its source;
- same provider and ``record_id`` with other content is a conflict: when every version has a
  ``revision`` the highest wins (the later on a tie) and the others are ``superseded``,
  otherwise all are kept (``kept_unresolved``); records without a ``record_id`` are duplicates
  only when their content is identical.

Contents are compared by two independent 64-bit hashes per record, then every dropped copy is
compared with the copy it duplicates value by value, so a hash collision can never drop a record.
"""

from __future__ import annotations

import polars as pl

from . import _canonical

_NOT_CONTENT = ("source", "source_index", "revision")
_RECORD = ["__part", "source", "source_index"]
_KEY = ["provider", "record_id", "__anon"]


def _content() -> list[str]:
    return [c for c in _canonical.schema() if c not in _NOT_CONTENT]


def merge(
    tables: list[tuple[str, pl.DataFrame]],
    fresh: pl.DataFrame,
    stats: pl.DataFrame,
    conflicts: pl.DataFrame,
    dedupe: bool,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The tables' rows, then the fresh records, deduplicated together; the accounting with
    one row per table added (records, accepted, duplicates, superseded, rows) and the fresh
    sources' counts moved by what the merge dropped; the conflicts with the merge's decisions."""
    # Which fresh source (row of `stats`) each fresh row came from: sources are in order and
    # `rows` counts each one's rows out.
    src = pl.int_range(stats.height, dtype=pl.UInt32, eager=True).gather(
        pl.int_range(stats.height, eager=True).repeat_by(stats["rows"]).explode().drop_nulls()
    )
    parts = [f.with_columns(pl.lit(i, pl.UInt32).alias("__part")) for i, (_, f) in enumerate(tables)]
    parts.append(fresh.with_columns(pl.lit(len(tables), pl.UInt32).alias("__part"), src.alias("__src")))
    everything = pl.concat(parts, how="diagonal_relaxed").with_row_index("__row")

    content = _content()
    rows = everything.select(
        "__row",
        *_RECORD,
        "__src",
        pl.struct(content).hash(0x5EED_0001).alias("__h"),
        pl.struct(content).hash(0x5EED_0002).alias("__g"),
    )
    recs = (
        rows.group_by(_RECORD)
        .agg(
            pl.col("__row").min().alias("__first"),
            pl.len().alias("__n"),
            pl.col("__h").sort_by("__row").alias("__h"),
            pl.col("__g").sort_by("__row").alias("__g"),
            pl.col("__src").first(),
        )
        .with_columns(pl.col("__h").hash(1), pl.col("__g").hash(2))
        .sort("__first")
    )
    firsts = everything.select("__row", "provider", "record_id", "revision")
    recs = recs.join(firsts, left_on="__first", right_on="__row", how="left", maintain_order="left")
    version = [*_KEY, "__h", "__g", "__n"]
    if dedupe:
        recs = recs.with_columns(
            # Records without an id are keyed by their content.
            pl.when(pl.col("record_id").is_null()).then(pl.col("__h")).alias("__anon"),
        ).with_columns(
            (pl.int_range(pl.len()).over(version) > 0).alias("__dup"),
            pl.col("__first").first().over(version).alias("__twin"),
        )
        versions = recs.filter(~pl.col("__dup")).with_columns(
            pl.len().over(_KEY).alias("__versions"),
            pl.col("revision").is_not_null().all().over(_KEY).alias("__all_revised"),
            pl.col("__first").sort_by("revision", "__first").last().over(_KEY).alias("__winner"),
        )
        conflicted = versions.filter(pl.col("record_id").is_not_null() & (pl.col("__versions") > 1)).with_columns(
            pl.when(~pl.col("__all_revised"))
            .then(pl.lit("kept_unresolved"))
            .when(pl.col("__first") == pl.col("__winner"))
            .then(pl.lit("kept"))
            .otherwise(pl.lit("superseded"))
            .alias("resolution")
        )
        dups = recs.filter(pl.col("__dup"))
        _check_copies(everything, rows, dups, content)
        superseded = conflicted.filter(pl.col("resolution") == "superseded")
    else:
        dups = superseded = conflicted = recs.clear().with_columns(pl.lit(None, pl.String).alias("resolution"))
    dropped = pl.concat([dups.select("__first", "__n"), superseded.select("__first", "__n")])
    rec_of_row = pl.col("__row").min().over(_RECORD)
    records = (
        everything.filter(~rec_of_row.is_in(dropped["__first"].implode()))
        .drop("__row", "__part", "__src")
        .select(*_canonical.schema(), pl.exclude(*_canonical.schema(), "__row", "__part", "__src"))
    )
    return (
        records,
        _stats(tables, stats, recs, dups, superseded),
        _conflicts(len(tables), conflicts, conflicted),
    )


def _check_copies(everything: pl.DataFrame, rows: pl.DataFrame, dups: pl.DataFrame, content: list[str]) -> None:
    """Every dropped copy equals the copy it duplicates, row by row and value by value."""
    if dups.is_empty():
        return
    placed = everything.select(content).with_columns(
        rows["__row"], rows.select(pl.col("__row").min().over(_RECORD).alias("__rec"))["__rec"]
    )
    placed = placed.with_columns(pl.col("__row").rank("ordinal").over("__rec").alias("__ord"))
    copies = placed.join(dups.select(pl.col("__first").alias("__rec"), "__twin"), on="__rec")
    originals = placed.rename({c: f"{c}__twin" for c in content}).rename({"__rec": "__twin"}).drop("__row")
    paired = copies.join(originals, on=["__twin", "__ord"], how="left")
    same = pl.all_horizontal(pl.col(c).eq_missing(pl.col(f"{c}__twin")) for c in content)
    if paired.height != copies.height or not paired.select(same.all()).item():
        raise RuntimeError("usagenorm: two different records hashed alike while deduplicating; please report this")


def _stats(
    tables: list[tuple[str, pl.DataFrame]],
    stats: pl.DataFrame,
    recs: pl.DataFrame,
    dups: pl.DataFrame,
    superseded: pl.DataFrame,
) -> pl.DataFrame:
    """The fresh sources' accounting, moved by the merge's drops, then one row per table."""
    fresh = len(tables)

    drops = pl.concat(
        [
            dups.select("__part", "__src", "__n", pl.lit(1, pl.UInt64).alias("__dups"), pl.lit(0, pl.UInt64).alias("__sup")),
            superseded.select(
                "__part", "__src", "__n", pl.lit(0, pl.UInt64).alias("__dups"), pl.lit(1, pl.UInt64).alias("__sup")
            ),
        ]
    )
    fresh_drops = drops.filter(pl.col("__part") == fresh)
    moved = fresh_drops.group_by("__src").agg(
        pl.col("__dups").sum(), pl.col("__sup").sum(), pl.col("__n").sum().cast(pl.UInt64).alias("__rows")
    )
    out = (
        stats.with_row_index("__src")
        .with_columns(pl.col("__src").cast(pl.UInt32))
        .join(moved, on="__src", how="left")
        .with_columns(pl.col("__dups", "__sup", "__rows").fill_null(0))
        .with_columns(
            (pl.col("accepted") - pl.col("__dups") - pl.col("__sup")).alias("accepted"),
            (pl.col("duplicates") + pl.col("__dups")).alias("duplicates"),
            (pl.col("superseded") + pl.col("__sup")).alias("superseded"),
            (pl.col("rows") - pl.col("__rows")).alias("rows"),
        )
        .select(stats.columns)
    )
    table_rows = []
    for i, (path, _) in enumerate(tables):
        mine = recs.filter(pl.col("__part") == i)
        gone = drops.filter(pl.col("__part") == i)
        n_dups, n_sup = int(gone["__dups"].sum()), int(gone["__sup"].sum())
        table_rows.append(
            {
                "source": path,
                "provider": None,
                "records": mine.height,
                "accepted": mine.height - n_dups - n_sup,
                "rejected": 0,
                "duplicates": n_dups,
                "superseded": n_sup,
                "rows": int(mine["__n"].sum()) - int(gone["__n"].sum()),
            }
        )
    if not table_rows:
        return out
    return pl.concat([pl.DataFrame(table_rows, schema=stats.schema), out])


def _conflicts(fresh: int, conflicts: pl.DataFrame, conflicted: pl.DataFrame) -> pl.DataFrame:
    """The merge's conflicts, and the core's among the fresh records that the merge did not
    decide again (versions the core superseded before the merge saw them)."""
    found = conflicted.select(conflicts.columns)
    if found.is_empty():
        return conflicts
    decided = conflicted.filter(pl.col("__part") == fresh).select("provider", "record_id", "source", "source_index")
    earlier = conflicts.join(decided, on=["provider", "record_id", "source", "source_index"], how="anti", nulls_equal=True)
    return pl.concat([found, earlier])

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

from typing import NamedTuple

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
    src = source_of_rows(stats)
    parts = [f.with_columns(pl.lit(i, pl.UInt32).alias("__part")) for i, (_, f) in enumerate(tables)]
    parts.append(fresh.with_columns(pl.lit(len(tables), pl.UInt32).alias("__part"), src.alias("__src")))
    everything = pl.concat(parts, how="diagonal_relaxed").with_row_index("__row")

    decided = decide(everything, dedupe)
    return (
        decided.records,
        _stats(tables, stats, decided),
        _conflicts(len(tables), conflicts, decided.conflicted),
    )


def source_of_rows(stats: pl.DataFrame) -> pl.Series:
    """Which source (row of the core's ``stats``) each row of its records came from: the
    sources come in order, and ``rows`` counts each one's rows out."""
    return pl.int_range(stats.height, eager=True).repeat_by(stats["rows"]).explode().drop_nulls().cast(pl.UInt32)


class Decided(NamedTuple):
    """What ``decide`` found: the rows kept, and per record (``__rec``, its first row) what
    happened, with its input (``__part``), source (``__src``) and row count (``__n``)."""

    records: pl.DataFrame
    recs: pl.DataFrame
    dups: pl.DataFrame
    superseded: pl.DataFrame
    conflicted: pl.DataFrame

    def drops(self) -> pl.DataFrame:
        """Per input and source (``__part``, ``__src``): the records dropped as duplicates
        and as superseded, and their rows."""
        one, none = pl.lit(1, pl.Int64), pl.lit(0, pl.Int64)
        tagged = pl.concat(
            [
                self.dups.select("__part", "__src", "__n", one.alias("duplicates"), none.alias("superseded")),
                self.superseded.select("__part", "__src", "__n", none.alias("duplicates"), one.alias("superseded")),
            ]
        )
        return tagged.group_by("__part", "__src").agg(
            pl.col("duplicates", "superseded").sum(), pl.col("__n").sum().cast(pl.Int64).alias("rows")
        )


def decide(everything: pl.DataFrame, dedupe: bool = True) -> Decided:
    """The dedupe rules on ``everything``: canonical rows in output order with ``__row`` (their
    position), ``__part`` (the input: records of different inputs never merge into one) and
    ``__src`` (the source to account a drop to). The Spark stage uses it too, per key."""
    content = _content()
    # Without dedupe only the records are needed, not their contents' hashes.
    rows, recs = _records(everything, content if dedupe else [])
    version = [*_KEY, "__h", "__g", "__n"]
    if dedupe:
        recs = recs.with_columns(
            # Records without an id are keyed by their content.
            pl.when(pl.col("record_id").is_null()).then(pl.col("__h")).alias("__anon"),
        ).with_columns(
            (pl.int_range(pl.len()).over(version) > 0).alias("__dup"),
            pl.col("__rec").first().over(version).alias("__twin"),
        )
        versions = recs.filter(~pl.col("__dup")).with_columns(pl.len().over(_KEY).alias("__versions"))
        conflicted = versions.filter(pl.col("record_id").is_not_null() & (pl.col("__versions") > 1)).with_columns(
            resolution(_KEY, "__rec")
        )
        dups = recs.filter(pl.col("__dup"))
        _check_copies(everything.select(content), rows, dups.select("__rec", "__twin"))
        superseded = conflicted.filter(pl.col("resolution") == "superseded")
    else:
        dups = superseded = conflicted = recs.clear().with_columns(pl.lit(None, pl.String).alias("resolution"))
    dropped = pl.concat([dups["__rec"], superseded["__rec"]])
    internal = ("__row", "__part", "__src")
    records = everything.filter(~rows["__rec"].is_in(dropped.implode())).select(
        *_canonical.schema(), pl.exclude(*_canonical.schema(), *internal)
    )
    return Decided(records, recs, dups, superseded, conflicted)


def resolution(key: list[str], order: str) -> pl.Expr:
    """The revision rule, over the versions of records with an id that has several (``key``
    groups them, ``order`` is their place in output order): where every version has a revision
    the highest is ``kept`` (the later on a tie) and the others ``superseded``; otherwise all
    are ``kept_unresolved``."""
    winner = pl.col(order).sort_by("revision", order).last().over(key)
    return (
        pl.when(~pl.col("revision").is_not_null().all().over(key))
        .then(pl.lit("kept_unresolved"))
        .when(pl.col(order) == winner)
        .then(pl.lit("kept"))
        .otherwise(pl.lit("superseded"))
        .alias("resolution")
    )


def record_keys(frame: pl.DataFrame) -> pl.Series:
    """Each row's dedupe key as a 64-bit hash, the same on every row of a record: of
    ``(provider, record_id)``, or of the record's content when it has no id. Versions of one
    record share a key wherever they were read, so a shuffle by it brings them together."""
    everything = frame.select(*_canonical.schema()).with_columns(
        pl.lit(0, pl.UInt32).alias("__part"), pl.lit(0, pl.UInt32).alias("__src")
    ).with_row_index("__row")
    rows, recs = _records(everything, _content())
    by_id = pl.struct(pl.col("provider").hash(11), pl.col("record_id").hash(12)).hash(13)
    keys = recs.select("__rec", pl.when(pl.col("record_id").is_null()).then(pl.col("__h")).otherwise(by_id).alias("key"))
    return rows.join(keys, on="__rec", how="left", maintain_order="left")["key"]


def _records(everything: pl.DataFrame, content: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Each row's record (``__rec``: the record's first row) and hashes; one row per record
    with its input, fresh source, row count and content hashes (over its rows in order)."""
    first = pl.any_horizontal(pl.col(c).ne_missing(pl.col(c).shift()) for c in _RECORD).fill_null(True)
    rows = everything.select(
        "__row",
        "__part",
        "__src",
        first.alias("__first"),
        _hash(content, 0).alias("__h"),
        _hash(content, 1).alias("__g"),
    )
    named = ["provider", "record_id", "revision", "source", "source_index"]
    starts = pl.concat([rows, everything.select(named)], how="horizontal").filter("__first")
    contiguous = starts.select(pl.struct(_RECORD).is_unique().all()).item()
    if contiguous:
        # The usual case (the core and this function write records' rows together): a record
        # is a run of rows, found without grouping.
        rows = rows.with_columns(pl.when("__first").then("__row").forward_fill().alias("__rec"))
        rows = rows.with_columns((pl.col("__row") - pl.col("__rec")).alias("__ord"))
        recs = starts.select(
            pl.col("__row").alias("__rec"),
            "__part",
            "__src",
            (pl.col("__row").shift(-1).fill_null(everything.height) - pl.col("__row")).alias("__n"),
            "__h",
            "__g",
            *named,
        )
    else:
        rows = rows.with_columns(everything.select(pl.col("__row").min().over(_RECORD))["__row"].alias("__rec"))
        rows = rows.with_columns(pl.int_range(pl.len(), dtype=pl.UInt32).over("__rec").alias("__ord"))
        recs = rows.group_by("__rec").agg("__part", "__src", pl.len().alias("__n")).sort("__rec")
        recs = recs.with_columns(pl.col("__part", "__src").list.first(), pl.lit(0, pl.UInt64).alias("__h"))
        recs = recs.with_columns(pl.col("__h").alias("__g"))
        firsts = everything.select("__row", *named)
        recs = recs.join(firsts, left_on="__rec", right_on="__row", how="left", maintain_order="left")
    # Records of several rows: the hashes of their rows, in order.
    multi = recs.filter(pl.col("__n") > 1)["__rec"]
    if contiguous and multi.is_empty():
        return rows.select("__row", "__rec", "__ord"), recs
    several = (
        rows.filter(pl.col("__rec").is_in(multi.implode()) if contiguous else pl.lit(True))
        .group_by("__rec")
        .agg(pl.col("__h").sort_by("__row"), pl.col("__g").sort_by("__row"))
        .with_columns(pl.col("__h").hash(1), pl.col("__g").hash(2))
    )
    recs = recs.update(several, on="__rec")
    return rows.select("__row", "__rec", "__ord"), recs


def _hash(columns: list[str], seed: int) -> pl.Expr:
    """A 64-bit hash of a row's values: each column's hash, folded FNV-style (wrapping u64)."""
    out = pl.lit(0xCBF2_9CE4_8422_2325 ^ seed, pl.UInt64)
    for i, c in enumerate(columns):
        out = (out ^ pl.col(c).hash(seed * 1_000 + i)) * pl.lit(0x0000_0100_0000_01B3, pl.UInt64)
    return out


def _check_copies(content: pl.DataFrame, rows: pl.DataFrame, dups: pl.DataFrame) -> None:
    """Every dropped copy equals the record it duplicates, row by row and value by value.
    ``rows`` gives each row its record (``__rec``, the record's first row) and its place in
    it (``__ord``); ``dups`` each dropped record its original (``__twin``)."""
    if dups.is_empty():
        return
    copies = rows.join(dups, on="__rec")
    originals = rows.select(pl.col("__rec").alias("__twin"), "__ord", pl.col("__row").alias("__twin_row"))
    paired = copies.join(originals, on=["__twin", "__ord"], how="left")
    if paired["__twin_row"].null_count():
        raise RuntimeError("usagenorm: two different records hashed alike while deduplicating; please report this")
    paired = paired.sort("__row")
    if paired["__twin_row"].is_sorted() and paired["__twin_row"].n_unique() == paired.height:
        # The usual case (a rerun, an increment): the copies come in their originals' order,
        # so two filters line them up (a gather of string views costs far more).
        a = content.filter(pl.int_range(pl.len(), dtype=pl.UInt32).is_in(paired["__row"].implode()))
        b = content.filter(pl.int_range(pl.len(), dtype=pl.UInt32).is_in(paired["__twin_row"].implode()))
    else:
        a, b = content[paired["__row"]], content[paired["__twin_row"]]
    if not all(a[c].eq_missing(b[c]).all() for c in content.columns):
        raise RuntimeError("usagenorm: two different records hashed alike while deduplicating; please report this")


def _stats(tables: list[tuple[str, pl.DataFrame]], stats: pl.DataFrame, decided: Decided) -> pl.DataFrame:
    """The fresh sources' accounting, moved by the merge's drops, then one row per table."""
    drops = decided.drops()
    out = moved(stats, drops.filter(pl.col("__part") == len(tables)).drop("__part"))
    table_rows = []
    for i, (path, _) in enumerate(tables):
        mine = decided.recs.filter(pl.col("__part") == i)
        gone = drops.filter(pl.col("__part") == i)
        n_dups, n_sup = int(gone["duplicates"].sum()), int(gone["superseded"].sum())
        table_rows.append(
            {
                "source": path,
                "provider": None,
                "records": mine.height,
                "accepted": mine.height - n_dups - n_sup,
                "rejected": 0,
                "duplicates": n_dups,
                "superseded": n_sup,
                "rows": int(mine["__n"].sum()) - int(gone["rows"].sum()),
            }
        )
    if not table_rows:
        return out
    return pl.concat([pl.DataFrame(table_rows, schema=stats.schema), out])


def moved(stats: pl.DataFrame, drops: pl.DataFrame) -> pl.DataFrame:
    """``stats`` (the core's: one row per source, in order) with what dedupe dropped from each
    source (``drops``: per ``__src``, the source's row number, duplicates, superseded and rows)
    moved out of its accepted records and rows."""
    return (
        stats.with_row_index("__src")
        .with_columns(pl.col("__src").cast(pl.UInt32))
        .join(drops.rename({c: f"__{c}" for c in ("duplicates", "superseded", "rows")}), on="__src", how="left")
        .with_columns(pl.col("__duplicates", "__superseded", "__rows").fill_null(0).cast(pl.UInt64))
        .with_columns(
            (pl.col("accepted") - pl.col("__duplicates") - pl.col("__superseded")).alias("accepted"),
            (pl.col("duplicates") + pl.col("__duplicates")).alias("duplicates"),
            (pl.col("superseded") + pl.col("__superseded")).alias("superseded"),
            (pl.col("rows") - pl.col("__rows")).alias("rows"),
        )
        .select(stats.columns)
    )


def _conflicts(fresh: int, conflicts: pl.DataFrame, conflicted: pl.DataFrame) -> pl.DataFrame:
    """The merge's conflicts, and the core's among the fresh records that the merge did not
    decide again (versions the core superseded before the merge saw them)."""
    found = conflicted.select(conflicts.columns)
    if found.is_empty():
        return conflicts
    decided = conflicted.filter(pl.col("__part") == fresh).select("provider", "record_id", "source", "source_index")
    earlier = conflicts.join(decided, on=["provider", "record_id", "source", "source_index"], how="anti", nulls_equal=True)
    return pl.concat([found, earlier])

"""Dedupe in a stream: ``scan`` with ``dedupe=True`` over sources read in groups gives the eager
call's table, rejects, statistics and conflicts (README "Duplicates"), holding one group's
records and a digest per distinct record version, not every record.

1. Every group is read with dedupe off and each record reduced to its digest: two independent
   64-bit hashes of its key (provider and ``record_id``) and of its content (from ``_merge``'s
   row hashes), its row count, revision, source and place. Digests of identical copies fold
   into the first one (counted as duplicates of their source) whenever the digests pending
   reach a quarter of those kept, so the state is bounded by the number of distinct record
   versions (72 bytes each, held in parts by key; see BENCHMARKS.md) plus those pending. The
   provider and id are kept only for keys with several versions, for the conflicts report.
2. After the last group the revision rule runs on the versions left: the superseded records and
   the conflicts are known, so the statistics are final, and what remains is the places kept.
3. Every group is read again and the records at the kept places are handed on, in order.

What it costs: the sources are read and parsed twice, and keys and copies are matched by 128
bits of hash; a single call compares them value by value (the values of a record read in
another group are gone by then). A source that reads differently the second time (changed
between the passes) is an error, not a wrong table.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import polars as pl

from . import _core, _merge

#: A record's key: two independent 64-bit hashes of (provider, record_id), or for a record
#: without an id its content's (then ``__id`` is false).
_KEY = ["__id", "__k", "__l"]
#: A record's version: its key, content and row count.
_VERSION = [*_KEY, "__h", "__g", "__n"]
_NAMES = ["provider", "record_id"]
#: Digests pending are folded when there are at least this many (or a quarter of those kept).
FOLD_ROWS = 1 << 20
#: The parts the versions kept are held in, by key.
PARTS = 16


class Plan(NamedTuple):
    """What the first pass decided: per group the first rows (``__rec``) of the records kept and
    how many records and rows it read; the rejects, statistics and conflicts of the whole scan."""

    kept: dict[int, pl.Series]
    sizes: list[tuple[int, int]]
    rejected: pl.DataFrame
    stats: pl.DataFrame
    conflicts: pl.DataFrame


def _first_rows(found: pl.DataFrame, stats: pl.DataFrame) -> pl.Series:
    """Whether each row of what the core read is its record's first: the core writes a record's
    rows together, so a record starts where ``source_index`` changes or a source begins (its
    statistics count its rows, in order)."""
    index = found["source_index"]
    first = index.ne_missing(index.shift(1))
    starts = stats["rows"].cum_sum().shift(1, fill_value=0)
    starts = starts.filter((stats["rows"] > 0) & (starts < found.height))
    return first.scatter(starts, True) if starts.len() else first


def _record_of_rows(first: pl.Series) -> pl.Expr:
    """Each row's record: the index of its first row."""
    return pl.when(first).then(pl.int_range(pl.len(), dtype=pl.UInt32)).forward_fill()


def _digests(found: pl.DataFrame, stats: pl.DataFrame, group: int, first_source: int) -> pl.DataFrame:
    """One row per record of a group: its place (``__pos``: the group in the high half, its
    first row in the low half, so places sort in output order), source (numbered across the
    scan), row count, content hashes, key, revision, index in its source and the fingerprint of
    its version; and its provider and id, which the state drops once it knows which keys have
    several versions.

    The content hashes start from ``_merge``'s two independent row hashes: a record's is the
    (wrapping) sum of its rows', each mixed with the row's place in the record, so the order of
    the rows counts."""
    first = _first_rows(found, stats)
    content = _merge._content()
    rows = found.select(
        _merge._hash(content, 0).alias("__h"),
        _merge._hash(content, 1).alias("__g"),
        _record_of_rows(first).alias("__rec"),
    )
    recs = found.select("provider", "record_id", "revision", "source_index").with_row_index("__rec").filter(first)
    ends = recs["__rec"].shift(-1, fill_value=found.height)
    recs = recs.with_columns((ends - recs["__rec"]).alias("__n"))
    # Every record the same way, whatever else its group holds (a group's records may all be
    # of one row, or not: one function of the record's rows, either way).
    place = pl.int_range(pl.len(), dtype=pl.UInt32) - pl.col("__rec")
    summed = rows.select(
        pl.struct("__h", place.alias("__o")).hash(31).cum_sum().alias("__h"),
        pl.struct("__g", place.alias("__o")).hash(32).cum_sum().alias("__g"),
    )
    for c in ("__h", "__g"):
        # The running sum with a zero before it: a record's sum is its end's minus its start's.
        running = pl.concat([pl.Series([0], dtype=pl.UInt64), summed[c]])
        recs = recs.with_columns((running.gather(ends) - running.gather(recs["__rec"])).alias(c))
    # The source of each record, numbered across the scan: the last source starting at or
    # before its first row (a source without rows starts where the next one does).
    starts = stats["rows"].cum_sum().shift(1, fill_value=0)
    src = starts.search_sorted(recs["__rec"].cast(starts.dtype), side="right").cast(pl.UInt32) - 1 + first_source
    has_id = pl.col("record_id").is_not_null()
    return recs.select(
        (pl.col("__rec").cast(pl.UInt64) + (group << 32)).alias("__pos"),
        src.alias("__src"),
        pl.col("__n").cast(pl.UInt32),
        "__h",
        "__g",
        has_id.alias("__id"),
        pl.when(has_id).then(pl.struct(_NAMES).hash(21)).otherwise("__h").alias("__k"),
        pl.when(has_id).then(pl.struct(_NAMES).hash(22)).otherwise("__g").alias("__l"),
        "revision",
        "source_index",
        *_NAMES,
    ).with_columns(pl.struct(_VERSION).hash(23).alias("__v"))


def _first_versions(state: pl.DataFrame) -> pl.Series:
    """Whether each digest is the first of its version: found by its version's 64-bit
    fingerprint (``__v``), then every later copy checked against its first, field by field (on a mismatch,
    two versions sharing a fingerprint, the versions are compared whole)."""
    first = state["__v"].is_first_distinct()
    if first.all():
        return first
    with_v = state.select(*_VERSION, "__v")
    later = with_v.filter(~first)
    firsts = with_v.filter(first).join(later.select("__v").unique(), on="__v", how="semi")
    paired = later.join(firsts, on="__v", how="left", suffix="_first")
    if all(paired[c].eq_missing(paired[f"{c}_first"]).all() for c in _VERSION):
        return first
    return state.select(pl.struct(_VERSION).is_first_distinct()).to_series()


class _Versions:
    """The distinct record versions seen so far (digests without names), in ``PARTS`` parts by
    key so that folding touches one part's memory at a time; the digests pending (with names);
    the names of keys with several versions; and per source what folding dropped."""

    def __init__(self) -> None:
        self.parts: list[pl.DataFrame | None] = [None] * PARTS
        self.kept = 0
        self.pending: list[pl.DataFrame] = []
        self.waiting = 0
        self.names: list[pl.DataFrame] = []
        self.dropped: list[pl.DataFrame] = []

    def add(self, digests: pl.DataFrame) -> None:
        """Takes a group's digests; folds when those pending reach a quarter of those kept (so
        the work of folding stays proportional to the records read) or ``FOLD_ROWS``."""
        self.pending.append(digests)
        self.waiting += digests.height
        if self.waiting >= max(FOLD_ROWS, self.kept // 4):
            self.fold()

    def fold(self) -> None:
        """Later copies of a version removed (added to ``dropped``: per source, duplicates and
        rows); the provider and id of every key that now has several versions added to
        ``names`` (one of its versions is pending: a key seen before had only one), then the
        pending digests' names dropped."""
        if not self.pending:
            return
        fresh = pl.concat(self.pending)
        self.pending, self.waiting = [], 0
        part = (pl.col("__k") % PARTS).alias("__part")
        by_part = fresh.with_columns(part).partition_by("__part", as_dict=True, include_key=False)
        del fresh
        for (p,), new in by_part.items():
            old = self.parts[p]
            state = new.drop(_NAMES) if old is None else pl.concat([old, new.drop(_NAMES)], rechunk=False)
            first = _first_versions(state)
            if not first.all():
                self.dropped.append(
                    state.filter(~first)
                    .group_by("__src")
                    .agg(
                        pl.len().cast(pl.UInt64).alias("duplicates"),
                        pl.lit(0, pl.UInt64).alias("superseded"),
                        pl.col("__n").sum().cast(pl.UInt64).alias("rows"),
                    )
                )
                state = state.filter(first)
            if state.n_chunks() > 8:
                state = state.rechunk()
            # Only keys of the new digests can have become repeated.
            repeated = _repeated(state.filter(pl.col("__k").is_in(new["__k"].implode())))
            if not repeated.is_empty():
                keys = repeated.select("__k", "__l").unique()
                named = (
                    new.join(keys, on=["__k", "__l"], how="semi").select("__k", "__l", *_NAMES).unique(["__k", "__l"])
                )
                # Copied out: the strings would otherwise hold their group's whole string buffers.
                self.names.append(named.with_columns(pl.Series(c, named[c].to_list(), pl.String) for c in _NAMES))
            self.parts[int(p)] = state
        self.kept = sum(0 if p is None else p.height for p in self.parts)

    def repeated(self) -> pl.DataFrame:
        """The versions of keys with several versions, with their provider and id."""
        self.fold()
        found = [_repeated(p) for p in self.parts if p is not None]
        names = pl.concat(self.names).unique(["__k", "__l"]) if self.names else _NO_NAMES
        both = pl.concat(found) if found else _digests(nothing()[0], nothing()[2], 0, 0).drop(_NAMES)
        return both.join(names, on=["__k", "__l"], how="left", maintain_order="left")

    def places(self) -> pl.Series:
        """The places of every version kept."""
        self.fold()
        return pl.concat([p["__pos"] for p in self.parts if p is not None] or [pl.Series("__pos", [], pl.UInt64)])


def _repeated(state: pl.DataFrame) -> pl.DataFrame:
    """The versions of records with an id that has several versions."""
    # A first cut by one hash (copying only the few candidates), then the whole key.
    candidates = state.filter(pl.col("__id") & pl.col("__k").is_duplicated())
    return candidates.filter(pl.struct(_KEY).is_duplicated())


def plan(groups: Iterable[tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]]) -> Plan:
    """The first pass over ``groups``: what the core read of each group with dedupe off and
    tags written (records, rejects, statistics, no conflicts), in order."""
    seen = _Versions()
    sizes: list[tuple[int, int]] = []
    rejected: list[pl.DataFrame] = []
    stats: list[pl.DataFrame] = []
    first_source = 0
    for group, (found, rej, st, _) in enumerate(groups):
        digests = _digests(found, st, group, first_source)
        del found
        sizes.append((digests.height, int(st["rows"].sum())))
        rejected.append(rej)
        stats.append(st)
        first_source += st.height
        seen.add(digests)
        del digests
    all_stats = pl.concat(stats) if stats else nothing()[2]
    conflicted = (
        seen.repeated()
        .with_columns(_merge.resolution(_KEY, "__pos"), pl.col("__pos").min().over(_KEY).alias("__first"))
        .sort("__first", "__pos")
    )
    superseded = conflicted.filter(pl.col("resolution") == "superseded")
    dropped = [
        *seen.dropped,
        superseded.group_by("__src").agg(
            pl.lit(0, pl.UInt64).alias("duplicates"),
            pl.len().cast(pl.UInt64).alias("superseded"),
            pl.col("__n").sum().cast(pl.UInt64).alias("rows"),
        ),
    ]
    places = seen.places()
    del seen
    places = places.filter(~places.is_in(superseded["__pos"].implode()))
    by_group = pl.DataFrame({"group": places // (1 << 32), "rec": (places % (1 << 32)).cast(pl.UInt32)})
    return Plan(
        {int(g[0]): part["rec"] for g, part in by_group.group_by("group")},
        sizes,
        pl.concat(rejected) if rejected else nothing()[1],
        _merge.moved(
            all_stats, pl.concat(dropped).group_by("__src").agg(pl.col("duplicates", "superseded", "rows").sum())
        ),
        conflicted.select(
            *_NAMES,
            all_stats["source"].gather(conflicted["__src"]).alias("source"),
            "source_index",
            "revision",
            "resolution",
        ),
    )


_NO_NAMES = pl.DataFrame(schema={"__k": pl.UInt64, "__l": pl.UInt64, "provider": pl.String, "record_id": pl.String})


def nothing() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """What the core gives for no sources: empty records, rejects, statistics and conflicts."""
    return _core.normalize([], errors="collect")


def kept(
    read: tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame], decided: Plan, group: int, name: str
) -> pl.DataFrame:
    """The second pass: the records of group ``group``, read again with dedupe off (what the
    core gives: records, rejects, statistics, conflicts), that the plan keeps. ``name`` (the
    group's first source) names a group that no longer reads as it did."""
    found, _, stats, _ = read
    first = _first_rows(found, stats)
    records = int(first.sum())
    if (records, found.height) != decided.sizes[group]:
        was, rows = decided.sizes[group]
        raise RuntimeError(
            f"{name}: the sources read differently in the second pass of a deduplicating scan "
            f"({records} records in {found.height} rows, first {was} in {rows}): did they change "
            "while the scan ran?"
        )
    keep = decided.kept.get(group)
    if keep is None:
        return found.clear()
    if keep.len() == records:
        return found
    return found.filter(_record_of_rows(first).is_in(keep.implode()))

"""Dedupe in a stream: ``scan`` with ``dedupe=True`` over sources read in groups gives the eager
call's table, rejects, statistics and conflicts (README "Duplicates"), holding one group's
records and a digest per distinct record version, not every record.

1. Every group is read with dedupe off and the core reduces each record to its digest
   (``dedupe::record_digests``; no frame of rows is built, and each of the core's own groups is
   digested as soon as it is read): a 128-bit hash (xxh3) of its key (provider and
   ``record_id``; for a record without an id, of its content) as two 64-bit halves; 64 bits of
   the same hash of its content (every content column of its rows, in order), which only has to
   tell apart the versions of one key; its row count, revision and place (its source is found
   from its place). Digests of identical copies fold into the first one (counted as duplicates
   of their source) whenever the digests pending reach a quarter of those kept, so the state is
   bounded by the number of distinct record versions (44 bytes each, held in parts by key; see
   BENCHMARKS.md) plus those pending.
2. After the last group the revision rule runs on the versions left: the superseded records and
   the conflicts are known, so the statistics are final, and what remains is the places kept.
3. Every group is read again and the records at the kept places are handed on, in order. The
   provider, id and index of the conflicting versions are taken from this pass for the
   conflicts report (groups a query stopped before are read for them when the scan ends).

What it costs: the sources are read and parsed twice, and keys and copies are matched by 128
bits of hash; a single call compares them value by value (the values of a record read in
another group are gone by then). A source that reads differently the second time (changed
between the passes) is an error, not a wrong table.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import NamedTuple

import polars as pl

from . import _canonical, _core, _merge

#: A record's key: two independent 64-bit hashes of (provider, record_id), or for a record
#: without an id its content's (then ``__id`` is false).
_KEY = ["__id", "__k", "__l"]
#: A record's version: its key, content and row count.
_VERSION = [*_KEY, "__h", "__n"]
#: What the second pass gives of the versions in the conflicts report.
#: The columns that name a version in the conflicts report (and ``source_index`` places a row).
NAMES = ["provider", "record_id", "source_index"]
#: Digests pending are folded when there are at least this many (or a quarter of those kept).
FOLD_ROWS = 1 << 20
#: The parts the versions kept are held in, by key.
PARTS = 16


class Plan(NamedTuple):
    """What the first pass decided: per group the first rows (``__rec``) of the records kept and
    how many records and rows it read; the rejects and statistics of the whole scan; its
    conflicts (by place, ``__pos``, without the names the second pass gives) and per group the
    first rows of the versions in them."""

    kept: dict[int, pl.Series]
    sizes: list[tuple[int, int]]
    rejected: pl.DataFrame
    stats: pl.DataFrame
    conflicts: pl.DataFrame
    wanted: dict[int, pl.Series]


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


def _placed(digests: pl.DataFrame, group: int) -> pl.DataFrame:
    """A group's record digests as the core gives them (``_core.normalize(digests=True)``: per
    record its first row, row count, content and key as two 64-bit halves of a 128-bit hash each,
    revision), each placed in the scan (``__pos``: the group in the high half, its first row in
    the low half, so places sort in output order). A record's digest is a function of its own
    rows, in order, whatever else its group holds."""
    return digests.select((pl.col("__rec") + (group << 32)).alias("__pos"), pl.exclude("__rec"))


def _starts(stats: pl.DataFrame, group: int) -> pl.Series:
    """The place where each source of a group starts (a source without rows starts where the
    next one does), in the places' terms: so the source of a record is the last one starting
    at or before its place."""
    return (stats["rows"].cum_sum().shift(1, fill_value=0) + (group << 32)).cast(pl.UInt64)


#: A version's 64-bit fingerprint: its content hash mixed with the high half of its key hash.
#: Arithmetic, so cheap to compute at each fold; it only finds candidates, each checked field
#: by field.
_FINGERPRINT = pl.col("__h").xor(pl.col("__l") * 0x9E3779B97F4A7C15)


def _first_versions(state: pl.DataFrame, fingerprint: pl.Series | None = None, known: int = 0) -> pl.Series:
    """Whether each digest is the first of its version: found by its version's 64-bit
    fingerprint (``_FINGERPRINT`` unless given), then every later copy checked against its
    first, field by field (on a mismatch, two versions sharing a fingerprint, the versions are
    compared whole). The first ``known`` digests are distinct versions (those an earlier fold
    kept): only the others are looked up among them."""
    if fingerprint is None:
        fingerprint = state.select(_FINGERPRINT).to_series()
    if known:
        old, new = fingerprint.head(known), fingerprint.slice(known)
        fresh = new.is_first_distinct() & ~new.is_in(old.implode())
        first = pl.concat([pl.repeat(True, known, dtype=pl.Boolean, eager=True), fresh])
    else:
        first = fingerprint.is_first_distinct()
    if first.all():
        return first
    with_v = state.select(*_VERSION).with_columns(fingerprint.alias("__v"))
    later = with_v.filter(~first)
    firsts = with_v.filter(first).join(later.select("__v").unique(), on="__v", how="semi")
    paired = later.join(firsts, on="__v", how="left", suffix="_first")
    if all(paired[c].eq_missing(paired[f"{c}_first"]).all() for c in _VERSION):
        return first
    return state.select(pl.struct(_VERSION).is_first_distinct()).to_series()


class _Versions:
    """The distinct record versions seen so far, in ``PARTS`` parts by key, each folded on its
    own so that folding touches one part's memory at a time; per part the digests pending;
    where each source starts (by place); and per source what folding dropped."""

    def __init__(self) -> None:
        self.parts: list[pl.DataFrame | None] = [None] * PARTS
        self.pending: list[list[pl.DataFrame]] = [[] for _ in range(PARTS)]
        self.waiting = [0] * PARTS
        self.starts: list[pl.Series] = []
        self.dropped: list[pl.DataFrame] = []

    def add(self, digests: pl.DataFrame, starts: pl.Series) -> None:
        """Takes a group's digests and where its sources start; folds a part when the digests
        pending in it reach a quarter of those it keeps (so the work of folding stays
        proportional to the records read) or its share of ``FOLD_ROWS``."""
        self.starts.append(starts)
        part = (pl.col("__k") % PARTS).alias("__part")
        by_part = digests.with_columns(part).partition_by("__part", as_dict=True, include_key=False)
        for (p,), new in by_part.items():
            p = int(p)
            self.pending[p].append(new)
            self.waiting[p] += new.height
            kept = self.parts[p]
            if self.waiting[p] >= max(FOLD_ROWS // PARTS, 0 if kept is None else kept.height // 4):
                self._fold(p)

    def source_of(self, places: pl.Series) -> pl.Series:
        """The source (numbered across the scan) of the records at ``places``."""
        starts = pl.concat(self.starts) if self.starts else pl.Series([], dtype=pl.UInt64)
        return (starts.search_sorted(places, side="right").cast(pl.Int64) - 1).cast(pl.UInt32).alias("__src")

    def fold(self, final: bool = False) -> None:
        """Every part folded (``final``: for the last time, see ``_fold``)."""
        for p in range(PARTS):
            self._fold(p, final)

    def _fold(self, p: int, final: bool = False) -> None:
        """Part ``p``'s later copies of a version removed (added to ``dropped``: per source,
        duplicates and rows). A part of many chunks is made one, unless this is its ``final``
        fold (then it is read once more at most)."""
        if not self.pending[p]:
            return
        old = self.parts[p]
        state = pl.concat([*([] if old is None else [old]), *self.pending[p]], rechunk=False)
        self.pending[p], self.waiting[p] = [], 0
        first = _first_versions(state, known=0 if old is None else old.height)
        if not first.all():
            gone = state.filter(~first)
            self.dropped.append(
                gone.select(self.source_of(gone["__pos"]), "__n")
                .group_by("__src")
                .agg(
                    pl.len().cast(pl.UInt64).alias("duplicates"),
                    pl.lit(0, pl.UInt64).alias("superseded"),
                    pl.col("__n").sum().cast(pl.UInt64).alias("rows"),
                )
            )
            state = state.filter(first)
        if state.n_chunks() > 8 and not final:
            state = state.rechunk()
        self.parts[p] = state

    def repeated(self) -> pl.DataFrame:
        """The versions of keys with several versions, with their source."""
        self.fold(final=True)
        found = [_repeated(p) for p in self.parts if p is not None]
        both = pl.concat(found) if found else _placed(_read_digests([]), 0)
        return both.with_columns(self.source_of(both["__pos"]))

    def places(self, superseded: pl.Series) -> pl.Series:
        """The places of every version kept but those ``superseded``, sorted. The versions are
        let go part by part as their places are taken (the last use of them)."""
        self.fold(final=True)
        gone = superseded.implode()
        found = [pl.Series("__pos", [], pl.UInt64)]
        for p in range(PARTS):
            part, self.parts[p] = self.parts[p], None
            if part is not None:
                pos = part["__pos"]
                del part
                found.append(pos.filter(~pos.is_in(gone)) if superseded.len() else pos)
        return pl.concat(found).sort()


def _repeated(state: pl.DataFrame) -> pl.DataFrame:
    """The versions of records with an id that has several versions."""
    # A first cut by one hash (copying only the few candidates), then the whole key.
    candidates = state.filter(pl.col("__id") & pl.col("__k").is_duplicated())
    return candidates.filter(pl.struct(_KEY).is_duplicated())


def plan(groups: Iterable[tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]]) -> Plan:
    """The first pass over ``groups``: what the core read of each group with dedupe off, as
    digests (``_read_digests``: digests, rejects, statistics, no conflicts), in order."""
    seen = _Versions()
    sizes: list[tuple[int, int]] = []
    rejected: list[pl.DataFrame] = []
    stats: list[pl.DataFrame] = []
    for group, (found, rej, st, _) in enumerate(groups):
        digests = _placed(found, group)
        del found
        sizes.append((digests.height, int(st["rows"].sum())))
        rejected.append(rej)
        stats.append(st)
        seen.add(digests, _starts(st, group))
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
    places = seen.places(superseded["__pos"])
    del seen
    return Plan(
        _by_group(places),
        sizes,
        pl.concat(rejected) if rejected else nothing()[1],
        _merge.moved(
            all_stats, pl.concat(dropped).group_by("__src").agg(pl.col("duplicates", "superseded", "rows").sum())
        ),
        conflicted.select(
            "__pos",
            all_stats["source"].gather(conflicted["__src"]).alias("source"),
            "revision",
            "resolution",
        ),
        _by_group(conflicted["__pos"].sort()),
    )


def _by_group(places: pl.Series) -> dict[int, pl.Series]:
    """Places by group: per group the first rows of the records at them. ``places`` sorted
    (then each group's are a slice of them, found by binary search, and no copy of them all is
    made but the first rows)."""
    if places.is_empty():
        return {}
    first, last = int(places[0]) >> 32, int(places[-1]) >> 32
    bounds = places.search_sorted(pl.Series([g << 32 for g in range(first, last + 2)], dtype=pl.UInt64)).to_list()
    return {
        g: (places.slice(a, b - a) - (g << 32)).cast(pl.UInt32)
        for g, (a, b) in zip(range(first, last + 1), itertools.pairwise(bounds), strict=True)
        if b > a
    }


def _read_digests(sources: list[tuple[str, bytes | None]]) -> pl.DataFrame:
    """The digests of ``sources``' records (none: the empty frame of digests)."""
    return _core.normalize(sources, errors="collect", dedupe=False, digests=True)[0]


def nothing() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """What the core gives for no sources: empty records, rejects, statistics and conflicts."""
    return _core.normalize([], errors="collect")


def _first(
    read: tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame], decided: Plan, group: int, name: str
) -> pl.Series:
    """Whether each row of group ``group``, read again with dedupe off (what the core gives:
    records, rejects, statistics, conflicts), is its record's first; ``name`` (the group's first
    source) names a group that no longer reads as it did."""
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
    return first


def kept(
    read: tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame], decided: Plan, group: int, name: str
) -> pl.DataFrame:
    """The second pass: the records of group ``group`` (read again, see ``_first``) that the
    plan keeps (a group in ``decided.kept``: the others are not read again)."""
    found = read[0]
    first = _first(read, decided, group, name)
    keep = decided.kept[group]
    if keep.len() == decided.sizes[group][0]:
        return found
    return found.filter(_record_of_rows(first).is_in(keep.implode()))


def names(
    read: tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame], decided: Plan, group: int, name: str
) -> pl.DataFrame:
    """The provider, id and index of the versions in the conflicts report that group ``group``
    (read again, see ``_first``) holds, by place."""
    found = read[0]
    _first(read, decided, group, name)
    want = decided.wanted.get(group, pl.Series([], dtype=pl.UInt32))
    named = found.select(*NAMES).with_row_index("__rec").filter(pl.col("__rec").is_in(want.implode()))
    # Copied out: the strings would otherwise hold their group's whole string buffers.
    return pl.DataFrame(
        [
            (named["__rec"].cast(pl.UInt64) + (group << 32)).alias("__pos"),
            *(pl.Series(c, named[c].to_list(), found.schema[c]) for c in NAMES),
        ]
    )


def conflicts(decided: Plan, named: list[pl.DataFrame]) -> pl.DataFrame:
    """The conflicts report: the plan's, with the names the second pass gave (``names``)."""
    canonical = _canonical.schema()
    none = pl.DataFrame(schema={"__pos": pl.UInt64, **{c: canonical[c] for c in NAMES}})
    found = pl.concat(named) if named else none
    return decided.conflicts.join(found, on="__pos", how="left", maintain_order="left").select(
        "provider", "record_id", "source", "source_index", "revision", "resolution"
    )

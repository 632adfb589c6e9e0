"""``scan``: the canonical table as a Polars LazyFrame (a Polars IO source).

The sources are listed when ``scan`` is called and read when the frame is collected: in groups
of consecutive sources of about ``GROUP_BYTES`` each (every group one call of the core, in
parallel within it), so that a query that needs few rows (``head``) stops reading early and,
with ``dedupe=False``, memory holds one group at a time. With ``dedupe=True`` (the default),
sources of up to ``ONE_CALL_BYTES`` in all are read in one call, as ``normalize`` reads them,
and larger ones deduplicated in a stream of two passes over the groups (``_dedupe``), holding
one group and a digest per distinct record version.

Rejects and the accounting are never lost: with ``errors="collect"`` a ``rejects=`` target is
required, and it gets the rejected rows, the per-source statistics and the conflicts of every
source read once the scan ends (also when a query stopped reading early: then the statistics
list the sources read).
"""

from __future__ import annotations

import concurrent.futures
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import polars as pl
from polars.io.plugins import register_io_source

from . import _canonical, _core, _dedupe, _formats, _lazy, _remote, _sources

#: Sources are read in groups of about this many bytes when records need not be compared
#: across groups (``dedupe=False``).
GROUP_BYTES = 16 << 20
#: Sources totalling at most this many bytes are deduplicated in one call of the core, as
#: ``normalize`` does (memory about twice this); more in a stream of two passes (``_dedupe``).
ONE_CALL_BYTES = 256 << 20


class ScanReport(NamedTuple):
    """What a scan with ``errors="collect"`` hands to ``rejects`` when it ends."""

    rejected: pl.DataFrame
    stats: pl.DataFrame
    conflicts: pl.DataFrame


Rejects = str | os.PathLike[str] | Callable[[ScanReport], object]


def _size(source: _sources.Source) -> int:
    name, data = source
    if data is not None:
        return len(data)
    if name in _remote.SIZES:
        return _remote.SIZES[name]
    try:
        return os.path.getsize(name)
    except OSError:
        # The core reports it, naming the file, when the group holding it is read.
        return 0


Group = list[tuple[str, bytes | bytearray | None]]
#: What the core gives for a group: records, rejected, statistics, conflicts.
Read = tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]


def _groups(sources: list[_sources.Source], group_bytes: int) -> list[Group]:
    groups: list[Group] = []
    size = 0
    for s in sources:
        if not groups or size >= group_bytes:
            groups.append([])
            size = 0
        groups[-1].append(s)
        size += _size(s)
    return groups


def _deliver(rejects: Rejects, report: ScanReport) -> None:
    if callable(rejects):
        rejects(report)
        return
    out = Path(rejects)
    out.mkdir(parents=True, exist_ok=True)
    report.rejected.write_parquet(out / "rejected.parquet")
    report.stats.write_parquet(out / "stats.parquet")
    report.conflicts.write_parquet(out / "conflicts.parquet")


def scan(
    sources: Any,
    /,
    *,
    provider: str | None = None,
    formats: list[_formats.Format] | None = None,
    period: str | None = None,
    dedupe: bool = True,
    errors: str = "raise",
    rejects: Rejects | None = None,
    storage_options: dict[str, Any] | None = None,
) -> pl.LazyFrame:
    """The canonical table of ``sources`` as a ``polars.LazyFrame``, read when collected.

    Arguments are ``normalize``'s (sources, provider, formats, period, dedupe, errors), and:
        rejects: with ``errors="collect"`` (where it is required), where the rejected rows, the
            per-source statistics and the conflicts go when the scan ends: a directory
            (``rejected.parquet``, ``stats.parquet`` and ``conflicts.parquet`` are written
            in it) or a callable given a ``ScanReport(rejected, stats, conflicts)``.
        storage_options: as ``normalize``'s, for sources in object stores. They are listed
            when ``scan`` is called; each group is downloaded (in parallel) while the one before
            it is parsed.

    Only the selected columns are handed on, and where the core does not dedupe
    (``dedupe=False``, and the second pass of a streamed dedupe) the others are not stored
    (their values are still read and checked, so that the same records are rejected) and
    ``tags`` is not written unless selected; filters (``filter``) are applied batch by batch as they are
    read, and ``head(n)`` stops reading once it has its rows. With
    ``dedupe=False`` the sources are read in groups of about 16 MB: memory holds one group.
    With ``dedupe=True`` sources over 256 MB in all are read twice, in the same groups: first
    to decide what dedupe drops (memory: a group, and about 44 bytes per distinct record),
    then to hand on what it keeps (groups whose records were all dropped are not read again).

    Raises:
        ValueError: an unknown errors mode, or ``errors="collect"`` without ``rejects``.
        FileNotFoundError, TypeError: as ``normalize`` (when ``scan`` is called).
        NormalizeError: a bad record with ``errors="raise"`` (when the frame is collected;
            Polars 1.x reports it as a ``ComputeError`` that carries the same message).

    Example:
        >>> lf = scan("exports/")
        >>> gitpod = lf.filter(pl.col("provider") == "gitpod").select("usage_start", "quantity").collect()
        >>> gitpod.columns
        ['usage_start', 'quantity']
    """
    if errors not in ("raise", "collect"):
        raise ValueError(f"errors must be 'raise' or 'collect', not {errors!r}")
    if errors == "collect" and rejects is None:
        raise ValueError(
            'errors="collect" in a scan needs rejects=: a directory or a callable that gets the rejected '
            "rows, the statistics and the conflicts when the scan ends (a lazy frame has nowhere else to "
            "return them)"
        )
    if rejects is not None and errors != "collect":
        raise ValueError('rejects= goes with errors="collect"')
    given = list(sources) if isinstance(sources, list | tuple) else [sources]
    _, tables = _canonical.split(given)
    if tables:
        raise ValueError(
            f"{tables[0]}: scan reads providers' exports; a canonical table written earlier is read with "
            "pl.scan_parquet / pl.scan_csv, or given to normalize() to merge with fresh records"
        )
    listed = _sources.collect(sources, storage_options)
    active = _formats.active(formats)
    replace = _formats.replacements()
    schema = _canonical.schema()
    groups = _groups(listed, GROUP_BYTES)
    # Dedupe in one call of the core where the sources are small enough (one pass, and every
    # copy compared value by value); across groups in two passes (see _dedupe) where not.
    streamed = dedupe and len(groups) > 1 and sum(_size(s) for s in listed) > ONE_CALL_BYTES
    if dedupe and not streamed:
        groups = [list(listed)]

    def read(
        with_columns: list[str] | None, predicate: pl.Expr | None, n_rows: int | None, batch_size: int | None
    ) -> Iterator[pl.DataFrame]:
        # Columns not asked for are not stored, nor the tags written (dedupe compares every
        # column, so only where the core does not dedupe: without it, and in a streamed dedupe's
        # second pass). Polars asks for the columns its filter reads too.
        columns = None if with_columns is None or (dedupe and not streamed) else list(with_columns)
        produce = deduplicated(columns) if streamed else records(columns)
        return _lazy.handed_on(produce, with_columns, predicate, n_rows, batch_size)

    def parsed(
        columns: list[str] | None, dedupe: bool, only: list[int] | None = None, digests: bool = False
    ) -> Iterator[Read]:
        """What the core reads of each group (or of the groups ``only`` lists; with ``digests``
        a digest per record in place of its rows); the next group downloads (objects in stores)
        while this one is parsed."""
        which = list(range(len(groups))) if only is None else only
        prefetch = concurrent.futures.ThreadPoolExecutor(1)
        coming: concurrent.futures.Future[Group] | None = None
        try:
            coming = prefetch.submit(_sources.fetch, groups[which[0]], storage_options) if which else None
            for k in range(len(which)):
                if coming is None:
                    break
                group = coming.result()
                coming = (
                    prefetch.submit(_sources.fetch, groups[which[k + 1]], storage_options)
                    if k + 1 < len(which)
                    else None
                )
                yield _core.normalize(
                    group,
                    provider=provider,
                    errors=errors,
                    period=period,
                    dedupe=dedupe,
                    formats=active,
                    replace=replace,
                    progress=None,
                    columns=columns,
                    digests=digests,
                )
        finally:
            if coming is not None:
                coming.cancel()
            prefetch.shutdown(wait=False)

    def records(columns: list[str] | None) -> Iterator[pl.DataFrame]:
        """Each group's canonical records. Closed early when the query has its rows: the
        rejects then get the sources read."""
        parts: list[tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]] = []
        try:
            for found, rejected, stats, conflicts in parsed(columns, dedupe):
                if rejects is not None:
                    parts.append((rejected, stats, conflicts))
                yield found
                # Not held while the next group is read.
                del found
        finally:
            if rejects is not None:
                _deliver(
                    rejects,
                    ScanReport(
                        pl.concat([p[0] for p in parts]) if parts else _dedupe.nothing()[1],
                        pl.concat([p[1] for p in parts]) if parts else _dedupe.nothing()[2],
                        pl.concat([p[2] for p in parts]) if parts else _dedupe.nothing()[3],
                    ),
                )

    def deduplicated(columns: list[str] | None) -> Iterator[pl.DataFrame]:
        """The groups deduplicated across each other: every group is read once to decide, then
        again to hand on what is kept. The rejects get the whole scan's accounting, which the
        first pass completes."""
        decided = _dedupe.plan(parsed(None, False, digests=True))
        # The second pass also needs each row's record and the names of conflicting versions.
        again = None if columns is None else [*columns, *(c for c in _dedupe.NAMES if c not in columns)]
        # The conflicts report's names, from the groups that hold conflicting versions.
        named: dict[int, pl.DataFrame] = {}
        failed = False
        # Groups whose records were all dropped (copies of records read before) are not read
        # again here (the conflicts report may read them for names, below).
        needed = sorted(decided.kept)
        try:
            for i, read in zip(needed, parsed(again, False, needed), strict=True):
                kept = _dedupe.kept(read, decided, i, groups[i][0][0])
                if rejects is not None and i in decided.wanted:
                    named[i] = _dedupe.names(read, decided, i, groups[i][0][0])
                del read
                yield kept
                del kept
        except GeneratorExit:
            raise
        except BaseException:
            failed = True
            raise
        finally:
            if rejects is not None:
                # Groups not read again (a query that stopped early, groups of dropped records
                # only) may hold versions the report names.
                missing = [] if failed else sorted(set(decided.wanted) - set(named))
                for i, read in zip(missing, parsed(_dedupe.NAMES, False, missing), strict=True):
                    named[i] = _dedupe.names(read, decided, i, groups[i][0][0])
                    del read
                report = ScanReport(decided.rejected, decided.stats, _dedupe.conflicts(decided, list(named.values())))
                _deliver(rejects, report)

    return register_io_source(read, schema=schema, **_lazy.named("usagenorm"))

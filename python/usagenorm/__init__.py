"""usagenorm: normalize providers' usage exports into one canonical Polars table.

>>> import usagenorm as un
>>> df = un.normalize("exports/")
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, NamedTuple, overload

import polars as pl

from . import _canonical, _core, _formats, _merge, _progress, _sources
from ._aggregate import RunningRecordsWarning, aggregate
from ._errors import ColumnError, FormatError, NormalizeError, RateCardError
from ._focus import check_focus, to_focus
from ._formats import Format, register_format
from ._pricing import RateCard, UnpricedRowsWarning, price, reconcile
from ._scan import ScanReport, scan

__version__: str = _core.__version__

__all__ = [
    "Collected",
    "ColumnError",
    "Format",
    "FormatError",
    "NormalizeError",
    "RateCard",
    "RateCardError",
    "RunningRecordsWarning",
    "ScanReport",
    "UnpricedRowsWarning",
    "__version__",
    "aggregate",
    "check_focus",
    "formats",
    "normalize",
    "price",
    "reconcile",
    "register_format",
    "scan",
    "to_focus",
]


class _Pair(NamedTuple):
    records: pl.DataFrame
    rejected: pl.DataFrame


class Collected(_Pair):
    """What ``normalize(..., errors="collect")`` returns: unpacks as ``records, rejected``.

    Attributes:
        records: the canonical table.
        rejected: one row per bad record: source, source_index, line, provider, kind
            (``missing``, ``wrong_type``, ``out_of_range``, ``invalid``, ``malformed_json``,
            ``page``: filter on it rather than on the message), path, reason, raw.
        stats: one row per source: records read, accepted, rejected, duplicates, superseded
            and rows out, with ``records == accepted + rejected + duplicates + superseded``.
        conflicts: every version of a record whose id arrived with different content, and
            how it was resolved (``kept``, ``superseded``, ``kept_unresolved``).
    """

    stats: pl.DataFrame
    conflicts: pl.DataFrame


@overload
def normalize(
    sources: Any,
    /,
    *,
    provider: str | None = ...,
    errors: Literal["raise"] = ...,
    period: str | None = ...,
    dedupe: bool = ...,
    formats: list[Format] | None = ...,
    progress: bool | Callable[[dict[str, Any]], object] | None = ...,
    storage_options: dict[str, Any] | None = ...,
) -> pl.DataFrame: ...
@overload
def normalize(
    sources: Any,
    /,
    *,
    provider: str | None = ...,
    errors: Literal["collect"],
    period: str | None = ...,
    dedupe: bool = ...,
    formats: list[Format] | None = ...,
    progress: bool | Callable[[dict[str, Any]], object] | None = ...,
    storage_options: dict[str, Any] | None = ...,
) -> Collected: ...
@overload
def normalize(
    sources: Any,
    /,
    *,
    provider: str | None = ...,
    errors: str,
    period: str | None = ...,
    dedupe: bool = ...,
    formats: list[Format] | None = ...,
    progress: bool | Callable[[dict[str, Any]], object] | None = ...,
    storage_options: dict[str, Any] | None = ...,
) -> pl.DataFrame | Collected: ...
def normalize(
    sources: Any,
    /,
    *,
    provider: str | None = None,
    errors: Literal["raise", "collect"] = "raise",
    period: str | None = None,
    dedupe: bool = True,
    formats: list[Format] | None = None,
    progress: bool | Callable[[dict[str, Any]], object] | None = None,
    storage_options: dict[str, Any] | None = None,
) -> pl.DataFrame | Collected:
    """Read usage exports into the canonical table.

    Arguments:
        sources: a path, directory or glob (``str`` / ``os.PathLike``); bytes-like JSON or
            NDJSON text; a binary file object; a dict or list of dicts (what an API call
            returned); or a list of any of these. Directories are searched recursively for
            ``*.json``, ``*.jsonl``, ``*.ndjson`` (also ``.gz``). A ``*.parquet`` or ``*.csv``
            file (or NDJSON whose first line is a canonical row) is a canonical table written
            earlier: its columns are checked, its rows come first and the records read follow,
            deduplicated together (a rerun over the same exports gives the same table).
        provider: force a format (see ``formats()``) instead of detecting it per file.
        errors: ``"raise"`` raises ``NormalizeError`` for the first bad record;
            ``"collect"`` returns a ``Collected`` with the rejects and the accounting.
        period: VMware's aggregation period (``HOURLY``, ``DAILY``, ``MONTHLY``) when the
            spacing of a page's records should not decide it.
        dedupe: drop identical copies of a record and resolve conflicting versions (see the
            README's "Duplicates"); ``False`` keeps every record read.
        formats: format files (``Format``) to detect and read beside the built-in formats,
            the registered ones (``register_format``) and those installed packages provide.
        progress: ``True`` shows a progress bar on stderr (tqdm's, a notebook widget too,
            when tqdm is installed; else one line, redrawn on a terminal, once per phase in a
            log). A callable is called every 100 ms and at the end with a dict: ``phase``
            (``reading``, ``dedupe``, ``building the frame``, ``merging tables``, ``done``),
            ``sources`` / ``sources_total``, ``bytes`` / ``bytes_total`` (of finished
            sources) and ``records`` read; an exception it raises stops the call.
        storage_options: for ``s3://``, ``gs://``, ``az://`` and ``http(s)://`` sources (an
            object, or a prefix listed like a folder; ``pip install "usagenorm[remote]"``):
            Polars' keys (``aws_region``, ``aws_endpoint_url``, ``allow_http``, ...); without
            them, credentials come from the standard environment variables.

    Returns:
        The canonical ``polars.DataFrame``, or a ``Collected`` with ``errors="collect"``.

    Raises:
        NormalizeError: a bad record, with ``errors="raise"``.
        FileNotFoundError: a path or glob that names no file.
        TypeError: a source of an unsupported type.
        ValueError: an unknown provider, errors mode or period.

    Example:
        >>> df = normalize("exports/")
        >>> records, rejected = normalize("exports/", errors="collect")
    """
    given = list(sources) if isinstance(sources, list | tuple) else [sources]
    exports, tables = _canonical.split(given)
    # Canonical tables written earlier, read first (a bad one is an error before any export is
    # read) by the command line's rules (see _canonical).
    read_back = [(str(p), _canonical.read(p)) for p in tables]
    if not (progress is None or isinstance(progress, bool) or callable(progress)):
        raise TypeError(f"progress must be True, False, None or a callable, not {type(progress).__name__}")
    bar = _progress.Bar() if progress is True else None
    relay = _progress.Relay(bar if bar is not None else progress) if progress not in (None, False) else None
    try:
        records, rejected, stats, conflicts = _core.normalize(
            _sources.fetch(_sources.collect(exports if tables else sources, storage_options), storage_options),
            provider=provider,
            errors=errors,
            period=period,
            dedupe=dedupe,
            formats=_formats.active(formats),
            replace=_formats.replacements(),
            progress=relay,
        )
        if tables:
            # They dedupe together with the records read (see _merge).
            if relay is not None:
                relay.phase("merging tables")
            records, stats, conflicts = _merge.merge(read_back, records, stats, conflicts, dedupe)
        if relay is not None:
            relay.done()
    finally:
        if bar is not None:
            bar.close()
    if errors == "collect":
        out = Collected(records, rejected)
        out.stats = stats
        out.conflicts = conflicts
        return out
    return records


def formats(formats: list[Format] | None = None) -> pl.DataFrame:
    """The formats usagenorm reads, one row per (provider, canonical column) mapping: the
    built-in ones, those installed packages provide, the registered ones, then ``formats``.
    ``origin`` says where each is defined (``built-in``, a shipped or a user's format file)."""
    return _core.formats(_formats.active(formats), _formats.replacements())


def __dir__() -> list[str]:
    """The public API only (``dir(usagenorm)``, tab completion)."""
    return sorted(__all__)

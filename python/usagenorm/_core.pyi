"""The native core of usagenorm (Rust, via pyo3). Use the wrappers in ``usagenorm`` instead:
they accept paths, globs, folders, file objects and dicts, and shape the results."""

from collections.abc import Callable, Sequence
from typing import Any

import polars as pl

__version__: str
MATCH_COLUMNS: list[str]
"""The usage columns a rate card can match on, in rate-card order (the core's own list)."""

def normalize(
    sources: Sequence[tuple[str, bytes | bytearray | None]],
    /,
    *,
    provider: str | None = None,
    errors: str = "raise",
    period: str | None = None,
    dedupe: bool = True,
    formats: list[CompiledFormat] = ...,
    replace: list[CompiledFormat] = ...,
    progress: Callable[[dict[str, Any]], object] | None = None,
    columns: Sequence[str] | None = None,
    digests: bool = False,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Normalize sources into the canonical table, in parallel, with the GIL released.

    Arguments:
        sources: ``(name, None)`` reads the file ``name`` (gzip is recognized by its magic
            bytes; ``.ndjson`` / ``.jsonl`` names are NDJSON, others are told by their shape);
            ``(name, data)`` reads ``data``, JSON or NDJSON text, and reports it as ``name``.
            Rows come out in this order, then by ``source_index``.
        provider: a format id (see ``formats()``) to skip detection.
        errors: ``"raise"`` or ``"collect"``.
        period: VMware's aggregation period, ``HOURLY``, ``DAILY`` or ``MONTHLY``.
        dedupe: drop duplicate records and resolve conflicting versions.
        formats: compiled format files to read beside the built-in formats (checked: unique
            ids, no overlapping detection).
        replace: compiled format files read in place of the built-in format of their id.
        progress: called with this call's progress every 100 ms while it runs and once when
            its work is done: a dict with ``phase`` (``starting``, ``reading``, ``dedupe``,
            ``building the frame``, ``done``), ``sources`` / ``sources_total``, ``bytes`` /
            ``bytes_total`` (of finished sources) and ``records`` read. An exception it raises
            stops the call and is raised.
        columns: the canonical columns to hand on (a scan's projection; ``None``: all), in
            the table's order. The others are not stored and ``tags``, unless named, is not
            written; every value is still read and checked, so the same records are rejected.
            Needs ``dedupe=False`` (dedupe compares every column).
        digests: one row per record in place of its rows (a streamed dedupe's first pass):
            ``__rec`` its first row, ``__n`` its rows, ``__h`` 64 bits of a 128-bit hash (xxh3)
            of its content (every content column of its rows, in order), ``__id`` whether it
            has a ``record_id``, ``__k`` / ``__l`` the halves of its key's 128-bit hash
            (provider and ``record_id``; its content's without an id), ``revision``. Each group
            of sources read in parallel is digested as soon as it is read, so the call holds
            the rows of one group per thread. Needs ``dedupe=False`` and every column.

    Returns:
        ``(records, rejected, stats, conflicts)``: the canonical frame; one row per rejected
        record (source, source_index, line, provider, kind, path, reason, raw); one row per source
        (records, accepted, rejected, duplicates, superseded, rows); and every version of every
        conflicting record (provider, record_id, source, source_index, revision, resolution).

    Raises:
        usagenorm.NormalizeError: with ``errors="raise"``, the first bad record in source
            order; ``source``, ``index``, ``line``, ``path`` and ``reason`` say where and why.
        FileNotFoundError / OSError: a file that cannot be read.
        ValueError: an unknown provider, errors mode or period.

    Example:
        >>> records, rejected, stats, conflicts = normalize([("<memory>", b'{"records": []}')])
    """

class CompiledFormat:
    """A format file compiled by the core (``usagenorm.Format`` wraps it)."""

    @property
    def id(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def origin(self) -> str: ...

def compile_format(text: str, origin: str, syntax: str) -> CompiledFormat:
    """Compile a format file's text: ``syntax`` is ``"toml"``, or ``"json"`` for a dict dumped.

    Raises:
        usagenorm.FormatError: an unknown key, a wrong type or a bad path, naming ``origin``
            and the key.

    Example:
        >>> compile_format('id = "x"', "x.toml", "toml")
        Traceback (most recent call last):
        usagenorm._errors.FormatError: x.toml: missing field `title`
    """

def formats(formats: list[CompiledFormat] = ..., replace: list[CompiledFormat] = ...) -> pl.DataFrame:
    """The formats the core reads (built in, then ``formats``): one row per (provider,
    canonical column) with the provider field or rule it comes from. Columns: provider,
    title, api, column, source_field, origin, focus_provider, focus_service, focus_category,
    focus_subcategory, focus_resource_type.

    Example:
        >>> gitpod = formats().filter(pl.col("provider") == "gitpod")
        >>> gitpod["column"][0]
        'record_id'
    """

class Aggregator:
    """Splits usage across calendar buckets and sums it per group, batch by batch, in
    parallel with the GIL released. The sums are exact (cost in 10⁻⁹ units, quantity in a
    256-bit fixed-point sum rounded once), so the result is the same bit for bit however the
    rows are split into batches. It holds one sum per (bucket, group): memory is the result's.

    Arguments:
        keys: the names of the group columns every batch gives, in order (``unit`` and
            ``currency`` among them).
        every: a bucket size (``1h``, ``1d``, ``1w``, ``1mo``, ``1q``, ``1y``, ...) or ``None``.
        tz: the IANA time zone whose calendar the buckets follow.
        start, end: clip to [start, end), in µs since the epoch.
        as_of: the end of running records, in µs since the epoch.
        billable_only: leave out rows whose ``billable`` is false.

    Raises:
        ValueError: a bad ``every`` or ``tz``, or ``end`` not after ``start``.

    Example:
        >>> sums = Aggregator(["project_id", "unit", "currency"], every="1d")
        >>> sums.add(*usage, df.select("project_id", "unit", "currency"))
        >>> result, running_unsplit = sums.finish()
        >>> result.columns
        ['bucket_start', 'bucket_end', 'project_id', 'unit', 'currency', 'quantity', 'cost', 'records']
    """

    def __init__(
        self,
        keys: list[str],
        /,
        *,
        every: str | None,
        tz: str = "UTC",
        start: int | None = None,
        end: int | None = None,
        as_of: int | None = None,
        billable_only: bool = True,
    ) -> None: ...
    def add(
        self,
        usage_start: pl.Series,
        usage_end: pl.Series,
        quantity: pl.Series,
        cost: pl.Series,
        billable: pl.Series,
        keys: pl.DataFrame,
        /,
    ) -> None:
        """Sums one batch.

        Arguments:
            usage_start, usage_end: datetime[μs, UTC] (an end equal to the start: a point record).
            quantity: f64. cost: decimal(38, 9). billable: bool. All of one length.
            keys: the group columns as text, named and ordered as ``keys``; any names, they
                never clash with the usage columns.

        Raises:
            usagenorm.ColumnError: a null usage_start, or an end before its start.
            ValueError: group columns other than ``keys``, or ``finish`` was called.
        """
    def finish(self) -> tuple[pl.DataFrame, int]:
        """``(result, running_unsplit)``: one row per (bucket, group), sorted, with
        ``bucket_start``, ``bucket_end`` (datetime[μs, tz], when bucketed), the keys,
        ``quantity``, ``cost`` and ``records``; and how many running records went whole into
        their start bucket. Once only.
        """

def check_rate_card(card: pl.DataFrame) -> int:
    """Validate a rate card given as text columns and return its row count.

    Raises:
        usagenorm.RateCardError: an unknown column, or a row with a negative or unparseable
            price, a bad currency, validity or tier; ``row`` is the 1-based data row.

    Example:
        >>> check_rate_card(pl.DataFrame({"provider": ["gitpod"], "unit_price": ["0.36"]}))
        1
    """

def price(
    usage_start: pl.Series,
    usage_end: pl.Series,
    quantity: pl.Series,
    cost: pl.Series,
    billable: pl.Series,
    unit: pl.Series,
    matches: pl.DataFrame,
    card: pl.DataFrame,
    /,
    *,
    overwrite: bool = False,
    billable_only: bool = True,
) -> tuple[pl.DataFrame, list[int]]:
    """Price prepared usage columns with a rate card, in parallel, GIL released.

    Arguments:
        usage_start, usage_end, quantity, cost, billable: as for ``aggregate``.
        unit: the usage's unit (text).
        matches: the eight match columns (``MATCH_COLUMNS``) as text.
        card: the rate card as text columns.
        overwrite: price rows that carry a provider cost too.
        billable_only: leave rows whose ``billable`` is false unpriced.

    Returns:
        ``(priced, unused)``: one row per usage row, ``cost``, ``unit_price`` (decimal(38, 9)),
        ``currency``, and ``outcome`` (``priced``, ``provider_cost``, ``no_rate``,
        ``not_billable``, ``no_quantity``); and the card's data rows (from 1) that priced no
        usage row.

    Raises:
        usagenorm.RateCardError: a bad card, or two rates matching a row equally well.

    Example:
        >>> priced, unused = price(*usage, df["unit"], df.select(MATCH_COLUMNS).cast(pl.String), card_text)
        >>> priced.columns
        ['cost', 'unit_price', 'currency', 'outcome']
    """

def _frame_bytes(df: pl.DataFrame) -> int:
    """The bytes a frame's columns hold in memory, for the benchmark's memory report.

    Counts each buffer once (string view columns share their text buffers across rows and
    chunks) and includes the 16-byte views that ``DataFrame.estimated_size`` leaves out; an
    all-null chunk counts nothing (Polars shares one zeroed buffer for it).

    Example:
        >>> import usagenorm as un
        >>> df = un.normalize("exports/")  # this module's normalize takes (name, bytes) pairs
        >>> _frame_bytes(df) >= df.estimated_size()
        True
    """

def dumps(obj: Any) -> bytes:
    """JSON text of dicts, lists, tuples, str, int, float, bool and None, written straight
    from the objects: the bytes of ``json.dumps(obj, separators=(",", ":"), allow_nan=False,
    ensure_ascii=False).encode()``, about three times faster. Used for the dicts ``normalize``
    is given.

    Raises:
        TypeError: an object of another type, or a dict key that is not str, int, float, bool
            or None (the messages of ``json.dumps``).
        ValueError: nesting deeper than 500 (a circular reference).

    What JSON text cannot hold is written so that the reader rejects the record holding it by
    name: a NaN or infinite float as the string ``"\\uffffNaN"`` (``Infinity``, ``-Infinity``;
    ``dumps`` never escapes U+FFFF otherwise), a lone surrogate as its ``\\udXXX`` escape. A
    non-finite float dict key is written as ``json.dumps`` names it (``"NaN"``).

    Example:
        >>> dumps({"a": [1, 2.5, None]})
        b'{"a":[1,2.5,null]}'
    """

def focus_tags(df: pl.DataFrame, /) -> pl.DataFrame:
    """The ``tags`` column of ``df`` (String) as FOCUS Tags: a value that is an object or an
    array becomes its compact JSON text (FOCUS's KeyValueFormat allows no nested values); the
    rest is unchanged. In parallel, GIL released.

    Raises:
        ColumnError: a value that is not a JSON object, naming its row (from 0, as ``df.row(n)``).

    Example:
        >>> focus_tags(pl.DataFrame({"tags": ['{"a":[1,2],"b":3}']}))["tags"][0]
        '{"a":"[1,2]","b":3}'
    """


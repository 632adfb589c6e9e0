"""Canonical tables given back as inputs: a Parquet, CSV or NDJSON file that ``normalize`` (or the
command line) wrote earlier. ``normalize`` and the command line read them by the same rules:

- ``*.parquet`` and ``*.csv`` files are canonical tables; a ``*.ndjson`` / ``*.jsonl`` file is one
  when its first non-blank line is an object with ``provider``, ``usage_start`` and
  ``source_index`` (a provider's NDJSON export is read as usual);
- every canonical column must be there, with a type that converts exactly to the canonical
  dtype (CSV holds text: it is parsed strictly, and a value that does not parse is an error);
  anything else is a ``ColumnError`` naming the file and the column. Extra columns (a priced
  table's, say) are kept. ``revision`` may be missing (tables written before it was a column):
  it is null then.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import polars as pl

from . import _core, _remote
from ._errors import ColumnError

TABLE_SUFFIXES = (".parquet", ".csv")
NDJSON_SUFFIXES = (".ndjson", ".jsonl")
_KEYS = {"provider", "usage_start", "source_index"}


@functools.cache
def schema() -> dict[str, pl.DataType]:
    """The canonical columns and their dtypes, as the core builds them."""
    records = _core.normalize([], provider=None, errors="collect", period=None, dedupe=True)[0]
    return dict(records.schema)


def is_canonical(path: Path) -> bool:
    """Whether a file given as a source is a canonical table rather than a provider export."""
    suffix = path.suffix.lower()
    if suffix in TABLE_SUFFIXES:
        return path.is_file()
    if suffix not in NDJSON_SUFFIXES or not path.is_file():
        return False
    try:
        with path.open("rb") as fh:
            for line in fh:
                if line.strip():
                    first = json.loads(line)
                    return isinstance(first, dict) and _KEYS <= first.keys()
    except (OSError, ValueError):
        return False
    return False


def _convert(df: pl.DataFrame, name: str, dtype: pl.DataType, path: Path) -> pl.Series:
    col = df[name]
    if col.dtype == dtype:
        return col
    text = col.dtype in (pl.String, pl.Categorical) or isinstance(col.dtype, pl.Enum)
    try:
        if isinstance(dtype, pl.Datetime):
            if isinstance(col.dtype, pl.Datetime):
                out = col.dt.convert_time_zone("UTC") if col.dtype.time_zone else col.dt.replace_time_zone("UTC")
                return out.dt.cast_time_unit("us")
            if not text:
                raise TypeError(col.dtype)
            return col.cast(pl.String).str.to_datetime(time_zone="UTC", time_unit="us", strict=True)
        if dtype == pl.Boolean and text:
            lowered = col.cast(pl.String).str.to_lowercase()
            bad = lowered.is_not_null() & ~lowered.is_in(["true", "false"])
            if bad.any():
                raise ValueError(f"{lowered.filter(bad)[0]!r} is not true or false")
            return lowered == "true"
        if dtype == pl.String and not (text or col.dtype == pl.Null):
            raise TypeError(col.dtype)
        return col.cast(pl.String if text and dtype != pl.String else col.dtype).cast(dtype, strict=True)
    except (pl.exceptions.PolarsError, TypeError, ValueError) as e:
        detail = f"{col.dtype} does not convert to {dtype}" if isinstance(e, TypeError) else str(e).splitlines()[0]
        raise ColumnError(f"{path}: column {name!r}: not a canonical {dtype} column ({detail})") from None


def read(path: Path) -> pl.DataFrame:
    """A canonical table from ``path``, checked and converted to the canonical dtypes."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            df = pl.read_parquet(path)
        elif suffix == ".csv":
            df = pl.read_csv(path, infer_schema=False)
        else:
            df = pl.read_ndjson(path, infer_schema_length=None)
    except pl.exceptions.PolarsError as e:
        raise ColumnError(f"{path}: not a readable canonical table: {str(e).splitlines()[0]}") from None
    want = schema()
    if "revision" not in df.columns:
        df = df.with_columns(pl.lit(None, pl.Int64).alias("revision"))
    missing = [c for c in want if c not in df.columns]
    if missing:
        raise ColumnError(
            f"{path}: not a canonical table: missing column{'s' if len(missing) > 1 else ''} "
            + ", ".join(repr(c) for c in missing)
        )
    converted = [_convert(df, name, dtype, path).alias(name) for name, dtype in want.items()]
    extra = [c for c in df.columns if c not in want]
    return pl.DataFrame(converted).hstack(df.select(extra)) if extra else pl.DataFrame(converted)


def split(sources: list) -> tuple[list, list[Path]]:
    """The sources that are provider exports, and the canonical tables among them (paths given as
    str or os.PathLike that name a canonical file)."""
    exports, tables = [], []
    for s in sources:
        if isinstance(s, str) and _remote.is_url(s):
            exports.append(s)
            continue
        if isinstance(s, str | os.PathLike):
            p = Path(s)
            if is_canonical(p):
                tables.append(p)
                continue
        exports.append(s)
    return exports, tables

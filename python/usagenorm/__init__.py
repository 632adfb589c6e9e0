"""usagenorm: normalize providers' usage exports into one canonical Polars table.

>>> import usagenorm as un
>>> df = un.normalize("exports/")
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple, overload

import polars as pl

from . import _core, _sources
from ._errors import ColumnError, NormalizeError, RateCardError

__version__: str = _core.__version__

__all__ = [
    "Collected",
    "ColumnError",
    "NormalizeError",
    "RateCardError",
    "formats",
    "normalize",
    "__version__",
]


class _Pair(NamedTuple):
    records: pl.DataFrame
    rejected: pl.DataFrame


class Collected(_Pair):
    """What ``normalize(..., errors="collect")`` returns: unpacks as ``records, rejected``.

    ``stats`` has one row per source: records read, accepted, rejected and rows out, with
    ``records == accepted + rejected`` for every source.
    """

    stats: pl.DataFrame


@overload
def normalize(
    sources: Any, /, *, provider: str | None = ..., errors: Literal["raise"] = ..., period: str | None = ...
) -> pl.DataFrame: ...
@overload
def normalize(
    sources: Any, /, *, provider: str | None = ..., errors: Literal["collect"], period: str | None = ...
) -> Collected: ...
def normalize(
    sources: Any,
    /,
    *,
    provider: str | None = None,
    errors: Literal["raise", "collect"] = "raise",
    period: str | None = None,
) -> pl.DataFrame | Collected:
    """Read usage exports into the canonical table. See ``usagenorm._core.normalize``."""
    records, rejected, _stats = _core.normalize(
        _sources.collect(sources), provider=provider, errors=errors, period=period
    )
    if errors == "collect":
        out = Collected(records, rejected)
        out.stats = _stats
        return out
    return records


def formats() -> pl.DataFrame:
    """The formats usagenorm reads, one row per (provider, canonical column) mapping."""
    return _core.formats()

"""A user's script, type-checked with ``mypy --strict`` by tests/test_typing.py (never run)."""

from datetime import datetime, timezone

import polars as pl

import usagenorm as un

mode: str = "collect"  # errors= from a str variable: the fallback overload
either: pl.DataFrame | un.Collected = un.normalize("exports/", errors=mode)
df: pl.DataFrame = un.normalize("exports/")
collected: un.Collected = un.normalize("exports/", errors="collect")
rejected: pl.DataFrame = collected.rejected
rates = un.RateCard.from_csv("rates.csv")
priced: pl.DataFrame = un.price(df, rates)
with_summary: tuple[pl.DataFrame, pl.DataFrame] = un.price(df, rates, summary=True)
flag: bool = True
maybe: pl.DataFrame | tuple[pl.DataFrame, pl.DataFrame] = un.price(df, rates, summary=flag)
daily: pl.DataFrame = un.aggregate(priced, every="1d", by=["provider"], as_of=datetime(2024, 9, 1, tzinfo=timezone.utc))
focus: pl.DataFrame = un.to_focus(priced, as_of="2024-09-01", version="1.2")
violations: pl.DataFrame = un.check_focus(focus)

"""aggregate and price workloads for the benchmark, each with the best hand-written Polars equivalent."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import numpy as np
import polars as pl

import usagenorm as un

DAY_US = 86_400_000_000


def usage_frame(n: int, seed: int = 1) -> pl.DataFrame:
    """n canonical rows over 90 days: mostly short runs, some spanning days, some points."""
    rng = np.random.default_rng(seed)
    base = int(datetime(2024, 1, 1, tzinfo=timezone.utc).timestamp() * 1e6)
    start = base + rng.integers(0, 90 * DAY_US, n)
    length = (rng.exponential(6 * 3_600_000_000, n)).astype(np.int64)
    length[rng.random(n) < 0.05] = 0
    providers = np.array([f"p{i}" for i in range(10)])
    metrics = np.array([f"m{i}" for i in range(10)])
    skus = np.array([f"s{i}" for i in range(12)])
    return pl.DataFrame(
        {
            "provider": providers[rng.integers(0, 10, n)],
            "metric": metrics[rng.integers(0, 10, n)],
            "sku": skus[rng.integers(0, 12, n)],
            "project_id": np.char.add("proj-", rng.integers(0, 100, n).astype(str)),
            "customer_id": np.char.add("cust-", rng.integers(0, 50, n).astype(str)),
            "usage_start": start,
            "usage_end": start + length,
            "quantity": rng.random(n) * 10,
            "cost": rng.integers(0, 10**10, n),
            "unit": ["Hours"] * n,
            "currency": ["USD"] * n,
            "billable": np.ones(n, dtype=bool),
        }
    ).with_columns(
        pl.col("usage_start", "usage_end").cast(pl.Datetime("us", "UTC")),
        (pl.col("cost").cast(pl.Decimal(38, 0)) / 10**9).cast(pl.Decimal(38, 9)),
    )


def rate_card() -> pl.DataFrame:
    """1,000 rates: 900 for (provider, metric, sku), 100 for (provider, metric) with any sku."""
    rows = []
    for p in range(10):
        for m in range(10):
            for s in range(9):
                rows.append({"provider": f"p{p}", "metric": f"m{m}", "sku": f"s{s}", "unit_price": f"0.{p}{m}{s}1"})
            rows.append({"provider": f"p{p}", "metric": f"m{m}", "sku": None, "unit_price": f"1.{p}{m}"})
    return pl.DataFrame(rows)


def polars_aggregate(df: pl.DataFrame) -> pl.DataFrame:
    start, end = pl.col("usage_start"), pl.col("usage_end")
    span = (end - start).dt.total_microseconds()
    return (
        df.with_columns(bucket=pl.datetime_ranges(start.dt.truncate("1d"), end, "1d"), span=span)
        .explode("bucket")
        .with_columns(
            overlap=(
                pl.min_horizontal(end, pl.col("bucket") + pl.duration(days=1))
                - pl.max_horizontal(start, pl.col("bucket"))
            ).dt.total_microseconds()
        )
        .filter((pl.col("overlap") > 0) | (pl.col("span") == 0))
        .with_columns(share=pl.when(pl.col("span") == 0).then(1.0).otherwise(pl.col("overlap") / pl.col("span")))
        .group_by("bucket", "project_id", "customer_id", "unit", "currency")
        .agg(
            quantity=(pl.col("quantity") * pl.col("share")).sum(),
            cost=(pl.col("cost").cast(pl.Float64) * pl.col("share")).sum(),
            records=pl.len(),
        )
        .sort("bucket", "project_id", "customer_id")
    )


def polars_price(df: pl.DataFrame, card: pl.DataFrame) -> pl.DataFrame:
    card = card.with_columns(pl.col("unit_price").cast(pl.Decimal(38, 9)))
    specific = card.filter(pl.col("sku").is_not_null()).rename({"unit_price": "p_specific"})
    wildcard = card.filter(pl.col("sku").is_null()).drop("sku").rename({"unit_price": "p_any"})
    out = (
        df.join(specific, on=["provider", "metric", "sku"], how="left")
        .join(wildcard, on=["provider", "metric"], how="left")
        .with_columns(unit_price=pl.coalesce("p_specific", "p_any"))
    )
    return out.with_columns(cost=(pl.col("quantity").cast(pl.Decimal(38, 9)) * pl.col("unit_price"))).drop(
        "p_specific", "p_any"
    )


def run(kind: str, n: int) -> dict:
    df = usage_frame(n)
    if kind.startswith("price"):
        card = rate_card()
        df = df.drop("cost")
        t = time.perf_counter()
        if kind == "price":
            out = un.price(df, un.RateCard.from_frame(card))
        else:
            out = polars_price(df, card)
        seconds = time.perf_counter() - t
        return {"seconds": seconds, "rows": out.height, "priced": int(out["cost"].is_not_null().sum())}
    t = time.perf_counter()
    if kind == "aggregate":
        out = un.aggregate(df, every="1d", by=["project_id", "customer_id"])
    else:
        out = polars_aggregate(df)
    return {"seconds": time.perf_counter() - t, "rows": out.height}

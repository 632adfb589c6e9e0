"""``to_pandas()`` with the ``pandas`` extra (pandas and pyarrow, both declared), as a notebook
user converts the canonical table (issue 20)."""

from __future__ import annotations

import importlib.metadata
from decimal import Decimal

import pandas as pd

import usagenorm as un
from conftest import EXAMPLES


def test_the_pandas_extra_declares_pandas_and_pyarrow():
    extra = [r for r in importlib.metadata.requires("usagenorm") or [] if "extra == 'pandas'" in r.replace('"', "'")]
    assert any(r.startswith("pandas") for r in extra) and any(r.startswith("pyarrow") for r in extra), extra


def test_the_canonical_table_converts_to_pandas_exactly():
    df = un.normalize(EXAMPLES)
    pdf = df.to_pandas()
    assert list(pdf.columns) == df.columns and len(pdf) == df.height
    # Times stay UTC-aware, money stays exact decimals, missing values stay missing.
    assert str(pdf["usage_start"].dt.tz) == "UTC"
    costs = [c for c in pdf["cost"] if c is not None and not pd.isna(c)]
    assert costs and all(isinstance(c, Decimal) for c in costs)
    assert costs == [c for c in df["cost"].to_list() if c is not None]
    assert pdf["usage_end"].isna().sum() == df["usage_end"].null_count()
    # And back: the same frame.
    import polars as pl

    back = pl.from_pandas(pdf).with_columns(pl.col("cost", "unit_price").cast(pl.Decimal(38, 9)))
    assert back.select(df.columns).cast(df.schema).equals(df)

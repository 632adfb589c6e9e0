"""``aggregate``, ``price`` and ``to_focus`` take a LazyFrame and give one, read batch by batch
when it is collected: every result equals the eager call's on the collected frame (bit for bit
for aggregate's sums, whatever the batches), and the warnings come once with the totals."""

from __future__ import annotations

import random
import warnings
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import usagenorm as un
from conftest import EXAMPLES
from usagenorm import _lazy

RATES = un.RateCard.from_records(
    [
        {"provider": "gitpod", "unit_price": "0.36", "unit": "Hours"},
        {"provider": "suger", "metric": "api_calls", "unit_price": "0.001"},
    ]
)


@pytest.fixture
def tiny_batches(monkeypatch):
    """Inputs read a few rows at a time, counting the batches."""
    seen = []
    real = _lazy.batches

    def counted(lf):
        for batch in real(lf):
            seen.append(batch.height)
            yield batch

    monkeypatch.setattr(_lazy, "BATCH_ROWS", 4)
    monkeypatch.setattr(_lazy, "batches", counted)
    return seen


def random_usage(rows: int) -> pl.DataFrame:
    """Quantities whose float sum depends on the order they are added in, and costs to the 10⁻⁹."""
    rng = random.Random(7)
    t0 = datetime(2024, 3, 30, tzinfo=timezone.utc)
    starts = [t0 + timedelta(minutes=rng.randrange(0, 60 * 24 * 5)) for _ in range(rows)]
    return pl.DataFrame(
        {
            "usage_start": starts,
            "usage_end": [s + timedelta(minutes=rng.choice([0, 1, 59, 600, 3000])) for s in starts],
            "quantity": [rng.choice([0.1, 1e15, -1e15, 3.3e-7, 7.0]) * rng.random() for _ in range(rows)],
            "cost": [Decimal(rng.randrange(-10**6, 10**12)) / 10**9 for _ in range(rows)],
            "unit": [rng.choice(["Hours", "GB", None]) for _ in range(rows)],
            "project_id": [rng.choice(["a", "b", "c", None]) for _ in range(rows)],
        },
        schema_overrides={"usage_start": pl.Datetime("us", "UTC"), "usage_end": pl.Datetime("us", "UTC"), "cost": pl.Decimal(38, 9)},
    )


@pytest.mark.parametrize("every", ["1h", "1d", "1mo", None])
def test_aggregate_of_a_lazyframe_is_the_eager_result_bit_for_bit(every, tiny_batches, monkeypatch):
    monkeypatch.setattr(_lazy, "BATCH_ROWS", 97)
    df = random_usage(3_000)
    lazy = un.aggregate(df.lazy(), every=every, by="project_id", tz="Europe/Berlin")
    assert isinstance(lazy, pl.LazyFrame)
    assert not tiny_batches  # nothing is read before collect
    got = lazy.collect()
    assert len(tiny_batches) > 10 and max(tiny_batches) <= 97 and sum(tiny_batches) == df.height
    want = un.aggregate(df, every=every, by="project_id", tz="Europe/Berlin")
    assert_frame_equal(got, want)
    assert got["quantity"].to_list() == want["quantity"].to_list()  # exact, not approximately
    assert lazy.collect_schema() == want.schema


def test_aggregate_over_a_scan_is_aggregate_over_normalize(tiny_batches):
    eager = un.aggregate(un.normalize(EXAMPLES), every="1d", by=["provider", "project_id"], as_of="2024-09-01")
    lazy = un.aggregate(un.scan(EXAMPLES), every="1d", by=["provider", "project_id"], as_of="2024-09-01")
    assert_frame_equal(lazy.collect(), eager)
    assert len(tiny_batches) > 3
    # The query on the result is applied to it.
    assert_frame_equal(
        lazy.filter(pl.col("provider") == "gitpod").select("bucket_start", "quantity").collect(),
        eager.filter(pl.col("provider") == "gitpod").select("bucket_start", "quantity"),
    )


def test_aggregate_checks_columns_when_called_and_warns_when_collected():
    lf = un.scan(EXAMPLES)
    with pytest.raises(un.ColumnError, match="no column 'region'"):
        un.aggregate(lf, by="region")
    with pytest.raises(un.ColumnError, match="'quantity' must be numeric"):
        un.aggregate(lf.with_columns(pl.col("quantity").cast(pl.String)))
    lazy = un.aggregate(lf, every="1d")  # running records, no as_of
    with pytest.warns(un.RunningRecordsWarning) as caught:
        lazy.collect()
    eager_count = un.normalize(EXAMPLES)["usage_end"].null_count()
    assert len(caught) == 1 and f"{eager_count} running record(s)" in str(caught[0].message)


def test_price_of_a_lazyframe_is_the_eager_result(tiny_batches):
    df = un.normalize(EXAMPLES)
    with warnings.catch_warnings(record=True) as eager_warnings:
        warnings.simplefilter("always")
        eager = un.price(df, RATES)
    lazy = un.price(un.scan(EXAMPLES), RATES)
    assert isinstance(lazy, pl.LazyFrame) and not tiny_batches
    with warnings.catch_warnings(record=True) as lazy_warnings:
        warnings.simplefilter("always")
        got = lazy.collect()
    assert_frame_equal(got, eager)
    assert len(tiny_batches) > 3
    # One warning with the total, as the eager call gives.
    assert [str(w.message) for w in lazy_warnings] == [str(w.message) for w in eager_warnings]
    assert len(lazy_warnings) == 1
    with pytest.raises(ValueError, match="summary=True"):
        un.price(df.lazy(), RATES, summary=True)


def test_to_focus_of_a_lazyframe_is_the_eager_result(tiny_batches):
    priced = un.price(un.scan(EXAMPLES), RATES)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", un.UnpricedRowsWarning)
        eager = un.to_focus(un.price(un.normalize(EXAMPLES), RATES), as_of="2024-09-01")
        lazy = un.to_focus(priced, as_of="2024-09-01")
        assert isinstance(lazy, pl.LazyFrame)
        assert_frame_equal(lazy.collect(), eager)
        assert un.check_focus(lazy.collect()).height == un.check_focus(eager).height
        with pytest.warns(un.RunningRecordsWarning, match="charged up to now"):
            un.to_focus(un.scan(EXAMPLES)).collect()


def test_a_lazy_chain_streams_end_to_end(tmp_path):
    """scan -> price -> to_focus -> sink_parquet without a collect in between."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", un.UnpricedRowsWarning)
        un.to_focus(un.price(un.scan(EXAMPLES), RATES), as_of="2024-09-01").sink_parquet(tmp_path / "focus.parquet")
        eager = un.to_focus(un.price(un.normalize(EXAMPLES), RATES), as_of="2024-09-01")
    assert_frame_equal(pl.read_parquet(tmp_path / "focus.parquet"), eager)

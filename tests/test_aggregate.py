"""aggregate: splitting records across calendar buckets, exactly, whatever the threads or order."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import warnings
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import usagenorm as un
from conftest import EXAMPLES, expected, ts

UTC = timezone.utc


def usage(*rows: dict) -> pl.DataFrame:
    """A canonical frame; rows give usage_start/usage_end as text and anything else."""
    full = []
    for i, r in enumerate(rows):
        r = dict(r)
        r["usage_start"] = ts(r["usage_start"])
        r["usage_end"] = ts(r["usage_end"]) if r.get("usage_end") else None
        if isinstance(r.get("cost"), str):
            r["cost"] = Decimal(r["cost"])
        full.append({"provider": "test", "metric": "m", "unit": "Hours", "source_index": i} | r)
    return expected(full, "<memory>")


def rows(df: pl.DataFrame, *cols: str) -> list[tuple]:
    return df.select(cols).rows()


def test_one_two_and_many_buckets():
    df = usage(
        {
            "usage_start": "2024-03-10T10:00:00Z",
            "usage_end": "2024-03-10T12:00:00Z",
            "quantity": 2.0,
            "project_id": "a",
        },
        {
            "usage_start": "2024-03-10T22:00:00Z",
            "usage_end": "2024-03-11T03:00:00Z",
            "quantity": 5.0,
            "project_id": "b",
        },
        {
            "usage_start": "2024-03-01T00:00:00Z",
            "usage_end": "2024-03-31T00:00:00Z",
            "quantity": 720.0,
            "project_id": "c",
        },
    )
    out = un.aggregate(df, every="1d", by=["project_id"])
    c = out.filter(pl.col("project_id") == "c")
    assert c.height == 30 and c["quantity"].to_list() == [24.0] * 30 and c["records"].to_list() == [1] * 30
    assert rows(out.filter(pl.col("project_id") != "c"), "bucket_start", "project_id", "quantity") == [
        (ts("2024-03-10T00:00:00Z"), "a", 2.0),
        (ts("2024-03-10T00:00:00Z"), "b", 2.0),
        (ts("2024-03-11T00:00:00Z"), "b", 3.0),
    ]
    # Sorted by bucket, then group keys.
    assert out["bucket_start"].is_sorted()
    assert out.columns == [
        "bucket_start",
        "bucket_end",
        "project_id",
        "unit",
        "currency",
        "quantity",
        "cost",
        "records",
    ]
    assert out.schema["bucket_start"] == pl.Datetime("us", "UTC")


def test_edges_exactly_on_bucket_boundaries():
    df = usage(
        {"usage_start": "2024-03-10T00:00:00Z", "usage_end": "2024-03-11T00:00:00Z", "quantity": 24.0},
        {"usage_start": "2024-03-11T00:00:00Z", "usage_end": "2024-03-11T00:00:00Z", "quantity": 1.0},
    )
    out = un.aggregate(df, every="1d")
    # [start, end) : the day record stays in its day; the point at midnight belongs to the next day.
    assert rows(out, "bucket_start", "quantity", "records") == [
        (ts("2024-03-10T00:00:00Z"), 24.0, 1),
        (ts("2024-03-11T00:00:00Z"), 1.0, 1),
    ]


@pytest.mark.parametrize(
    "day,hours",
    [("2024-03-31", 23), ("2024-10-27", 25), ("2024-06-15", 24)],
)
def test_dst_days_in_berlin_are_23_and_25_hours(day, hours):
    midnight = datetime.fromisoformat(day).replace(tzinfo=__import__("zoneinfo").ZoneInfo("Europe/Berlin"))
    start = midnight.astimezone(UTC) - timedelta(hours=12)
    df = usage(
        {"usage_start": start.isoformat(), "usage_end": (start + timedelta(hours=48)).isoformat(), "quantity": 48.0}
    )
    out = un.aggregate(df, every="1d", tz="Europe/Berlin")
    the_day = out.filter(pl.col("bucket_start").dt.date() == datetime.fromisoformat(day).date())
    assert (the_day["bucket_end"] - the_day["bucket_start"]).dt.total_hours().item() == hours
    assert the_day["quantity"].item() == pytest.approx(float(hours), rel=1e-12)
    assert out["quantity"].sum() == pytest.approx(48.0, rel=1e-12)
    hourly = un.aggregate(df, every="1h", tz="Europe/Berlin")
    local_day = hourly.filter(pl.col("bucket_start").dt.date() == datetime.fromisoformat(day).date())
    assert local_day.height == hours
    assert set((local_day["bucket_end"] - local_day["bucket_start"]).dt.total_minutes()) == {60}


def test_month_quarter_and_leap_day():
    df = usage(
        {
            "usage_start": "2024-02-28T12:00:00Z",
            "usage_end": "2024-03-01T12:00:00Z",
            "quantity": 48.0,
            "cost": "4.8",
            "currency": "USD",
        },
    )
    daily = un.aggregate(df, every="1d")
    assert rows(daily, "bucket_start", "quantity", "cost") == [
        (ts("2024-02-28T00:00:00Z"), 12.0, Decimal("1.2")),
        (ts("2024-02-29T00:00:00Z"), 24.0, Decimal("2.4")),
        (ts("2024-03-01T00:00:00Z"), 12.0, Decimal("1.2")),
    ]
    monthly = un.aggregate(df, every="1mo")
    assert rows(monthly, "bucket_start", "bucket_end", "quantity") == [
        (ts("2024-02-01T00:00:00Z"), ts("2024-03-01T00:00:00Z"), 36.0),
        (ts("2024-03-01T00:00:00Z"), ts("2024-04-01T00:00:00Z"), 12.0),
    ]
    quarterly = un.aggregate(df, every="1q")
    assert rows(quarterly, "bucket_start", "bucket_end", "quantity", "cost") == [
        (ts("2024-01-01T00:00:00Z"), ts("2024-04-01T00:00:00Z"), 48.0, Decimal("4.8")),
    ]
    weekly = un.aggregate(df, every="1w")
    assert weekly["bucket_start"].dt.weekday().to_list() == [1]  # Monday


def test_point_records_and_running_records():
    df = usage(
        {"usage_start": "2024-05-01T10:00:00Z", "usage_end": "2024-05-01T10:00:00Z", "quantity": 3.0},
        {"usage_start": "2024-05-01T22:00:00Z", "quantity": None},  # running gitpod-style: no quantity yet
        {"usage_start": "2024-05-01T23:00:00Z", "quantity": 10.0, "unit": "GB"},  # running with a known quantity
    )
    with pytest.warns(un.RunningRecordsWarning, match="2 running record"):
        whole = un.aggregate(df, every="1d", by=["unit"])
    assert rows(whole, "unit", "quantity", "records") == [("GB", 10.0, 1), ("Hours", 3.0, 2)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        split = un.aggregate(df, every="1d", by=["unit"], as_of="2024-05-02T04:00:00Z")
    assert rows(split, "bucket_start", "unit", "quantity") == [
        (ts("2024-05-01T00:00:00Z"), "GB", 2.0),
        (ts("2024-05-01T00:00:00Z"), "Hours", 5.0),  # 3 + the 2 hours the running one has run that day
        (ts("2024-05-02T00:00:00Z"), "GB", 8.0),
        (ts("2024-05-02T00:00:00Z"), "Hours", 4.0),
    ]


def test_units_and_currencies_never_mix():
    df = usage(
        {
            "usage_start": "2024-05-01T00:00:00Z",
            "usage_end": "2024-05-01T01:00:00Z",
            "quantity": 1.0,
            "cost": "1",
            "currency": "USD",
        },
        {
            "usage_start": "2024-05-01T00:00:00Z",
            "usage_end": "2024-05-01T01:00:00Z",
            "quantity": 1.0,
            "cost": "2",
            "currency": "EUR",
        },
        {"usage_start": "2024-05-01T00:00:00Z", "usage_end": "2024-05-01T01:00:00Z", "quantity": 7.0, "unit": "GB"},
    )
    out = un.aggregate(df, every=None, by=["metric"])
    assert rows(out, "metric", "unit", "currency", "quantity", "cost") == [
        ("m", "GB", None, 7.0, None),
        ("m", "Hours", "EUR", 1.0, Decimal(2)),
        ("m", "Hours", "USD", 1.0, Decimal(1)),
    ]


def test_start_end_clip_and_billable_only():
    df = usage(
        {
            "usage_start": "2024-05-01T00:00:00Z",
            "usage_end": "2024-05-05T00:00:00Z",
            "quantity": 96.0,
            "cost": "1",
            "currency": "USD",
        },
        {
            "usage_start": "2024-05-02T00:00:00Z",
            "usage_end": "2024-05-02T01:00:00Z",
            "quantity": 1.0,
            "billable": False,
        },
    )
    out = un.aggregate(df, every="1d", start="2024-05-02T12:00:00Z", end=datetime(2024, 5, 4))
    assert rows(out, "bucket_start", "quantity", "cost") == [
        (ts("2024-05-02T00:00:00Z"), 12.0, Decimal("0.125")),
        (ts("2024-05-03T00:00:00Z"), 24.0, Decimal("0.25")),
    ]
    totals = un.aggregate(df, every=None, start="2024-05-02", end="2024-05-03", billable_only=False)
    # Different currencies (none vs USD) stay apart; nulls sort first.
    assert rows(totals, "currency", "quantity", "records") == [(None, 1.0, 1), ("USD", 24.0, 1)]


def test_lazyframe_and_non_string_group_columns():
    df = un.normalize(EXAMPLES)
    lazy = un.aggregate(
        df.lazy(), every=None, by=["billable", "source_index"], as_of="2024-09-01", billable_only=False
    ).collect()
    assert lazy.schema["billable"] == pl.Boolean and lazy.schema["source_index"] == pl.UInt64
    assert lazy.filter(~pl.col("billable"))["quantity"].item() == 12.0
    # By default the non-billable (DELETED) Suger group is left out.
    assert un.aggregate(df, every=None, by=["billable"], as_of="2024-09-01")["billable"].unique().to_list() == [True]


def test_missing_and_mistyped_columns_are_clear():
    df = usage({"usage_start": "2024-05-01T00:00:00Z", "usage_end": "2024-05-01T01:00:00Z", "quantity": 1.0})
    with pytest.raises(un.ColumnError, match="no column 'region'"):
        un.aggregate(df, by=["region"])
    with pytest.raises(un.ColumnError, match="no column 'quantity'"):
        un.aggregate(df.drop("quantity"))
    with pytest.raises(un.ColumnError, match="'quantity' must be numeric, got String"):
        un.aggregate(df.with_columns(pl.col("quantity").cast(pl.String)))
    with pytest.raises(un.ColumnError, match="'cost' must be a decimal"):
        un.aggregate(df.with_columns(pl.col("cost").cast(pl.Float64)))
    with pytest.raises(un.ColumnError, match="'usage_start' must be a datetime"):
        un.aggregate(df.with_columns(pl.col("usage_start").cast(pl.Int64)))
    with pytest.raises(ValueError, match="unknown unit"):
        un.aggregate(df, every="1x")
    with pytest.raises(ValueError, match="unknown time zone"):
        un.aggregate(df, tz="Mars/Base")
    with pytest.raises(TypeError, match="DataFrame or LazyFrame"):
        un.aggregate({"usage_start": []})


# ---- properties -----------------------------------------------------------------------------

BASE = datetime(2024, 1, 1, tzinfo=UTC)
records_strategy = st.lists(
    st.tuples(
        st.integers(0, 200 * 24 * 60),  # start, minutes after BASE
        st.one_of(st.just(0), st.integers(1, 40 * 24 * 60)),  # duration in minutes (0: a point)
        # Quantities are summed exactly down to 2^-128 of a unit (README): keep them meaningful.
        st.one_of(st.just(0.0), st.floats(1e-9, 1e6, allow_nan=False, allow_infinity=False)),
        st.integers(-(10**15), 10**15),  # cost in units of 1e-9
        st.sampled_from(["p", "q", "r"]),
    ),
    min_size=1,
    max_size=40,
)


def record_frame(recs) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "usage_start": [BASE + timedelta(minutes=s) for s, *_ in recs],
            "usage_end": [BASE + timedelta(minutes=s + d) for s, d, *_ in recs],
            "quantity": [q for _, _, q, _, _ in recs],
            "cost": [Decimal(c).scaleb(-9) for *_, c, _ in recs],
            "currency": ["USD"] * len(recs),
            "unit": ["Hours"] * len(recs),
            "record_id": [str(i) for i in range(len(recs))],
            "project_id": [p for *_, p in recs],
        },
        schema_overrides={
            "cost": pl.Decimal(38, 9),
            "usage_start": pl.Datetime("us", "UTC"),
            "usage_end": pl.Datetime("us", "UTC"),
        },
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    recs=records_strategy,
    every=st.sampled_from(["1h", "6h", "1d", "1w", "1mo", "1q"]),
    tz=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"]),
)
def test_per_record_totals_are_preserved(recs, every, tz):
    out = un.aggregate(record_frame(recs), every=every, by=["record_id"], tz=tz)
    per = out.group_by("record_id").agg(pl.col("cost").sum(), pl.col("quantity"))
    got = {r["record_id"]: r for r in per.iter_rows(named=True)}
    for i, (_s, _d, q, c, _p) in enumerate(recs):
        r = got[str(i)]
        assert r["cost"] == Decimal(c).scaleb(-9)  # exact to the last digit
        assert math.fsum(r["quantity"]) == pytest.approx(q, rel=1e-12, abs=1e-12)
    # Buckets tile time: each ends where a later one may start, never overlapping.
    spans = out.select("bucket_start", "bucket_end").unique().sort("bucket_start")
    assert (spans["bucket_end"] > spans["bucket_start"]).all()
    assert (spans["bucket_start"].shift(-1).fill_null(spans["bucket_end"].max()) >= spans["bucket_end"]).all()


def oracle_utc_days(recs, lo: int | None, hi: int | None):
    """An independent computation of daily UTC aggregation per project: shares by minutes,
    cost by largest remainder, quantities summed with math.fsum (correctly rounded)."""
    day = 24 * 60
    cells: dict[tuple[int, str], dict] = {}
    for s, d, q, c, p in recs:
        e = s + d
        a, b = max(s, lo if lo is not None else s), min(e, hi if hi is not None else e)
        if d == 0:
            inside = (lo is None or s >= lo) and (hi is None or s < hi)
            pieces = [(s // day, 0, inside)]
        else:
            if a >= b:
                continue
            pieces = []
            if a > s:
                pieces.append((None, a - s, False))
            t = a
            while t < b:
                nxt = min((t // day + 1) * day, b)
                pieces.append((t // day, nxt - t, True))
                t = nxt
            if e > b:
                pieces.append((None, e - b, False))
        if not any(inside for *_, inside in pieces):
            continue
        # largest remainder on |c|
        sign, mag = (1 if c >= 0 else -1), abs(c)
        if d == 0 or len(pieces) == 1:
            shares = [mag] + [0] * (len(pieces) - 1)
        else:
            exact = [Fraction(mag * o, d) for _, o, _ in pieces]
            shares = [math.floor(x) for x in exact]
            left = mag - sum(shares)
            order = sorted(range(len(pieces)), key=lambda j: (-(exact[j] - shares[j]), j))
            for j in order[:left]:
                shares[j] += 1
        seen = set()
        for (bucket, o, inside), share in zip(pieces, shares):
            if not inside:
                continue
            cell = cells.setdefault((bucket, p), {"q": [], "c": 0, "n": 0})
            qs = q if (d == 0 or o == d) else q * (o * 60_000_000) / (d * 60_000_000)
            cell["q"].append(qs)
            cell["c"] += sign * share
            if bucket not in seen:
                cell["n"] += 1
                seen.add(bucket)
    return sorted(
        (BASE + timedelta(days=b), p, math.fsum(v["q"]), Decimal(v["c"]).scaleb(-9), v["n"])
        for (b, p), v in cells.items()
    )


@settings(max_examples=150, deadline=None)
@given(
    recs=records_strategy,
    clip=st.one_of(st.none(), st.tuples(st.integers(0, 100 * 24 * 60), st.integers(1, 100 * 24 * 60))),
)
def test_matches_an_independent_oracle_exactly(recs, clip):
    lo, hi = (clip[0], clip[0] + clip[1]) if clip else (None, None)
    kwargs = {"start": BASE + timedelta(minutes=lo), "end": BASE + timedelta(minutes=hi)} if clip else {}
    out = un.aggregate(record_frame(recs), every="1d", by=["project_id"], **kwargs)
    got = [
        (r[0], r[1], r[2], r[3], r[4])
        for r in out.select("bucket_start", "project_id", "quantity", "cost", "records").rows()
    ]
    assert got == oracle_utc_days(recs, lo, hi)


DETERMINISM = r"""
import sys, polars as pl, usagenorm as un
from datetime import datetime, timedelta, timezone
import random
random.seed(7)
n = 300_000
base = datetime(2024, 1, 1, tzinfo=timezone.utc)
starts = [base + timedelta(seconds=random.randrange(0, 90 * 86400)) for _ in range(n)]
df = pl.DataFrame({
    "usage_start": starts,
    "usage_end": [s + timedelta(seconds=random.randrange(0, 3 * 86400)) for s in starts],
    "quantity": [random.random() * 10 ** random.randrange(-3, 6) for _ in range(n)],
    "cost": [random.randrange(-10**12, 10**12) for _ in range(n)],
    "project_id": [f"p{random.randrange(50)}" for _ in range(n)],
    "unit": ["Hours"] * n, "currency": ["USD"] * n,
}).with_columns((pl.col("cost").cast(pl.Decimal(38, 0)).cast(pl.Decimal(38, 9)) / 1000).cast(pl.Decimal(38, 9)))  # exact: 3 decimals; polars 1.30 divides to scale 13
if sys.argv[2] == "shuffled":
    df = df.sample(fraction=1.0, shuffle=True, seed=11)
out = un.aggregate(df, every="1d", by=["project_id"], tz="Europe/Berlin")
out.write_ipc(sys.argv[1])
"""


def test_thread_count_and_row_order_do_not_change_the_bytes(tmp_path):
    results = {}
    for name, threads, order in [("one", "1", "given"), ("default", None, "given"), ("shuffled", None, "shuffled")]:
        env = dict(os.environ)
        env.pop("RAYON_NUM_THREADS", None)
        if threads:
            env["RAYON_NUM_THREADS"] = threads
        path = tmp_path / f"{name}.arrow"
        subprocess.run([sys.executable, "-c", DETERMINISM, str(path), order], check=True, env=env)
        results[name] = pl.read_ipc(path)
    base = results["one"]
    assert base.height > 1000
    for other in ("default", "shuffled"):
        assert_frame_equal(base, results[other], check_exact=True)
        # f64 sums identical to the bit, not merely close.
        assert base["quantity"].to_numpy().tobytes() == results[other]["quantity"].to_numpy().tobytes()


def test_group_keys_of_every_length_nulls_and_chunks_group_like_polars():
    # Keys are read from Arrow's views: up to 12 bytes inside the view, longer ones by text.
    # Around that limit, with nulls, non-ASCII, a frame of several chunks and a sliced one,
    # the groups must be exactly Polars' own.
    values = ["", "a", "é", "x" * 11, "x" * 12, "x" * 13, "y" * 12, "ü" * 6, "ü" * 7, "long-" * 9, None]
    n = 2_000
    recs = [
        {
            "usage_start": "2024-05-01T00:00:00Z",
            "usage_end": "2024-05-01T01:00:00Z",
            "quantity": float(i % 7),
            "project_id": values[(i * 7) % len(values)],
            "customer_id": values[(i * 3) % len(values)],
        }
        for i in range(n)
    ]
    base = usage(*recs)
    chunked = pl.concat([base.slice(0, 700), base.slice(700, 900), base.slice(1600)], rechunk=False)
    assert chunked.n_chunks() == 3
    for df in (chunked, chunked.slice(333, 1_111)):
        got = un.aggregate(df, every=None, by=["project_id", "customer_id"], as_of="2024-06-01")
        want = df.group_by("project_id", "customer_id").agg(pl.col("quantity").sum(), records=pl.len())
        key = ["project_id", "customer_id"]
        assert_frame_equal(
            got.select(*key, "quantity", "records").sort(key, nulls_last=True),
            want.sort(key, nulls_last=True),
            check_dtypes=False,
        )
        assert got["records"].sum() == df.height

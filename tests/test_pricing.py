"""price / reconcile / RateCard: exact money, specificity, units, effective dates, tiers."""

from __future__ import annotations

import json
import warnings
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import usagenorm as un
from conftest import EXAMPLES, FIRST_WAVE_FILES, expected, ts

D = Decimal


def usage(*rows: dict) -> pl.DataFrame:
    full = []
    for i, r in enumerate(rows):
        r = {"usage_end": r.get("usage_start")} | dict(r)
        r["usage_start"] = ts(r["usage_start"])
        r["usage_end"] = ts(r["usage_end"]) if r["usage_end"] else None
        if isinstance(r.get("cost"), str):
            r["cost"] = D(r["cost"])
        full.append({"provider": "gitpod", "metric": "environment_runtime", "unit": "Hours", "source_index": i} | r)
    return expected(full, "<memory>")


def priced_cost(df, rates, **kw) -> list:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", un.UnpricedRowsWarning)
        return un.price(df, rates, **kw)["cost"].to_list()


def test_most_specific_rate_wins_and_wildcards_match_anything():
    rates = un.RateCard.from_records(
        [
            {"provider": "gitpod", "unit_price": "1", "unit": "Hours"},
            {"provider": "gitpod", "sku": "g1-large", "unit_price": "3", "unit": "Hours"},
            {"unit_price": "0.5"},  # matches anything of any unit
        ]
    )
    df = usage(
        {"usage_start": "2024-01-01T00:00:00Z", "quantity": 2.0, "sku": "g1-standard"},
        {"usage_start": "2024-01-01T00:00:00Z", "quantity": 2.0, "sku": "g1-large"},
        {"usage_start": "2024-01-01T00:00:00Z", "quantity": 2.0, "provider": "suger", "unit": "GB"},
    )
    assert priced_cost(df, rates) == [D("2"), D("6"), D("1")]


def test_two_equally_specific_rates_are_an_error_naming_both_rows():
    rates = un.RateCard.from_records(
        [
            {"provider": "gitpod", "unit_price": "1"},
            {"metric": "environment_runtime", "unit_price": "2"},
        ]
    )
    with pytest.raises(un.RateCardError, match=r"rows 1 and 2 match usage row 0 equally well") as info:
        un.price(usage({"usage_start": "2024-01-01T00:00:00Z", "quantity": 1.0}), rates)
    assert (info.value.row, info.value.usage_row) == (1, 0)


def test_an_ambiguous_rate_names_the_usage_row_by_source_and_record():
    rates = un.RateCard.from_records(
        [{"provider": "gitpod", "unit_price": "1"}, {"metric": "environment_runtime", "unit_price": "2"}]
    )
    df = un.normalize(EXAMPLES / "gitpod.json")
    with pytest.raises(un.RateCardError) as info:
        un.price(df, rates)
    first = df.row(0, named=True)
    assert str(info.value) == (
        "rate card row 1: rows 1 and 2 match usage row 0 equally well (1 match columns each): "
        f"usage row 0 is {first['source']} record 0, record_id {first['record_id']!r}"
    )


def test_a_csv_cards_error_names_the_file_row_and_line(tmp_path):
    path = tmp_path / "rates.csv"
    path.write_text("provider,unit_price\ngitpod,0.36\ngitpod,-1\n")
    with pytest.raises(un.RateCardError) as info:
        un.RateCard.from_csv(path)
    assert str(info.value) == f"{path}: rate card row 2 (line 3): unit_price -1 is negative"
    path.write_text("provider,unit_price,colour\ngitpod,0.36,red\n")
    with pytest.raises(un.RateCardError, match=r"rates\.csv: rate card: unknown column \"colour\""):
        un.RateCard.from_csv(path)


def test_per_minute_price_applies_to_hours():
    rates = un.RateCard.from_records([{"provider": "gitpod", "unit_price": "0.006", "unit": "minute"}])
    out = un.price(usage({"usage_start": "2024-01-01T00:00:00Z", "quantity": 1.5}), rates)
    assert out.select("cost", "unit_price", "currency").row(0) == (D("0.54"), D("0.36"), "USD")
    # A price per GB never applies to hours.
    gb = un.RateCard.from_records([{"provider": "gitpod", "unit_price": "1", "unit": "GB"}])
    assert priced_cost(usage({"usage_start": "2024-01-01T00:00:00Z", "quantity": 1.5}), gb) == [None]


def test_effective_dates_including_a_straddling_record():
    rates = un.RateCard.from_records(
        [
            {"provider": "gitpod", "unit_price": "1", "valid_to": "2024-02-01T00:00:00Z"},
            {"provider": "gitpod", "unit_price": "2", "valid_from": datetime(2024, 2, 1)},
        ]
    )
    df = usage(
        {"usage_start": "2024-01-31T00:00:00Z", "usage_end": "2024-01-31T10:00:00Z", "quantity": 10.0},
        {"usage_start": "2024-02-01T00:00:00Z", "usage_end": "2024-02-01T10:00:00Z", "quantity": 10.0},
        # 18:00 -> 06:00 across the boundary: 6 h at 1 and 6 h at 2.
        {"usage_start": "2024-01-31T18:00:00Z", "usage_end": "2024-02-01T06:00:00Z", "quantity": 12.0},
    )
    out = un.price(df, rates)
    assert out["cost"].to_list() == [D("10"), D("20"), D("18")]
    assert out["unit_price"].to_list() == [D("1"), D("2"), D("1.5")]  # the straddler's effective average


def test_graduated_tiers_including_a_straddling_record_and_monthly_reset():
    rates = un.RateCard.from_records(
        [
            {"provider": "suger", "metric": "api_calls", "unit_price": "0.01", "tier_period": "1mo"},
            {
                "provider": "suger",
                "metric": "api_calls",
                "unit_price": "0.005",
                "tier_from": 1000,
                "tier_period": "1mo",
            },
            {
                "provider": "suger",
                "metric": "api_calls",
                "unit_price": "0.001",
                "tier_from": "5000",
                "tier_period": "1mo",
            },
        ]
    )
    rows = [
        {"usage_start": "2024-03-01T00:00:00Z", "quantity": 800.0},  # 800 @ .01 = 8
        {"usage_start": "2024-03-02T00:00:00Z", "quantity": 700.0},  # 200 @ .01 + 500 @ .005 = 4.5
        {"usage_start": "2024-03-03T00:00:00Z", "quantity": 5000.0},  # 3500 @ .005 + 1500 @ .001 = 19
        {"usage_start": "2024-04-01T00:00:00Z", "quantity": 100.0},  # a new month: 100 @ .01 = 1
    ]
    df = usage(*[r | {"provider": "suger", "metric": "api_calls", "unit": None} for r in rows])
    # Tiering follows usage_start, not row order.
    shuffled = df.reverse()
    assert un.price(df, rates)["cost"].to_list() == [D("8"), D("4.5"), D("19"), D("1")]
    assert un.price(shuffled, rates)["cost"].to_list() == [D("1"), D("19"), D("4.5"), D("8")]


def test_multi_currency_card():
    rates = un.RateCard.from_records(
        [
            {"provider": "gitpod", "customer_id": "eu-co", "unit_price": "0.9", "currency": "EUR"},
            {"provider": "gitpod", "unit_price": "1"},
        ]
    )
    df = usage(
        {"usage_start": "2024-01-01T00:00:00Z", "quantity": 1.0, "customer_id": "eu-co"},
        {"usage_start": "2024-01-01T00:00:00Z", "quantity": 1.0, "customer_id": "us-co"},
    )
    out = un.price(df, rates)
    assert out.select("cost", "currency").rows() == [(D("0.9"), "EUR"), (D("1"), "USD")]
    totals = un.aggregate(out, every=None)
    assert totals.select("currency", "cost").rows() == [("EUR", D("0.9")), ("USD", D("1"))]


def test_provider_cost_kept_unless_overwrite_and_billable_rule():
    rates = un.RateCard.from_records([{"provider": "exabits", "unit_price": "0.005", "unit": "minute"}])
    df = un.normalize(EXAMPLES / "exabits.json")
    kept = un.price(df, rates)
    assert kept["cost"].to_list() == df["cost"].to_list()
    over = un.price(df, rates, overwrite=True)
    assert over["cost"].to_list() == [D("3.08"), D("7.2"), D("7.2")]  # 616, 1440, 1440 minutes at 0.005
    suger = un.normalize(EXAMPLES / "suger.json")
    card = un.RateCard.from_records([{"provider": "suger", "unit_price": "1"}])
    assert priced_cost(suger, card) == [D("1200"), D("35.5"), None, D("300")]  # DELETED is not billable
    assert priced_cost(suger, card, billable_only=False)[2] == D("12")


def test_unmatched_rows_stay_null_warn_and_are_counted():
    rates = un.RateCard.from_records([{"provider": "gitpod", "unit_price": "1"}])
    df = un.normalize(FIRST_WAVE_FILES)
    with pytest.warns(un.UnpricedRowsWarning, match="matched no rate"):
        out, summary = un.price(df, rates, summary=True)
    assert out.filter(pl.col("provider") == "vmware")["cost"].null_count() == 5
    counts = dict(summary.group_by("outcome").agg(pl.col("rows").sum()).iter_rows())
    assert counts == {"priced": 2, "no_quantity": 1, "no_rate": 10, "not_billable": 1, "provider_cost": 3}
    assert summary.filter(pl.col("outcome") == "unused_rate").is_empty()


def test_the_summary_lists_the_rate_rows_that_priced_nothing():
    rates = un.RateCard.from_records(
        [
            {"provider": "gitpod", "unit_price": "1"},
            {"provider": "gitpod", "metric": "enviroment_runtime", "unit_price": "2"},  # a typo
            {"provider": "suger", "metric": "api_calls", "unit_price": "0.001"},
            {"provider": "suger", "metric": "api_calls", "unit_price": "0.0005", "tier_from": "1000000"},
            {"provider": "openai", "unit_price": "3"},  # no such usage here
        ]
    )
    df = un.normalize([EXAMPLES / "gitpod.json", EXAMPLES / "suger.json"])
    with pytest.warns(un.UnpricedRowsWarning):
        _, summary = un.price(df, rates, summary=True)
    unused = summary.filter(pl.col("outcome") == "unused_rate")
    assert unused.select("provider", "metric", "rows", "rate_row").rows() == [
        ("gitpod", "enviroment_runtime", 0, 2),
        ("openai", None, 0, 5),
    ]
    assert summary.filter(pl.col("outcome") != "unused_rate")["rate_row"].null_count() == summary.height - 2


def test_reconcile_exabits():
    rates = un.RateCard.from_records(
        [{"provider": "exabits", "metric": "uptime", "unit_price": "0.005112", "unit": "minute"}]
    )
    page = json.loads((EXAMPLES / "exabits.json").read_text())
    page["data"] = [page["data"][0]]
    # total_fee = total_uptime × per_minute_fee holds (616 × 0.005112 = 3.148992): nothing to report.
    assert un.reconcile(un.normalize(page), rates).height == 0
    page["data"][0]["total_fee"] = 3.15
    diffs = un.reconcile(un.normalize(page), rates)
    assert diffs.select("provider_cost", "rate_cost", "difference", "status").row(0) == (
        D("3.15"),
        D("3.148992"),
        D("-0.001008"),
        "differs",
    )
    assert un.reconcile(un.normalize(page), rates, tolerance="0.01").height == 0
    none = un.reconcile(un.normalize(page), un.RateCard.from_records([{"provider": "gitpod", "unit_price": "1"}]))
    assert none["status"].to_list() == ["no_rate"]
    eur = un.reconcile(
        un.normalize(page), un.RateCard.from_records([{"provider": "exabits", "unit_price": "1", "currency": "EUR"}])
    )
    assert eur["status"].to_list() == ["currency_mismatch"]


@pytest.mark.parametrize(
    "row,match",
    [
        ({"provider": "gitpod", "unit_price": "-1"}, r"rate card row 2: unit_price -1 is negative"),
        ({"provider": "gitpod", "unit_price": "1,50"}, r"rate card row 2: unit_price \"1,50\": not a decimal number"),
        ({"provider": "gitpod", "unit_price": ""}, r"rate card row 2: unit_price is empty"),
        ({"provider": "gitpod", "unit_price": "1", "currency": "usd"}, r"row 2: currency \"usd\" is not an ISO 4217"),
        ({"provider": "gitpod", "unit_price": "1", "valid_from": "soon"}, r"row 2: valid_from \"soon\""),
        ({"provider": "gitpod", "unit_price": "1", "tier_from": "x"}, r"row 2: tier_from \"x\" is not a number"),
        ({"provider": "gitpod", "unit_price": "1", "tier_period": "1h"}, r"row 2: tier_period"),
        ({"provider": "gitpod", "unit_price": "2"}, r"row 2: it repeats row 1"),
        ({"region": "eu", "unit_price": "1"}, r"unknown column \"region\""),
    ],
)
def test_bad_rate_cards_name_the_row(row, match):
    with pytest.raises(un.RateCardError, match=match):
        un.RateCard.from_records([{"provider": "gitpod", "unit_price": "1"}, row])


def test_csv_frame_and_records_give_the_same_card(tmp_path):
    csv = tmp_path / "rates.csv"
    csv.write_text(
        "provider,metric,unit_price,unit,valid_from\ngitpod,,0.10,hour,2024-01-01T00:00:00Z\nexabits,uptime,0.005112,minute,\n"
    )
    from_csv = un.RateCard.from_csv(csv)
    from_frame = un.RateCard.from_frame(
        pl.DataFrame(
            {
                "provider": ["gitpod", "exabits"],
                "metric": [None, "uptime"],
                "unit_price": [D("0.10"), D("0.005112")],
                "unit": ["hour", "minute"],
                "valid_from": [datetime(2024, 1, 1, tzinfo=timezone.utc), None],
            }
        )
    )
    from_records = un.RateCard.from_records(
        [
            {"provider": "gitpod", "unit_price": D("0.10"), "unit": "hour", "valid_from": datetime(2024, 1, 1)},
            {"provider": "exabits", "metric": "uptime", "unit_price": 0.005112, "unit": "minute"},
        ]
    )
    df = un.normalize(FIRST_WAVE_FILES)
    results = [un.price(df, card, overwrite=True)["cost"].to_list() for card in (from_csv, from_frame, from_records)]
    with pytest.warns(un.UnpricedRowsWarning):
        un.price(df, from_csv)
    assert results[0] == results[1] == results[2]
    assert results[0][:5] == [None, None, D("3.148992"), D("7.36128"), D("7.36128")]
    assert len(from_csv) == 2 and "RateCard(2 rows" in repr(from_csv)


def test_aggregate_of_a_priced_frame_sums_cost_exactly():
    rates = un.RateCard.from_records([{"provider": "gitpod", "unit_price": "0.1"}])
    df = usage(*[{"usage_start": "2024-01-01T00:00:00Z", "quantity": 0.1} for _ in range(10)])
    out = un.aggregate(un.price(df, rates), every=None)
    assert out["cost"].item() == D("0.1")  # ten times 0.01, exactly; floats would give 0.09999999999999999


# ---- oracle ---------------------------------------------------------------------------------


def oracle(quantities: list[float], price: Decimal, tiers: list[tuple[Decimal, Decimal]] | None) -> list[Decimal]:
    """Per row cost with Python's decimal: quantity as its shortest repr, graduated tiers, one rounding."""
    out, cum = [], Decimal(0)
    ladder = tiers or [(Decimal(0), price)]
    for q in quantities:
        qd = Decimal(repr(q)).quantize(Decimal("1e-18"), rounding=ROUND_HALF_EVEN)
        lo, hi, total = cum, cum + qd, Decimal(0)
        for j, (start, p) in enumerate(ladder):
            end = ladder[j + 1][0] if j + 1 < len(ladder) else hi
            part = min(hi, end) - max(lo, start)
            if part > 0:
                total += part * p
        cum = hi
        out.append(total.quantize(Decimal("1e-9"), rounding=ROUND_HALF_EVEN))
    return out


prices = st.decimals(min_value=0, max_value=1000, places=9, allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(
    quantities=st.lists(st.floats(0, 1e6, allow_nan=False, allow_infinity=False), min_size=1, max_size=30),
    price=prices,
    tiered=st.one_of(st.none(), st.tuples(st.decimals(1, 10**6, places=3), prices, prices)),
)
def test_priced_totals_match_a_decimal_oracle(quantities, price, tiered):
    base = datetime(2024, 1, 1, tzinfo=timezone.utc)
    df = usage(
        *[{"usage_start": (base + timedelta(minutes=i)).isoformat(), "quantity": q} for i, q in enumerate(quantities)]
    )
    if tiered:
        threshold, p0, p1 = tiered
        tiers = [(Decimal(0), p0), (threshold, p1)]
        card = un.RateCard.from_records(
            [{"provider": "gitpod", "unit_price": p0}, {"provider": "gitpod", "unit_price": p1, "tier_from": threshold}]
        )
    else:
        tiers = None
        card = un.RateCard.from_records([{"provider": "gitpod", "unit_price": price}])
    got = un.price(df, card)["cost"].to_list()
    want = oracle(quantities, price, tiers)
    assert got == want
    assert sum(got) == sum(want)


def test_many_distinct_match_values_never_share_a_profile():
    # Rows are grouped by their unit and match values (a number per combination) to find
    # candidate rates. Four match columns of exactly 2^16 distinct values each make 2^64
    # combinations per sku: numbered by a wrapping 64-bit product, the sku would vanish and
    # the last row (sku "b") would take the rates of the first (sku "a").
    n = 1 << 16
    ids = [f"v{i:05d}" for i in range(n)]
    df = pl.DataFrame(
        {
            "usage_start": [datetime(2024, 1, 1, tzinfo=timezone.utc)] * (n + 1),
            "quantity": [1.0] * (n + 1),
            "unit": ["Hours"] * (n + 1),
            "sku": ["a"] * n + ["b"],
            "resource_type": ids + ids[:1],
            "account_id": ids[::-1] + ids[-1:],
            "customer_id": ids[1:] + ids[:1] + ids[1:2],
            "project_id": ids[2:] + ids[:2] + ids[2:3],
        }
    )
    match = {"resource_type": ids[0], "account_id": ids[-1], "customer_id": ids[1], "project_id": ids[2]}
    rates = un.RateCard.from_records([{"sku": "a", "unit_price": "1"} | match, {"sku": "b", "unit_price": "2"} | match])
    got = priced_cost(df, rates)
    assert got[0] == D(1) and got[-1] == D(2)
    assert got[1:-1] == [None] * (n - 1)


def test_a_rate_card_error_names_the_file(tmp_path):
    path = tmp_path / "rates.csv"
    path.write_text("provider,unit_price\ngitpod,abc\n")
    with pytest.raises(un.RateCardError, match=r"rates\.csv: rate card row") as e:
        un.RateCard.from_csv(path)
    assert e.value.row is not None


def test_dir_shows_the_public_api_only():
    assert dir(un) == sorted(un.__all__)

"""Hostile input: each case is a rejection or a NormalizeError, in bounded time — never a
crash, a hang or a silent drop. And concurrent calls from Python threads agree."""

from __future__ import annotations

import gzip
import json
import threading
import time
from datetime import datetime, timezone

import pytest
from polars.testing import assert_frame_equal

import usagenorm as un
from conftest import EXAMPLES, PROVIDERS

CASES = {
    "deep nesting": b'{"records": [{"createdAt": "2024-01-01T00:00:00Z", "x": '
    + b"[" * 100_000
    + b"]" * 100_000
    + b"}]}",
    "deep nesting in a page": b"[" * 100_000 + b"]" * 100_000,
    "huge exponent": b'{"records": [{"createdAt": "2024-01-01T00:00:00Z", "stoppedAt": 1e400}]}',
    "NaN literal": b'{"records": [{"createdAt": "2024-01-01T00:00:00Z", "n": NaN}]}',
    "invalid UTF-8": b'{"records": [{"createdAt": "2024-01-01T00:00:00Z", "userId": "\xc3\x28"}]}',
    "BOM then garbage": b"\xef\xbb\xbf\x00\x01\x02",
    "empty": b"",
    "only whitespace": b"  \n\t ",
    "truncated gzip": gzip.compress((EXAMPLES / "gitpod.json").read_bytes())[:-20],
    "lone string": b'"hello"',
    "lone number": b"42",
    "unterminated string": b'{"records": [{"createdAt": "2024-01-01T00:00:00Z',
}


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_input_is_rejected_in_bounded_time(name):
    data = CASES[name]
    t = time.perf_counter()
    out = un.normalize(data, errors="collect")
    assert time.perf_counter() - t < 10
    st = out.stats.row(0, named=True)
    assert st["records"] == st["accepted"] + st["rejected"] + st["duplicates"] + st["superseded"]
    assert out.rejected.height >= 1, name
    with pytest.raises(un.NormalizeError):
        un.normalize(data)


def test_a_100_mb_string_is_bounded():
    big = b'{"records": [{"createdAt": "2024-01-01T00:00:00Z", "environmentId": "' + b"x" * 100_000_000 + b'"}]}'
    t = time.perf_counter()
    df = un.normalize(big)
    assert time.perf_counter() - t < 20
    assert len(df["resource_id"].item()) == 100_000_000


def test_threads_get_the_same_results_as_one_at_a_time():
    rates = un.RateCard.from_records([{"provider": "gitpod", "unit_price": "0.36", "unit": "hour"}])
    data = [
        json.loads((EXAMPLES / f"{p}.json").read_text())
        for p in PROVIDERS
    ]
    big = [json.dumps(d).encode() for d in data] * 40

    def work():
        df = un.normalize(big, dedupe=False)
        return df, un.aggregate(df, every="1d", by=["provider"], as_of="2024-09-01"), un.price(df, rates)

    with pytest.warns(un.UnpricedRowsWarning):
        expected = work()
    results: list = [None] * 6
    errors: list = []

    def run(i):
        try:
            with __import__("warnings").catch_warnings():
                __import__("warnings").simplefilter("ignore")
                results[i] = work()
        except Exception as e:  # noqa: BLE001 - any failure in a thread is reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(6)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors
    for r in results:
        for got, want in zip(r, expected):
            assert_frame_equal(got, want)


def test_unknown_status_is_kept_and_flagged():
    g = json.loads((EXAMPLES / "suger.json").read_text())["usageRecordGroups"][0]
    g["status"] = "ARCHIVED"
    df = un.normalize(g)
    assert df["status"].unique().to_list() == ["ARCHIVED"]
    assert json.loads(df["tags"][0])["_warning"] == "unknown status ARCHIVED"
    assert df["billable"].all()


def test_epoch_milliseconds_and_naive_times_follow_the_documented_rules():
    rec = json.loads((EXAMPLES / "exabits.json").read_text())["data"][0]
    ms = dict(rec, created_time=rec["created_time"] * 1000, terminated_time=rec["terminated_time"] * 1000)
    assert_frame_equal(un.normalize(ms).drop("tags"), un.normalize(rec).drop("tags"))
    naive = {"records": [{"createdAt": "2024-01-01T10:00:00", "environmentId": "e"}]}
    assert un.normalize(naive)["usage_start"].item() == datetime(2024, 1, 1, 10, tzinfo=timezone.utc)


INTERRUPT = r"""
import time
from datetime import datetime, timedelta, timezone
import polars as pl, usagenorm as un
n = 200_000
base = datetime(2020, 1, 1, tzinfo=timezone.utc)
df = pl.DataFrame({"usage_start": [base] * n, "usage_end": [base + timedelta(days=365)] * n, "quantity": [1.0] * n,
                   "unit": ["Hours"] * n}).with_columns(pl.col("usage_start", "usage_end").cast(pl.Datetime("us", "UTC")))
print("ready", flush=True)
try:
    un.aggregate(df, every="1h")  # 1.75 billion hourly pieces: minutes of work
    print("finished", flush=True)
except KeyboardInterrupt:
    print("interrupted", flush=True)
    # The library is still usable afterwards.
    print(un.aggregate(df.head(10), every="1d").height, flush=True)
"""


INTERRUPT_NORMALIZE = r"""
import json, sys
import usagenorm as un
rec = {"id": "r", "createdAt": "2024-01-01T00:00:00Z", "stoppedAt": "2024-01-01T01:00:00Z", "environmentId": "e"}
line = json.dumps(rec).encode() + b"\n"
data = line * 1_000_000
print("ready", flush=True)
try:
    un.normalize([data] * 6, dedupe=False)  # 6M records: several seconds of work
    print("finished", flush=True)
except KeyboardInterrupt:
    print("interrupted", flush=True)
    print(un.normalize(rec).height, flush=True)
"""


@pytest.mark.parametrize("script", [INTERRUPT, INTERRUPT_NORMALIZE], ids=["aggregate", "normalize"])
def test_ctrl_c_interrupts_a_long_call(script):
    import signal
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    time.sleep(1.0)
    sent = time.perf_counter()
    p.send_signal(signal.SIGINT)
    out = p.communicate(timeout=60)[0].split()
    assert out[0] == "interrupted", out
    assert time.perf_counter() - sent < 5
    # Computed after the interruption: one group per day of the year, or the one record.
    assert out[1] == ("365" if script is INTERRUPT else "1")

"""The command line, run as a real subprocess: outputs, exit codes, messages, no terminal."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal

import polars as pl
import pytest

from conftest import EXAMPLES, FIRST_WAVE_FILES, PROVIDERS, run_cli, stderr_on_a_terminal

RATES = "provider,metric,sku,unit_price,unit\ngitpod,,,0.36,hour\nexabits,uptime,,0.005112,minute\nsuger,api_calls,,0.001,\n"


run = run_cli


def test_normalize_to_parquet_csv_and_ndjson_match_the_library(tmp_path):
    import usagenorm as un

    want = un.normalize(EXAMPLES)
    for suffix in ("parquet", "csv", "ndjson"):
        out = tmp_path / f"usage.{suffix}"
        r = run("normalize", str(EXAMPLES), "-o", str(out))
        assert r.returncode == 0, r.stderr
        assert "records read" not in r.stdout  # the summary goes to stderr, not stdout
        assert f"records read, {want.height} rows, 0 rejected" in r.stderr
        back = pl.read_parquet(out) if suffix == "parquet" else None
        if back is not None:
            assert back.equals(want)
    # Canonical files written by the tool are inputs too.
    r = run("aggregate", str(tmp_path / "usage.parquet"), "--every", "none", "--by", "provider", "-o", "-", "-q")
    assert r.returncode == 0, r.stderr
    totals = pl.read_csv(r.stdout.encode())
    assert set(totals["provider"]) == set(PROVIDERS)


def test_aggregate_with_tz_to_csv(tmp_path):
    out = tmp_path / "daily.csv"
    r = run(
        "aggregate",
        str(EXAMPLES),
        "--every",
        "1d",
        "--by",
        "project_id",
        "--tz",
        "Europe/Berlin",
        "--as-of",
        "2024-09-01",
        "-o",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    df = pl.read_csv(out)
    assert df.columns[:3] == ["bucket_start", "bucket_end", "project_id"]
    assert "groups" in r.stderr


def test_price_and_reconcile(tmp_path):
    rates = tmp_path / "rates.csv"
    rates.write_text(RATES)
    out, diffs = tmp_path / "priced.parquet", tmp_path / "diffs.csv"
    r = run("price", *map(str, FIRST_WAVE_FILES), "--rates", str(rates), "-o", str(out), "--reconcile", str(diffs))
    assert r.returncode == 0, r.stderr
    priced = pl.read_parquet(out)
    assert priced.filter(pl.col("provider") == "gitpod")["cost"].drop_nulls().to_list() == [
        Decimal("1.98"),
        Decimal("0.54"),
    ]
    assert "priced" in r.stderr
    # The Exabits rows keep their provider cost (no --overwrite): its rate row priced nothing.
    assert f"1 rate row(s) priced nothing (row 2 of {rates})" in r.stderr
    assert pl.read_csv(diffs).height == 2  # the two Exabits rows whose fee is not 0.005112/min
    # Warnings are one plain line, not Python's file/line/source dump.
    assert "usagenorm: warning: " in r.stderr and "matched no rate" in r.stderr
    assert "UnpricedRowsWarning" not in r.stderr and "cli.py" not in r.stderr


def test_focus_command(tmp_path):
    rates = tmp_path / "rates.csv"
    rates.write_text(RATES)
    out = tmp_path / "focus.parquet"
    r = run("focus", str(EXAMPLES), "--rates", str(rates), "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "0 FOCUS violations" in r.stderr
    assert "BilledCost" in pl.read_parquet(out).columns


def test_a_pipe_closed_early_ends_quietly_with_its_own_exit_code(tmp_path):
    """`usagenorm normalize DIR -o - | head -1`: a real pipe whose reader leaves after one line."""
    data = tmp_path / "many.ndjson"
    record = (EXAMPLES / "gitpod.json").read_text()
    one = json.dumps(json.loads(record)["records"][0])
    data.write_text("\n".join(one.replace("3f1c2a9e", f"{i:08x}") for i in range(50000)) + "\n")
    reader = subprocess.Popen(["head", "-1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    writer = subprocess.run(
        [sys.executable, "-m", "usagenorm", "normalize", str(data), "-o", "-", "--quiet"],
        stdout=reader.stdin,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    reader.stdin.close()
    first = reader.stdout.read().decode()
    reader.wait()
    assert first.startswith("provider,record_id,")
    assert writer.returncode == 141, writer.stderr
    assert "Traceback" not in writer.stderr and writer.stderr == ""


def test_focus_csv_is_focus_datetime_format_and_the_same_on_every_run(tmp_path):
    outs = []
    for i in range(2):
        out = tmp_path / f"focus{i}.csv"
        r = run("focus", str(EXAMPLES), "--as-of", "2026-03-10T12:00:00Z", "-o", str(out))
        assert r.returncode == 0, r.stderr
        assert "warning" not in r.stderr
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    focus = pl.read_csv(tmp_path / "focus0.csv", infer_schema=False)
    for c in ("ChargePeriodStart", "ChargePeriodEnd", "BillingPeriodStart", "BillingPeriodEnd"):
        assert focus[c].str.contains(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$").all(), c
    # A running record ends at --as-of; without it, at now, with a warning naming the flag.
    assert "2026-03-10T12:00:00Z" in focus["ChargePeriodEnd"].to_list()
    r = run("focus", str(EXAMPLES / "gitpod.json"), "-o", str(tmp_path / "now.parquet"))
    assert r.returncode == 0 and "--as-of" in r.stderr
    r = run("focus", str(EXAMPLES), "--as-of", "tomorrow", "-o", str(tmp_path / "x.parquet"))
    assert r.returncode == 2 and "--as-of 'tomorrow'" in r.stderr


def test_formats_and_detect(tmp_path):
    r = run("formats")
    assert r.returncode == 0 and "gitpod" in r.stdout and "environmentClassId" in r.stdout
    (tmp_path / "junk.json").write_text('{"hello": 1}')
    r = run("detect", str(EXAMPLES / "suger.json"), str(EXAMPLES / "vmware.json"), str(tmp_path / "junk.json"))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0].endswith("\tsuger\t3 records")
    assert lines[1].split("\t")[1] == "vmware"
    assert "unknown\tthe document matches no known format" in lines[2]


def test_bad_file_exit_1_names_file_record_and_field(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "records": [
                    {"createdAt": "2024-01-01T00:00:00Z", "environmentId": "e"},
                    {"createdAt": "soon", "environmentId": "e"},
                ]
            }
        )
    )
    r = run("normalize", str(bad), "-o", str(tmp_path / "x.parquet"))
    assert r.returncode == 1
    assert f"{bad}: record 1, $.records[1].createdAt: expected an RFC 3339 timestamp" in r.stderr
    assert not (tmp_path / "x.parquet").exists()
    rejects = tmp_path / "rejects.csv"
    r = run("normalize", str(bad), "-o", str(tmp_path / "x.parquet"), "--errors", "collect", "--rejects", str(rejects))
    assert r.returncode == 0, r.stderr
    assert "1 rejected" in r.stderr
    assert pl.read_csv(rejects)["path"].to_list() == ["$.records[1].createdAt"]


@pytest.mark.parametrize(
    "args,message",
    [
        (["normalize", "nope/*.json", "-o", "x.parquet"], "no file matches"),
        (["normalize", str(EXAMPLES), "-o", "x.xlsx"], "output format comes from its suffix"),
        (["price", str(EXAMPLES), "-o", "x.csv", "--rates", "missing.csv"], "no such rate card"),
        (["aggregate", str(EXAMPLES), "--every", "1x", "-o", "x.csv"], "unknown unit"),
        (["normalize"], "the following arguments are required"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_usage_errors_exit_2(args, message, tmp_path):
    r = run(*args, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr


def test_help_for_every_subcommand_has_an_example():
    for cmd in ("normalize", "aggregate", "price", "focus", "formats", "detect"):
        r = run(cmd, "--help")
        assert r.returncode == 0
        assert "Example:" in r.stdout and f"usagenorm {cmd}" in r.stdout


def test_no_progress_bar_without_a_terminal(tmp_path):
    r = run("normalize", str(EXAMPLES), "-o", str(tmp_path / "u.parquet"))
    assert "\r" not in r.stderr and "records/s" not in r.stderr


def test_console_script_is_installed():
    import shutil

    exe = shutil.which("usagenorm")
    if exe is None:
        pytest.fail("the usagenorm console script is not on PATH (pip install . puts it there)")
    r = subprocess.run([exe, "formats"], capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0 and "vmware" in r.stdout


def test_canonical_csv_and_ndjson_outputs_read_back_as_inputs(tmp_path):
    totals = {}
    for suffix in ("parquet", "csv", "ndjson"):
        usage = tmp_path / f"usage.{suffix}"
        assert run("normalize", str(EXAMPLES), "-o", str(usage), "-q").returncode == 0
        out = tmp_path / f"totals-{suffix}.parquet"
        r = run(
            "aggregate",
            str(usage),
            "--every",
            "none",
            "--by",
            "provider,metric",
            "--as-of",
            "2024-09-01",
            "--all-rows",
            "-o",
            str(out),
            "-q",
        )
        assert r.returncode == 0, r.stderr
        totals[suffix] = pl.read_parquet(out)
    assert totals["csv"].equals(totals["parquet"])
    assert totals["ndjson"].equals(totals["parquet"])


def test_progress_bar_on_a_terminal_and_quiet_silences_it(tmp_path):

    gen = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES.parent.parent / "bench" / "generate.py"),
            "--records",
            "300000",
            "--formats",
            "suger",
            "--out",
            str(tmp_path / "data"),
        ],
        capture_output=True,
        check=False,
    )
    assert gen.returncode == 0, gen.stderr

    def stderr_on_tty(*extra: str) -> str:
        argv = [sys.executable, "-m", "usagenorm", "normalize", str(tmp_path / "data"), "-o", str(tmp_path / "u.parquet")]
        shown, code = stderr_on_a_terminal([*argv, *extra])
        assert code == 0
        return shown

    shown = stderr_on_tty()
    assert "records/s" in shown and "/300 files" in shown
    assert "records read" in shown  # the summary line
    assert stderr_on_tty("--quiet") == ""


# ---- ETL runs (issue 20): stats, thresholds, rejects, outputs checked first, stdin ------------


def broken_dir(tmp_path, good: int = 3, bad: int = 1):
    page = json.loads((EXAMPLES / "gitpod.json").read_text())
    records = [dict(page["records"][0], id=f"ok-{i}") for i in range(good)]
    records += [dict(page["records"][0], id=f"bad-{i}", createdAt="soon") for i in range(bad)]
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "page.json").write_text(json.dumps({"records": records}))
    return folder


def test_stats_and_max_rejects_for_the_next_task(tmp_path):
    src = broken_dir(tmp_path, good=9, bad=1)
    stats = tmp_path / "stats.json"
    r = run("normalize", str(src), "-o", str(tmp_path / "u.parquet"), "--errors", "collect", "--stats", str(stats))
    assert r.returncode == 0, r.stderr
    doc = json.loads(stats.read_text())
    assert doc["total"] == {"records": 10, "rows": 9, "rejected": 1, "duplicates": 0}
    assert [(s["provider"], s["records"], s["rejected"]) for s in doc["sources"]] == [("gitpod", 10, 1)]
    for limit, code in (("1", 0), ("0", 1), ("10%", 0), ("5%", 1)):
        r = run("normalize", str(src), "-o", str(tmp_path / "u.parquet"), "--errors", "collect", "--max-rejects", limit)
        assert r.returncode == code, (limit, r.stderr)
        if code:
            assert f"1 of 10 records rejected, more than --max-rejects {limit}" in r.stderr
    r = run("normalize", str(src), "-o", str(tmp_path / "u.parquet"), "--max-rejects", "lots")
    assert r.returncode == 2 and "a number of records (100) or a percentage (0.5%)" in r.stderr


def test_rejects_is_always_written_and_implies_collect(tmp_path):
    src = broken_dir(tmp_path)
    rejects = tmp_path / "rejects.csv"
    r = run("normalize", str(src), "-o", str(tmp_path / "u.parquet"), "--rejects", str(rejects))
    assert r.returncode == 0, r.stderr
    assert pl.read_csv(rejects)["reason"].to_list() == [
        'expected an RFC 3339 timestamp such as 2024-01-31T12:00:00Z: "soon"'
    ]
    # Nothing rejected: the file is still written, empty, with its columns.
    clean = tmp_path / "clean.parquet"
    r = run("normalize", str(EXAMPLES / "gitpod.json"), "-o", str(tmp_path / "u.parquet"), "--rejects", str(clean))
    assert r.returncode == 0, r.stderr
    empty = pl.read_parquet(clean)
    assert empty.height == 0 and {"source", "path", "reason", "kind"} <= set(empty.columns)
    # --errors raise said explicitly still fails, and the rejects are written first.
    r = run("normalize", str(src), "-o", str(tmp_path / "u.parquet"), "--rejects", str(rejects), "--errors", "raise")
    assert r.returncode == 1 and rejects.exists()


def test_outputs_are_checked_before_anything_is_read(tmp_path):
    src = broken_dir(tmp_path)  # would fail with exit 1 if it were read first
    for args, message in (
        (["-o", str(tmp_path / "x.xlsx")], "-o "),
        (["-o", str(tmp_path / "missing" / "x.csv")], "no such folder"),
        (["-o", "ftp://host/x.parquet"], "outputs are local files or s3://"),
        (["-o", "https://host/x.parquet"], "outputs are local files or s3://"),
        (["-o", "s3://bucket/x.xlsx"], "the output format comes from its suffix"),
        (["-o", str(tmp_path / "x.csv"), "--rejects", str(tmp_path / "r.txt")], "--rejects "),
        (["-o", str(tmp_path / "x.csv"), "--stats", str(tmp_path / "s.csv")], "--stats "),
    ):
        r = run("normalize", str(src), *args)
        assert r.returncode == 2 and message in r.stderr, (args, r.stderr)
        assert "record" not in r.stderr


def test_standard_input_and_repeated_by(tmp_path):
    page = (EXAMPLES / "gitpod.json").read_bytes()
    r = subprocess.run(
        [sys.executable, "-m", "usagenorm", "normalize", "-", "-o", str(tmp_path / "u.parquet")],
        input=page,
        capture_output=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert pl.read_parquet(tmp_path / "u.parquet")["source"].unique().to_list() == ["<stdin>"]
    outs = []
    for by in (["--by", "provider", "--by", "project_id"], ["--by", "provider, project_id"]):
        out = tmp_path / f"a{len(outs)}.csv"
        r = run("aggregate", str(EXAMPLES), "--every", "1d", "--as-of", "2024-09-01", *by, "-o", str(out))
        assert r.returncode == 0, r.stderr
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] and b"project_id" in outs[0].splitlines()[0]
    # Warnings name the command's flags, not Python keywords.
    r = run("aggregate", str(EXAMPLES / "gitpod.json"), "-o", str(tmp_path / "a.csv"))
    assert "pass --as-of" in r.stderr and "as_of=" not in r.stderr

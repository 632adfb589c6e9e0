"""Sources in an object store and on a web server, against servers the tests start on
127.0.0.1: moto's S3 server (a real S3 API: listing, ranged gets, errors) and a plain HTTP
server that can cut a response short. Every object keeps its URL; nothing is lost."""

from __future__ import annotations

import gzip
import http.server
import threading
from pathlib import Path

import boto3
import moto.server as moto_server
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import usagenorm as un
from conftest import EXAMPLES

KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "aws_region": "us-east-1"}
SAMPLES = sorted(p.name for p in EXAMPLES.iterdir() if p.suffix == ".json")


@pytest.fixture(scope="module")
def s3():
    """An S3 server on 127.0.0.1 with bucket `exports`: the samples under `usage/` (gitpod's
    gzipped), a broken page and a file that is not an export."""
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client(
        "s3", endpoint_url=endpoint, **{k: v for k, v in KEYS.items() if k != "aws_region"}, region_name="us-east-1"
    )
    client.create_bucket(Bucket="exports")
    for name in SAMPLES:
        body = (EXAMPLES / name).read_bytes()
        if name == "gitpod.json":
            client.put_object(Bucket="exports", Key="usage/gitpod.json.gz", Body=gzip.compress(body))
        else:
            client.put_object(Bucket="exports", Key=f"usage/{name}", Body=body)
    client.put_object(Bucket="exports", Key="usage/notes.txt", Body=b"not an export")
    client.put_object(Bucket="exports", Key="broken/page.json", Body=(EXAMPLES / "suger.json").read_bytes()[:-40])
    yield {**KEYS, "aws_endpoint_url": endpoint, "allow_http": "true"}
    server.stop()


def local_equivalent(tmp_path: Path) -> Path:
    """The same objects as local files, in the same order."""
    for name in SAMPLES:
        (tmp_path / (name + ".gz" if name == "gitpod.json" else name)).write_bytes(
            gzip.compress((EXAMPLES / name).read_bytes()) if name == "gitpod.json" else (EXAMPLES / name).read_bytes()
        )
    return tmp_path


def test_a_prefix_is_listed_like_a_folder_in_key_order(s3, tmp_path):
    remote = un.normalize("s3://exports/usage/", storage_options=s3, errors="collect")
    local = un.normalize(local_equivalent(tmp_path), errors="collect")
    assert_frame_equal(remote.records.drop("source"), local.records.drop("source"))
    urls = remote.stats["source"].to_list()
    assert urls == sorted(urls) and all(u.startswith("s3://exports/usage/") for u in urls)
    assert "s3://exports/usage/gitpod.json.gz" in urls, "the gzip object is read"
    assert not any(u.endswith("notes.txt") for u in urls)
    assert set(remote.records["source"]) <= set(urls)
    assert_frame_equal(remote.stats.drop("source"), local.stats.drop("source"))


def test_one_object_and_the_scan(s3):
    url = "s3://exports/usage/exabits.json"
    eager = un.normalize(url, storage_options=s3)
    assert eager["source"].unique().to_list() == [url]
    assert_frame_equal(eager.drop("source"), un.normalize(EXAMPLES / "exabits.json").drop("source"))
    assert_frame_equal(
        un.scan("s3://exports/usage/", storage_options=s3).collect(),
        un.normalize("s3://exports/usage/", storage_options=s3),
    )


def test_a_scan_downloads_group_by_group(s3, monkeypatch):
    from usagenorm import _scan

    monkeypatch.setattr(_scan, "GROUP_BYTES", 1)
    eager = un.normalize("s3://exports/usage/", storage_options=s3, dedupe=False)
    assert_frame_equal(un.scan("s3://exports/usage/", storage_options=s3, dedupe=False).collect(), eager)


def test_a_streamed_dedupe_over_objects_is_the_eager_call(s3, monkeypatch):
    """Objects deduplicated in a stream (every object a group, read twice, the groups of copies
    only once): the same table, rejects, statistics and conflicts as one eager call, by URL."""
    from usagenorm import _scan

    client = boto3.client(
        "s3",
        endpoint_url=s3["aws_endpoint_url"],
        aws_access_key_id=s3["aws_access_key_id"],
        aws_secret_access_key=s3["aws_secret_access_key"],
        region_name=s3["aws_region"],
    )
    for copy in ("a", "b"):
        for name in SAMPLES:
            client.put_object(Bucket="exports", Key=f"twice/{copy}/{name}", Body=(EXAMPLES / name).read_bytes())
    client.put_object(Bucket="exports", Key="twice/b/zz_broken.json", Body=b'{"records": [')
    url = "s3://exports/twice/"
    eager = un.normalize(url, storage_options=s3, errors="collect")
    assert eager.records.height == un.normalize(EXAMPLES).height, "the second copy is dropped"
    assert eager.rejected["source"].to_list() == ["s3://exports/twice/b/zz_broken.json"]
    monkeypatch.setattr(_scan, "GROUP_BYTES", 1)
    monkeypatch.setattr(_scan, "ONE_CALL_BYTES", 0)
    got: list[un.ScanReport] = []
    lazy = un.scan(url, storage_options=s3, errors="collect", rejects=got.append).collect()
    assert_frame_equal(lazy, eager.records)
    assert_frame_equal(got[0].rejected, eager.rejected)
    assert_frame_equal(got[0].stats, eager.stats)
    assert_frame_equal(got[0].conflicts, eager.conflicts)


def test_a_missing_object_is_an_error_naming_its_url(s3):
    with pytest.raises(FileNotFoundError, match="s3://exports/usage/nope.json"):
        un.normalize("s3://exports/usage/nope.json", storage_options=s3)
    with pytest.raises(FileNotFoundError, match="s3://exports/empty/"):
        un.normalize("s3://exports/empty/", storage_options=s3)


def test_denied_access_is_an_error_naming_the_url(s3):
    from moto import settings

    wrong = {**s3, "aws_access_key_id": "AKIDNOTKNOWN", "aws_secret_access_key": "wrong"}
    before = settings.INITIAL_NO_AUTH_ACTION_COUNT
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0  # moto checks credentials from here on
    try:
        with pytest.raises(PermissionError, match="s3://exports/usage/"):
            un.normalize("s3://exports/usage/", storage_options=wrong)
    finally:
        settings.INITIAL_NO_AUTH_ACTION_COUNT = before


def test_a_truncated_object_is_rejected_by_its_url(s3):
    out = un.normalize("s3://exports/broken/page.json", storage_options=s3, errors="collect")
    assert out.records.height == 0
    assert out.rejected["source"].to_list() == ["s3://exports/broken/page.json"]
    assert out.stats["records"].sum() == out.stats["rejected"].sum() >= 1


def test_unknown_storage_options_are_errors_naming_the_key(s3):
    with pytest.raises(ValueError, match="aws_colour"):
        un.normalize("s3://exports/usage/", storage_options={**s3, "aws_colour": "blue"})


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = (EXAMPLES / "gitpod.json").read_bytes()
        if self.path == "/cut.json":
            # Promises the whole page, sends half of it, hangs up.
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.close()
            return
        if self.path == "/private.json":
            self.send_response(403)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_HEAD = do_GET

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def web():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_http_sources(web):
    df = un.normalize(f"{web}/gitpod.json", storage_options={"allow_http": "true"})
    assert df["source"].unique().to_list() == [f"{web}/gitpod.json"]
    assert_frame_equal(df.drop("source"), un.normalize(EXAMPLES / "gitpod.json").drop("source"))


def test_an_object_cut_short_in_transfer_is_an_error_naming_its_url(web):
    with pytest.raises(OSError, match="cut.json"):
        un.normalize(f"{web}/cut.json", storage_options={"allow_http": "true"})


def test_http_denied(web):
    with pytest.raises(OSError, match="private.json"):
        un.normalize(f"{web}/private.json", storage_options={"allow_http": "true"})


def test_the_command_line_reads_and_writes_objects(s3, tmp_path):
    from conftest import run_cli

    opts = [f"--storage-option={k}={v}" for k, v in s3.items()]
    r = run_cli(
        "normalize",
        "s3://exports/usage/",
        *opts,
        "-o",
        "s3://exports/out/usage.parquet",
        "--stats",
        "s3://exports/out/stats.json",
    )
    assert r.returncode == 0, r.stderr
    client = boto3.client(
        "s3",
        endpoint_url=s3["aws_endpoint_url"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    (tmp_path / "usage.parquet").write_bytes(
        client.get_object(Bucket="exports", Key="out/usage.parquet")["Body"].read()
    )
    assert_frame_equal(
        pl.read_parquet(tmp_path / "usage.parquet"), un.normalize("s3://exports/usage/", storage_options=s3)
    )
    assert b'"records"' in client.get_object(Bucket="exports", Key="out/stats.json")["Body"].read()
    bad = run_cli("normalize", "s3://exports/usage/", *opts, "-o", "s3://exports/out/usage.txt")
    assert bad.returncode == 2 and "suffix" in bad.stderr
    missing = run_cli("normalize", "s3://exports/nothing/", *opts, "-o", str(tmp_path / "x.parquet"))
    assert missing.returncode != 0 and "s3://exports/nothing/" in missing.stderr

"""Formats described in a file: the three shipped ones (OpenAI, Anthropic, GitHub) read their
documents to exactly these rows; the twins (Gitpod and consumption_log written as files) read
every fixture exactly as the Rust formats do; a user's file is checked key by key; registering,
entry points and the command line."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import usagenorm as un
from conftest import EXAMPLES, FIXTURES, ROOT, dec, expected, feeds, ts
from usagenorm import _formats

# The twins ship in the package (a test under `make test-wheel` reads them from the wheel).
TWINS = Path(un.__file__).parent / "formats" / "twins"


def day(text: str):
    return ts(f"{text}T00:00:00Z")


OPENAI_COST_ID = "organization.costs.result|1772409600|1772496000|{project}||||||||||{item}"
OPENAI = [
    {
        "provider": "openai",
        "record_id": OPENAI_COST_ID.format(project="proj_Qm7cX2dLr0aVt9KpWe3sYh1N", item=item),
        "project_id": "proj_Qm7cX2dLr0aVt9KpWe3sYh1N",
        "metric": item,
        "sku": item,
        "usage_start": day("2026-03-02"),
        "usage_end": day("2026-03-03"),
        "quantity": quantity,
        "unit": "tokens",
        # Dollars, exact from the number's text (0.04580000000000000000000000000000000).
        "cost": dec(cost),
        "currency": "USD",
        "tags": '{"object":"organization.costs.result","api_key_id":null}',
        "source_index": i,
    }
    for i, (item, quantity, cost) in enumerate(
        [
            ("gpt-5-mini-2025-08-07, input", 183200.0, "0.0458"),
            ("gpt-5-mini-2025-08-07, cached input", 40960.0, "0.001024"),
            ("gpt-5-mini-2025-08-07, output", 35210.0, "0.07042"),
        ]
    )
] + [
    {
        "provider": "openai",
        "record_id": OPENAI_COST_ID.format(project="proj_Zt4bN8eKw1cHq6RmUo2vXa5D", item="vector store storage"),
        "project_id": "proj_Zt4bN8eKw1cHq6RmUo2vXa5D",
        "metric": "vector store storage",
        "sku": "vector store storage",
        "usage_start": day("2026-03-02"),
        "usage_end": day("2026-03-03"),
        "quantity": 125.0,
        "unit": "gibibyte_hours",
        "cost": dec("0.0125"),
        "currency": "USD",
        "tags": '{"object":"organization.costs.result","api_key_id":null}',
        "source_index": 3,
    }
]

ANTHROPIC_TOKENS = {"context_window": "0-200k", "inference_geo": "global"}
ANTHROPIC = [
    {
        "provider": "anthropic",
        "record_id": "|".join(
            ["2026-03-02T00:00:00Z", "2026-03-03T00:00:00Z", workspace or "", "", "", "", model or "", tier or ""]
            + ([ctx["context_window"], ctx["inference_geo"]] if ctx else ["", ""])
            + ["", cost_type, token_type or "", description]
        ),
        "project_id": workspace,
        "metric": token_type or cost_type,
        "sku": model,
        "usage_start": day("2026-03-02"),
        "usage_end": day("2026-03-03"),
        # Cents, divided by 100 exactly: "458.202" cents is $4.58202.
        "cost": dec(cost),
        "currency": "USD",
        "tags": json.dumps(
            {
                "context_window": ctx["context_window"] if ctx else None,
                "description": description,
                "inference_geo": ctx["inference_geo"] if ctx else None,
                "service_tier": tier,
            },
            separators=(",", ":"),
        ),
        "source_index": i,
    }
    for i, (cost, cost_type, token_type, description, model, tier, workspace, ctx) in enumerate(
        [
            ("4.58202", "tokens", "uncached_input_tokens", "Claude Sonnet 4.5 Usage - Input Tokens",
             "claude-sonnet-4-5-20250929", "standard", "wrkspc_01Hq7TnV3aZr9XkB2mLc8DfE", ANTHROPIC_TOKENS),
            ("0.789", "tokens", "cache_creation.ephemeral_5m_input_tokens",
             "Claude Sonnet 4.5 Usage - Input Tokens, Cache Write", "claude-sonnet-4-5-20250929", "standard",
             "wrkspc_01Hq7TnV3aZr9XkB2mLc8DfE", ANTHROPIC_TOKENS),
            ("0.96147", "tokens", "cache_read_input_tokens", "Claude Sonnet 4.5 Usage - Input Tokens, Cache Hit",
             "claude-sonnet-4-5-20250929", "standard", "wrkspc_01Hq7TnV3aZr9XkB2mLc8DfE", ANTHROPIC_TOKENS),
            ("0.9282", "tokens", "output_tokens", "Claude Sonnet 4.5 Usage - Output Tokens",
             "claude-sonnet-4-5-20250929", "standard", "wrkspc_01Hq7TnV3aZr9XkB2mLc8DfE", ANTHROPIC_TOKENS),
            ("0.12", "web_search", None, "Web Search Usage", None, None, "wrkspc_01Hq7TnV3aZr9XkB2mLc8DfE", None),
            ("2.28075", "tokens", "output_tokens", "Claude Haiku 4.5 Usage - Output Tokens",
             "claude-haiku-4-5-20251001", "batch", None, ANTHROPIC_TOKENS),
            ("0.025", "code_execution", None, "Code Execution Usage", None, None, None, None),
        ]
    )
]  # fmt: skip


def github_row(i, date, product, sku, hours_or_quantity, unit, net, repo, tags):
    return {
        "provider": "github",
        "record_id": f"{date}T00:00:00Z|{product}|{sku}|{tags.get('unitType', unit)}|octo-org|{repo or ''}",
        "account_id": "octo-org",
        "project_id": repo,
        "resource_type": product,
        "metric": sku,
        "sku": sku,
        "usage_start": day(date),
        "usage_end": day(date),
        "quantity": hours_or_quantity,
        "unit": unit,
        "cost": dec(net),
        "currency": "USD",
        "tags": json.dumps(tags, separators=(",", ":")),
        "source_index": i,
    }


GITHUB = [
    # 1840 Minutes are 1840/60 Hours; the unit as written stays in the tags.
    github_row(0, "2026-03-02", "actions", "Actions Linux", 1840 * (1 / 60), "Hours", "0", "api-server",
               {"unitType": "Minutes", "pricePerUnit": 0.006, "grossAmount": 11.04, "discountAmount": 11.04}),
    github_row(1, "2026-03-02", "actions", "Actions macOS 3-core", 212 * (1 / 60), "Hours", "13.144", "ios-app",
               {"unitType": "Minutes", "pricePerUnit": 0.062, "grossAmount": 13.144, "discountAmount": 0.0}),
    github_row(2, "2026-03-02", "actions", "Actions storage", 312.5, "GigabyteHours", "0", "api-server",
               {"pricePerUnit": 0.000336, "grossAmount": 0.105, "discountAmount": 0.105}),
    github_row(3, "2026-03-03", "copilot", "Copilot Premium Request", 35.0, "requests", "1.4", None,
               {"pricePerUnit": 0.04, "grossAmount": 1.4, "discountAmount": 0.0}),
]  # fmt: skip

CASES = {"openai": OPENAI, "anthropic": ANTHROPIC, "github": GITHUB}


@pytest.mark.parametrize("provider", list(CASES))
def test_shipped_format_files_read_their_samples_exactly_whatever_the_input_kind(provider):
    path = EXAMPLES / f"{provider}.json"
    for source, name in feeds(path):
        assert_frame_equal(un.normalize(source), expected(CASES[provider], name))


def test_openai_usage_gives_one_row_per_counter_and_keeps_breakdowns_in_tags():
    page = json.loads((FIXTURES / "openai_usage.json").read_text())
    out = un.normalize(page, errors="collect")
    # Two results in the first bucket; the second bucket is empty: no records, no rejection.
    assert out.stats.select("records", "accepted", "rejected", "rows").row(0) == (2, 2, 0, 6)
    df = out.records
    assert df["metric"].to_list() == ["input_tokens", "output_tokens", "num_model_requests"] * 2
    assert df["unit"].to_list() == ["tokens", "tokens", "requests"] * 2
    assert df["quantity"].to_list() == [229280.0, 35210.0, 412.0, 68948.0, 25100.0, 57.0]
    # The partial first bucket keeps its own start (09:17:40), not midnight.
    assert df["usage_start"].unique().to_list() == [ts("2026-03-02T09:17:40Z")]
    tags = json.loads(df["tags"][0])
    assert tags["input_cached_tokens"] == 40960 and "input_tokens" not in tags
    # Summing unit "tokens" counts every token once: the totals, never the breakdowns.
    tokens = df.filter(pl.col("unit") == "tokens")["quantity"].sum()
    assert tokens == 229280 + 35210 + 68948 + 25100


def test_anthropic_usage_rows_are_disjoint_token_kinds():
    page = json.loads((FIXTURES / "anthropic_usage.json").read_text())
    out = un.normalize(page, errors="collect")
    assert out.stats.select("records", "rejected", "rows").row(0) == (2, 0, 12)
    first = out.records.filter(pl.col("source_index") == 0)
    assert dict(first.select("metric", "quantity").iter_rows()) == {
        "uncached_input_tokens": 1527340.0,
        "cache_creation.ephemeral_5m_input_tokens": 210400.0,
        "cache_creation.ephemeral_1h_input_tokens": 0.0,
        "cache_read_input_tokens": 3204900.0,
        "output_tokens": 61880.0,
        "server_tool_use.web_search_requests": 12.0,
    }
    # The total input is the sum of the disjoint kinds (the document's own formula).
    total_in = first.filter(pl.col("unit") == "tokens", pl.col("metric") != "output_tokens")["quantity"].sum()
    assert total_in == 1527340 + 3204900 + 210400 + 0


def test_nested_records_are_rejected_one_by_one_with_their_path():
    page = json.loads((FIXTURES / "openai_usage.json").read_text())
    page["data"][0]["results"][1]["object"] = "organization.usage.future.result"
    page["data"][0]["results"][0]["input_tokens"] = "many"
    out = un.normalize(page, errors="collect")
    assert out.stats.select("records", "accepted", "rejected").row(0) == (2, 0, 2)
    assert out.rejected.select("path", "kind").rows() == [
        ("$.data[0].results[0].input_tokens", "invalid"),
        ("$.data[0].results[1]", "invalid"),
    ]
    assert "no [[rows]] rule" in out.rejected["reason"][1]
    anthropic = json.loads((EXAMPLES / "anthropic.json").read_text())
    anthropic["data"][0]["results"][2]["amount"] = "12,5"
    with pytest.raises(un.NormalizeError) as e:
        un.normalize(anthropic)
    assert (e.value.path, e.value.kind, e.value.index) == ("$.data[0].results[2].amount", "invalid", 2)
    bad_time = json.loads((EXAMPLES / "openai.json").read_text())
    bad_time["data"][0]["start_time"] = "soon"
    out = un.normalize(bad_time, errors="collect")
    # Every record of the bucket is rejected, each naming the bucket's field by its scope.
    assert out.rejected["path"].to_list() == [f"$.data[0].results[{i}].$parent.start_time" for i in range(4)]
    assert out.stats["rejected"].item() == 4


def test_empty_pages_and_buckets_are_no_records():
    for doc in [
        {"usageItems": []},
        {"object": "page", "data": [], "has_more": False, "next_page": None},
        {"data": [{"starting_at": "2026-03-02T00:00:00Z", "ending_at": "2026-03-03T00:00:00Z", "results": []}],
         "has_more": False, "next_page": None},
    ]:  # fmt: skip
        out = un.normalize(doc, errors="collect")
        assert out.records.height == 0 and out.rejected.height == 0 and out.stats["records"].item() == 0, doc


# ---- the twins: the same engine ----------------------------------------------------------------


def twin(provider: str) -> un.Format:
    return un.Format.from_file(TWINS / f"{provider}.toml")


def everything(source, **kw):
    out = un.normalize(source, errors="collect", **kw)
    return out.records, out.rejected, out.stats, out.conflicts


def twin_inputs(provider: str):
    """Every document the suite reads for a provider: the sample, the error matrix's pages, the
    hostile and no-loss cases built from it."""
    from test_errors import MATRIX, page_with_bad_record

    yield "sample", (EXAMPLES / f"{provider}.json").read_bytes()
    for p, case, mutate, _, _ in MATRIX:
        if p == provider:
            yield case, json.dumps(page_with_bad_record(provider, mutate)[0]).encode()
    page = json.loads((EXAMPLES / f"{provider}.json").read_text())
    key = {"gitpod": "records", "consumption_log": "data"}[provider]
    dup = copy.deepcopy(page)
    dup[key] = dup[key] + dup[key][:1]
    yield "duplicate", json.dumps(dup).encode()
    yield "bare records", "\n".join(json.dumps(r) for r in page[key]).encode()
    yield "broken", b'{"' + key.encode() + b'": [{"id": 1}, {"id":'
    yield "not an object", json.dumps({key: [1, "x", None, {}]}).encode()


@pytest.mark.parametrize("provider", ["gitpod", "consumption_log"])
def test_twins_read_every_fixture_exactly_as_the_rust_formats(provider):
    cases = list(twin_inputs(provider))
    assert len(cases) >= 8
    for case, data in cases:
        rust = everything(data)
        with _formats.replacing(twin(provider)):
            file = everything(data)
            raised = None
            try:
                un.normalize(data)
            except un.NormalizeError as e:
                raised = (str(e), e.kind, e.path)
        for a, b in zip(rust, file, strict=True):
            assert_frame_equal(a, b, check_exact=True), case
        try:
            un.normalize(data)
            assert raised is None, case
        except un.NormalizeError as e:
            assert (str(e), e.kind, e.path) == raised, case


@pytest.mark.parametrize("provider", ["gitpod", "consumption_log"])
def test_twins_read_generated_benchmark_data_exactly_as_the_rust_formats(provider, tmp_path):
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import generate
    finally:
        sys.path.pop(0)
    generate.main(["--out", str(tmp_path), "--records", "3000", "--formats", provider])
    files = sorted(tmp_path.rglob("*.json*"))
    assert files
    rust = everything(files)
    with _formats.replacing(twin(provider)):
        file = everything(files)
    for a, b in zip(rust, file, strict=True):
        assert_frame_equal(a, b, check_exact=True)


# ---- a user's format file -----------------------------------------------------------------------

ACME = textwrap.dedent(
    """
    id = "acme_ci"
    title = "Acme CI minutes"
    api = "GET /v2/usage"

    [focus]
    provider = "Acme"
    service = "Acme CI"
    category = "Developer Tools"

    [page]
    records = "jobs"
    detect = { array = "jobs", has = ["acmeAccount"] }

    [record]
    detect = { has = ["jobId", "runnerMinutes"] }

    [columns]
    record_id = { path = "jobId", type = "id" }
    account_id = "$page.acmeAccount"
    project_id = { path = "repo.name" }
    metric = { value = "ci_minutes" }
    usage_start = { path = "startedAt", type = "epoch_ms", required = true }
    quantity = { path = "runnerMinutes", type = "duration", unit = "minutes", non_negative = true }
    unit = { value = "Hours" }
    cost = { path = "priceCents", type = "decimal", scale = -2 }
    currency = { path = "currency", case = "upper", default = "USD" }
    status = { path = "state", map = { ok = "succeeded", err = "failed" } }
    billable = { path = "state", map = { err = false }, otherwise = true }
    revision = { path = "updatedAt", type = "epoch_ms" }
    """
)

ACME_PAGE = {
    "acmeAccount": "acc-1",
    "jobs": [
        {"jobId": 17, "runnerMinutes": 90, "startedAt": 1717200000000, "priceCents": "123.45", "state": "ok",
         "repo": {"name": "api", "private": True}, "updatedAt": 1717200100000},
        {"jobId": 18, "runnerMinutes": 30, "startedAt": 1717203600000, "state": "err", "currency": "eur",
         "repo": {"name": "web"}},
    ],
}  # fmt: skip


def test_a_users_format_file_reads_its_exports(tmp_path):
    path = tmp_path / "acme_ci.toml"
    path.write_text(ACME)
    fmt = un.Format.from_file(path)
    assert (fmt.id, fmt.title, fmt.origin) == ("acme_ci", "Acme CI minutes", str(path))
    df = un.normalize(ACME_PAGE, formats=[fmt])
    assert_frame_equal(
        df,
        expected(
            [
                {"provider": "acme_ci", "record_id": "17", "account_id": "acc-1", "project_id": "api",
                 "metric": "ci_minutes", "usage_start": ts("2024-06-01T00:00:00Z"), "quantity": 1.5, "unit": "Hours",
                 "cost": dec("1.2345"), "currency": "USD", "status": "succeeded",
                 "tags": '{"repo.private":true}', "revision": 1717200100000000, "source_index": 0},
                {"provider": "acme_ci", "record_id": "18", "account_id": "acc-1", "project_id": "web",
                 "metric": "ci_minutes", "usage_start": ts("2024-06-01T01:00:00Z"), "quantity": 0.5, "unit": "Hours",
                 "currency": "EUR", "status": "failed", "billable": False, "source_index": 1},
            ],
            "<memory>",
        ),
    )  # fmt: skip
    # The same from a dict, and from TOML text.
    spec = __import__("tomllib").loads(ACME)
    assert_frame_equal(un.normalize(ACME_PAGE, formats=[un.Format.from_dict(spec)]), df)
    assert_frame_equal(un.normalize(ACME_PAGE, formats=[un.Format.from_toml(ACME)]), df)
    # Without the format the page is not read.
    with pytest.raises(un.NormalizeError, match="matches no known format"):
        un.normalize(ACME_PAGE)
    bad = copy.deepcopy(ACME_PAGE)
    bad["jobs"][1]["runnerMinutes"] = -1
    out = un.normalize(bad, formats=[fmt], errors="collect")
    assert out.rejected.select("provider", "path", "reason").row(0) == (
        "acme_ci",
        "$.jobs[1].runnerMinutes",
        "negative quantity -1",
    )


@pytest.mark.parametrize(
    "change, key, message",
    [
        (("columns", "bogus", "x"), "columns.bogus", "not a canonical column; allowed: record_id"),
        (("columns", "quantity", {"path": "q", "typ": "number"}), "", "unknown field `typ`, expected one of"),
        (("columns", "usage_start", {"path": "t", "type": "clock"}), "columns.usage_start.type", "not a type"),
        (("columns", "project_id", {"path": "repo..name"}), "columns.project_id.path", "an empty field name"),
        (("columns", "cost", {"path": "c", "type": "decimal", "scale": "x"}), "", "invalid type"),
        (("page", "records", "jobs[x]"), "page.records", "not an index"),
        (("record", "detect", {}), "record.detect", "an empty test"),
        (("focus", "category", "Coding"), "focus.category", '"Coding" is not a FOCUS ServiceCategory: one of AI'),
        (("focus", "subcategory", "Bots"), "focus.subcategory", "not a FOCUS ServiceSubcategory of"),
    ],
)
def test_every_mistake_in_a_format_names_the_key_and_what_is_allowed(change, key, message):
    spec = __import__("tomllib").loads(ACME)
    table, name, value = change
    spec[table][name] = value
    with pytest.raises(un.FormatError) as e:
        un.Format.from_dict(spec, name="acme.dict")
    assert e.value.origin == "acme.dict" and e.value.key == key
    assert message in str(e.value) and str(e.value).startswith("acme.dict: ")


def test_toml_mistakes_name_the_file_and_line(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text(ACME.replace('unit = { value = "Hours" }', 'unit = { value = "Hours", colour = "red" }'))
    with pytest.raises(un.FormatError) as e:
        un.Format.from_file(path)
    assert str(e.value).startswith(f"{path}: unit (line 25): unknown field `colour`, expected one of `path`")


def test_register_format_and_overlap_checks(tmp_path):
    fmt = un.Format.from_toml(ACME, name="acme.toml")
    try:
        assert un.register_format(fmt) is fmt
        assert un.normalize(ACME_PAGE).height == 2
        f = un.formats()
        assert f.filter(pl.col("provider") == "acme_ci")["origin"].unique().to_list() == ["acme.toml"]
        with pytest.raises(ValueError, match='id "acme_ci" is already registered'):
            un.register_format(un.Format.from_toml(ACME, name="again.toml"))
        focus = un.to_focus(un.normalize(ACME_PAGE))
        assert focus["ProviderName"].unique().to_list() == ["Acme"]
        assert focus["ServiceCategory"].unique().to_list() == ["Developer Tools"]
    finally:
        _formats._registered.remove(fmt)
    overlapping = ACME.replace('detect = { array = "jobs", has = ["acmeAccount"] }', 'detect = { array = "records" }')
    overlapping = overlapping.replace('records = "jobs"', 'records = "records"')
    with pytest.raises(ValueError, match='"acme_ci" \\(x.toml\\) overlaps format "gitpod" \\(built-in\\)'):
        un.register_format(un.Format.from_toml(overlapping, name="x.toml"))
    assert _formats._registered == []


def test_formats_lists_where_each_is_defined():
    f = un.formats().unique("provider", keep="first", maintain_order=True)
    origins = dict(f.select("provider", "origin").iter_rows())
    assert origins["gitpod"] == "built-in"
    assert origins["openai"] == "usagenorm/formats/openai.toml"
    r = subprocess.run([sys.executable, "-m", "usagenorm", "formats"], capture_output=True, text=True, check=True)
    assert "usagenorm/formats/github.toml" in r.stdout


def test_command_line_format_file(tmp_path):
    (tmp_path / "acme_ci.toml").write_text(ACME)
    (tmp_path / "page.json").write_text(json.dumps(ACME_PAGE))
    out = tmp_path / "usage.parquet"
    cmd = [sys.executable, "-m", "usagenorm", "normalize", str(tmp_path / "page.json"), "-o", str(out), "-q"]
    r = subprocess.run([*cmd, "--format-file", str(tmp_path / "acme_ci.toml")], check=False, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert pl.read_parquet(out)["provider"].to_list() == ["acme_ci", "acme_ci"]
    (tmp_path / "bad.toml").write_text("id = 3\n")
    r = subprocess.run([*cmd, "--format-file", str(tmp_path / "bad.toml")], check=False, capture_output=True, text=True)
    assert r.returncode == 2 and "bad.toml: id (line 1): invalid type" in r.stderr and "Traceback" not in r.stderr


def test_entry_point_formats_are_loaded(tmp_path, monkeypatch):
    """A package providing formats: an entry point in group usagenorm.formats."""
    pkg = tmp_path / "acme_formats"
    pkg.mkdir()
    (pkg / "acme_ci.toml").write_text(ACME)
    (pkg / "__init__.py").write_text(
        "from pathlib import Path\ndef formats():\n    return [Path(__file__).with_name('acme_ci.toml')]\n"
    )
    dist = tmp_path / "acme_formats-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-formats\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[usagenorm.formats]\nacme = acme_formats:formats\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(_formats, "_installed", None)
    try:
        assert [f.id for f in _formats.installed()] == ["acme_ci"]
        assert un.normalize(ACME_PAGE)["provider"].unique().to_list() == ["acme_ci"]
        origin = un.formats().filter(pl.col("provider") == "acme_ci")["origin"][0]
        assert origin.endswith("acme_formats/acme_ci.toml")
    finally:
        _formats._installed = None

"""Deterministic generator of realistic provider exports for the benchmark.

API-shaped pages of ~1,000 records per file, realistic id cardinalities, durations, statuses,
running / active resources, empty resource lists, proto3-omitted keys, offsets in timestamps.

    python bench/generate.py --records 1000000 --out bench/data/full          # pages, all formats
    python bench/generate.py --records 500000 --layout bigpage --formats exabits --out ...
    python bench/generate.py --records 2500000 --layout ndjson --formats gitpod --out ...

Layouts: ``pages`` (one JSON page per file), ``ndjson`` (one file, one record per line),
``bigpage`` (one file holding one page with every record).
"""

from __future__ import annotations

import argparse
import json
import random
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import usagenorm

# Every format the library reads, from its registry; each needs a generator below.
FORMATS = tuple(usagenorm.formats()["provider"].unique(maintain_order=True))
BASE = datetime(2024, 1, 1, tzinfo=timezone.utc)
PAGE = 1000


class Ids:
    """Pools of ids with realistic cardinalities."""

    def __init__(self, rnd: random.Random) -> None:
        def pool(n: int) -> list[str]:
            return [str(uuid.UUID(int=rnd.getrandbits(128), version=4)) for _ in range(n)]

        self.rnd = rnd
        self.users = pool(500)
        self.projects = pool(50)
        self.tenants = pool(20)
        self.resources = pool(5000)
        self.operations = pool(300)
        self.buyers = [f"buyer-{i:04d}" for i in range(200)]
        self.entitlements = pool(400)
        self.orgs = [f"org-{i}" for i in range(3)]

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rnd.getrandbits(128), version=4))


def ts(t: datetime, rnd: random.Random) -> str:
    """RFC 3339 as real exports write it: mostly Z with milliseconds, sometimes an offset."""
    r = rnd.random()
    if r < 0.8:
        return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"
    if r < 0.9:
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")
    return (t.astimezone(timezone(timedelta(hours=2)))).isoformat(timespec="milliseconds")


def gitpod(i: int, ids: Ids, rnd: random.Random) -> str:
    start = BASE + timedelta(seconds=rnd.randrange(0, 90 * 86400), milliseconds=rnd.randrange(1000))
    fields = [f'"id":"{ids.uuid()}"', f'"createdAt":"{ts(start, rnd)}"']
    fields.append(f'"environmentClassId":"{rnd.choice(["g1-standard", "g1-large", "g1-xlarge", "gpu-a10", "mini"])}"')
    fields.append(f'"environmentId":"{rnd.choice(ids.resources)}"')
    if rnd.random() < 0.95:
        project = rnd.choice(ids.projects) if rnd.random() < 0.9 else "00000000-0000-0000-0000-000000000000"
        fields.append(f'"projectId":"{project}"')
    if rnd.random() < 0.8:
        fields.append(f'"runnerId":"runner-{rnd.randrange(8)}"')
    if rnd.random() < 0.98:
        stop = start + timedelta(seconds=rnd.randrange(60, 12 * 3600))
        fields.append(f'"stoppedAt":"{ts(stop, rnd)}"')
    fields.append(f'"userId":"{rnd.choice(ids.users)}"')
    return "{" + ",".join(fields) + "}"


def suger(i: int, ids: Ids, rnd: random.Random) -> str:
    at = BASE + timedelta(seconds=rnd.randrange(0, 90 * 86400))
    dims = rnd.sample(["api_calls", "storage_gb", "seats", "compute_hours", "events"], rnd.randint(1, 3))
    quantities = {
        d: (rnd.randrange(1, 100000) if d in ("api_calls", "events", "seats") else round(rnd.random() * 500, 3))
        for d in dims
    }
    billable_only = rnd.random() < 0.2
    records = {} if billable_only else quantities
    billable = [
        {"key": d, "properties": {"region": rnd.choice(["us", "eu"])}, "quantity": q} for d, q in quantities.items()
    ]
    status = rnd.choices(
        ["REPORTED", "CREATED", "REPORT_PENDING", "REPORT_FAILED", "DELETED", "INVALID"], [70, 10, 8, 4, 5, 3]
    )[0]
    meta = {
        "billableRecords": billable if billable_only else [],
        "metronomeDailyCostAmount": round(rnd.random() * 100, 2),
        "metronomeMonthlyInvoiceAmount": round(rnd.random() * 3000, 2),
        "originRecords": quantities,
        "source": rnd.choice(["API", "METRONOME", "ORB", "LAGO", "STRIPE"]),
        "timestamp": ts(at, rnd),
    }
    group = {
        "buyerID": rnd.choice(ids.buyers),
        "creationTime": ts(at + timedelta(seconds=rnd.randrange(1, 300)), rnd),
        "entitlementID": rnd.choice(ids.entitlements),
        "id": f"urg-{i:09d}",
        "lastUpdateTime": ts(at + timedelta(seconds=rnd.randrange(300, 900)), rnd),
        "metaInfo": meta,
        "organizationID": rnd.choice(ids.orgs),
        "partner": rnd.choice(["AWS", "AZURE", "GCP"]),
        "records": records,
        "serialID": i,
        "status": status,
        "usageRecordReportID": f"rep-{rnd.randrange(10**6)}",
    }
    return json.dumps(group, separators=(",", ":"))


def exabits(i: int, ids: Ids, rnd: random.Random) -> str:
    created = int(BASE.timestamp()) + rnd.randrange(0, 90 * 86400)
    active = rnd.random() < 0.1
    uptime = rnd.randrange(1, 30 * 1440)
    fee = rnd.choice(["0.005112", "0.0125", "0.0001", "0.034", "2.0", "0.000694"])
    total = f"{float(fee) * uptime:.6f}".rstrip("0").rstrip(".")
    kind = "vm" if rnd.random() < 0.8 else "volume"
    name = f"{rnd.choice(['quiet', 'medical', 'orange'])}-{rnd.choice(['pipe', 'lake', 'fox'])}-{rnd.randrange(1000)}"
    display = f',"display_name":"{rnd.choice(["TestxA4000", "H100x8", "A100x4"])}"' if kind == "vm" else ""
    terminated = 0 if active else created + uptime * 60
    return (
        f'{{"id":"{i:024x}","resource":{{"id":"{rnd.randrange(16**24):024x}","name":"{name}"{display},"type":"{kind}"}},'
        f'"created_time":{created},"status":"{"active" if active else "terminated"}","terminated_time":{terminated},'
        f'"total_uptime":{uptime},"total_fee":{total},"per_minute_fee":{fee}}}'
    )


def vmware_item(i: int, ids: Ids, rnd: random.Random) -> str:
    at = BASE + timedelta(hours=i)
    commitment = rnd.choice([2, 4, 8])
    usage = rnd.randrange(0, 12)
    overage = max(0, usage - commitment)
    resources = [
        {"resource_id": f"host-{rnd.randrange(64):02d}", "usage_quantity": 1}
        for _ in range(min(usage, rnd.randrange(0, 4)))
    ]
    return json.dumps(
        {
            "commitment": commitment,
            "overage": overage,
            "resources": resources,
            "usage": usage,
            "usage_datetime": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        separators=(",", ":"),
    )


def consumption_log(i: int, ids: Ids, rnd: random.Random) -> str:
    start = BASE + timedelta(seconds=rnd.randrange(0, 90 * 86400))
    fields = [f'"tenantId":"{rnd.choice(ids.tenants)}"', f'"projectId":"{rnd.choice(ids.projects)}"']
    if rnd.random() < 0.9:
        fields.append(f'"resourceId":"{rnd.choice(ids.resources)}"')
    fields.append(f'"operationId":"{rnd.choice(ids.operations)}"')
    fields.append(f'"validFrom":"{ts(start, rnd)}"')
    if rnd.random() < 0.97:
        fields.append(f'"validTo":"{ts(start + timedelta(minutes=rnd.randrange(1, 600)), rnd)}"')
    fields.append(f'"unit":"{rnd.choice(["minute", "minute", "Minute"])}"')
    fields.append(f'"value":{rnd.randrange(1, 600)}')
    fields.append('"metricType":"ComputeTime"')
    fields.append(
        f'"billingInformation":{{"billingReference":"REF{rnd.randrange(100)}","billingReferenceTag":"team-{rnd.randrange(9)}",'
        f'"billingReferenceType":"EXT"}}'
    )
    return "{" + ",".join(fields) + "}"


MODELS = ["gpt-5-mini-2025-08-07", "gpt-5-2025-08-07", "gpt-4.1-nano", "o4-mini"]


def openai(i: int, ids: Ids, rnd: random.Random) -> str:
    """A completions usage result: one row per counter (input, output, requests)."""
    cached = rnd.randrange(0, 50_000)
    uncached = rnd.randrange(1, 400_000)
    return (
        f'{{"object":"organization.usage.completions.result","input_tokens":{cached + uncached},'
        f'"input_cached_tokens":{cached},"input_uncached_tokens":{uncached},"output_tokens":{rnd.randrange(1, 90_000)},'
        f'"input_audio_tokens":0,"output_audio_tokens":0,"num_model_requests":{rnd.randrange(1, 900)},'
        f'"project_id":"proj_{rnd.choice(ids.projects)[:12]}","user_id":"user-{rnd.randrange(500)}",'
        f'"api_key_id":null,"model":"{rnd.choice(MODELS)}","batch":{rnd.choice(["true", "false", "null"])},'
        f'"service_tier":null}}'
    )


def anthropic(i: int, ids: Ids, rnd: random.Random) -> str:
    """A messages usage result: one row per disjoint token kind and one for web searches."""
    workspace = f'"wrkspc_{rnd.choice(ids.projects)[:16]}"' if rnd.random() < 0.8 else "null"
    return (
        f'{{"account_id":null,"api_key_id":"apikey_{rnd.randrange(40)}","cache_creation":'
        f'{{"ephemeral_1h_input_tokens":{rnd.randrange(0, 5000)},"ephemeral_5m_input_tokens":{rnd.randrange(0, 90_000)}}},'
        f'"cache_read_input_tokens":{rnd.randrange(0, 900_000)},"context_window":null,"inference_geo":null,'
        f'"model":"claude-{rnd.choice(["sonnet-4-5-20250929", "haiku-4-5-20251001", "opus-4-1"])}",'
        f'"output_tokens":{rnd.randrange(1, 90_000)},"server_tool_use":{{"web_search_requests":{rnd.randrange(0, 30)}}},'
        f'"service_account_id":null,"service_tier":"{rnd.choice(["standard", "batch"])}",'
        f'"uncached_input_tokens":{rnd.randrange(1, 2_000_000)},"workspace_id":{workspace}}}'
    )


SKUS = [("actions", "Actions Linux", "Minutes", 0.006), ("actions", "Actions macOS 3-core", "Minutes", 0.062),
        ("actions", "Actions storage", "GigabyteHours", 0.000336), ("copilot", "Copilot Premium Request", "requests", 0.04),
        ("packages", "Packages data transfer", "gigabytes", 0.5)]  # fmt: skip


def github(i: int, ids: Ids, rnd: random.Random) -> str:
    product, sku, unit, price = rnd.choice(SKUS)
    quantity = rnd.randrange(1, 5000) + (rnd.randrange(0, 100) / 100 if unit == "GigabyteHours" else 0)
    gross = round(quantity * price, 3)
    discount = gross if rnd.random() < 0.3 else 0.0
    # A usage item is identified by its day, SKU, organization and repository: (day, repository)
    # is unique per item here, so the benchmark's items are distinct records.
    day = (BASE + timedelta(days=i % 365)).strftime("%Y-%m-%dT00:00:00Z")
    repo = f',"repositoryName":"repo-{i // 365}"'
    return (
        f'{{"date":"{day}","product":"{product}","sku":"{sku}","quantity":{float(quantity)},"unitType":"{unit}",'
        f'"pricePerUnit":{price},"grossAmount":{gross},"discountAmount":{discount},'
        f'"netAmount":{round(gross - discount, 3)},"organizationName":"{rnd.choice(ids.orgs)}"{repo}}}'
    )


RECORD = {
    "gitpod": gitpod,
    "suger": suger,
    "exabits": exabits,
    "vmware": vmware_item,
    "consumption_log": consumption_log,
    "openai": openai,
    "anthropic": anthropic,
    "github": github,
}

# Results per time bucket in the formats whose records are nested in buckets.
BUCKET = 50


def page(fmt: str, records: list[str], number: int, total: int) -> str:
    body = ",".join(records)
    if fmt == "gitpod":
        return (
            f'{{"pagination":{{"nextToken":"{"" if number * PAGE >= total else f"tok{number}"}"}},"records":[{body}]}}'
        )
    if fmt == "suger":
        return f'{{"nextOffset":{number * PAGE},"usageRecordGroups":[{body}]}}'
    if fmt == "exabits":
        return f'{{"status":true,"message":"Getting resources usage successful","data":[{body}],"total":{total}}}'
    if fmt == "vmware":
        meta = (
            '{"charge_attributes":{"region":"us-west-2"},"display_name":"VMC host usage","metric_id":"vmc-host-count",'
            '"service_definition_id":"svc-vmc-aws","unit_of_measure_display_name":"Host"}'
        )
        return (
            f'{{"content":[{body}],"empty":false,"first":{str(number == 1).lower()},"last":false,"metadata":{meta},'
            f'"number":{number - 1},"number_of_elements":{len(records)},"size":{PAGE},"total_elements":{total},'
            f'"total_pages":{(total + PAGE - 1) // PAGE}}}'
        )
    if fmt in ("openai", "anthropic"):
        buckets = []
        for b in range(0, len(records), BUCKET):
            start = BASE + timedelta(days=(number - 1) * PAGE // BUCKET + b // BUCKET)
            results = ",".join(records[b : b + BUCKET])
            if fmt == "openai":
                t = int(start.timestamp())
                buckets.append(f'{{"object":"bucket","start_time":{t},"end_time":{t + 86400},"results":[{results}]}}')
            else:
                s, e = start.strftime("%Y-%m-%dT%H:%M:%SZ"), (start + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
                buckets.append(f'{{"starting_at":"{s}","ending_at":"{e}","results":[{results}]}}')
        more = str(number * PAGE < total).lower()
        head = '"object":"page",' if fmt == "openai" else ""
        return f'{{{head}"data":[{",".join(buckets)}],"has_more":{more},"next_page":null}}'
    if fmt == "github":
        return f'{{"usageItems":[{body}]}}'
    return f'{{"offset":{(number - 1) * PAGE},"limit":{PAGE},"data":[{body}]}}'


def generate(fmt: str, n: int, out: Path, layout: str, seed: int) -> list[Path]:
    rnd = random.Random(f"{seed}-{fmt}")
    ids = Ids(rnd)
    make = RECORD[fmt]
    folder = out / fmt
    folder.mkdir(parents=True, exist_ok=True)
    if layout == "pages":
        files = []
        for p in range(0, n, PAGE):
            recs = [make(i, ids, rnd) for i in range(p, min(n, p + PAGE))]
            f = folder / f"page-{p // PAGE:06d}.json"
            f.write_text(page(fmt, recs, p // PAGE + 1, n))
            files.append(f)
        return files
    if layout == "ndjson":
        f = folder / "all.ndjson"
        with f.open("w") as fh:
            for i in range(n):
                fh.write(make(i, ids, rnd))
                fh.write("\n")
        return [f]
    f = folder / "bigpage.json"
    f.write_text(page(fmt, [make(i, ids, rnd) for i in range(n)], 1, n))
    return [f]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=10_000, help="records per format")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--layout", choices=("pages", "ndjson", "bigpage"), default="pages")
    ap.add_argument("--formats", default=",".join(FORMATS))
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args(argv)
    for fmt in args.formats.split(","):
        files = generate(fmt, args.records, args.out, args.layout, args.seed)
        size = sum(f.stat().st_size for f in files)
        print(f"{fmt}: {args.records} records, {len(files)} file(s), {size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()

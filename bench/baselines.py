"""What a good data scientist would write by hand instead of usagenorm, to compare against.

Each ``polars_*`` / ``pandas_*`` function takes the page files of one format and returns a frame
with the canonical columns that matter (ids, metric, times, quantity in Hours, money, status,
billable, tags as JSON). They are written honestly: vectorized, one read per file, no Python
loops over records. They do less than usagenorm (no per-record error reporting, no dedupe, no
exact decimals in pandas) — the comparison flatters them, not us.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import polars as pl

TS = "%Y-%m-%dT%H:%M:%S%.f%#z"
NIL = "00000000-0000-0000-0000-000000000000"


def _ts(col: str) -> pl.Expr:
    return pl.col(col).str.to_datetime(TS, time_zone="UTC", time_unit="us")


def _pages(files: list[Path], key: str) -> pl.DataFrame:
    frames = [pl.read_json(f).select(pl.col(key).explode()).unnest(key) for f in files]
    return pl.concat(frames, how="diagonal_relaxed")


#: Set while a lean baseline runs: the canonical columns a data scientist would actually build,
#: without the JSON tags (``POLARS_LEAN``).
LEAN = False


def _json(*fields: str | pl.Expr) -> pl.Expr:
    """The ``tags`` column: these fields as a JSON object (null in a lean baseline)."""
    if LEAN:
        return pl.lit(None, pl.String).alias("tags")
    return pl.struct(*fields).struct.json_encode().alias("tags")


def _tags(df: pl.DataFrame, mapped: set[str]) -> pl.Expr:
    rest = [c for c in df.columns if c not in mapped]
    return _json(*rest) if rest else pl.lit("{}").alias("tags")


def polars_gitpod(files: list[Path]) -> pl.DataFrame:
    df = _pages(files, "records")
    mapped = {"id", "createdAt", "stoppedAt", "environmentClassId", "environmentId", "projectId", "userId"}
    start, end = _ts("createdAt"), _ts("stoppedAt")
    return df.select(
        pl.lit("gitpod").alias("provider"),
        pl.col("id").alias("record_id"),
        pl.when(pl.col("projectId") != NIL).then(pl.col("projectId")).alias("project_id"),
        pl.col("userId").alias("user_id"),
        pl.col("environmentId").alias("resource_id"),
        pl.lit("environment_runtime").alias("metric"),
        pl.col("environmentClassId").alias("sku"),
        start.alias("usage_start"),
        end.alias("usage_end"),
        ((end - start).dt.total_microseconds() / 3.6e9).alias("quantity"),
        pl.lit("Hours").alias("unit"),
        _tags(df, mapped),
    )


def polars_suger(files: list[Path]) -> pl.DataFrame:
    df = _pages(files, "usageRecordGroups").with_row_index("group")
    meta = df.select("group", pl.col("metaInfo").struct.field("timestamp").alias("ts"))
    # Dimensions of `records` (a struct whose fields differ by group): unpivot them.
    dims = df.select("group", pl.col("records")).unnest("records")
    long = dims.unpivot(index="group", variable_name="metric", value_name="quantity").drop_nulls("quantity")
    # Groups without records: their billable records.
    billable = (
        df.select("group", pl.col("metaInfo").struct.field("billableRecords").alias("b"))
        .explode("b")
        .drop_nulls("b")
        .select(
            "group",
            pl.col("b").struct.field("key").alias("metric"),
            pl.col("b").struct.field("quantity").cast(pl.Float64).alias("quantity"),
        )
    )
    rows = pl.concat(
        [
            long.with_columns(pl.col("quantity").cast(pl.Float64)),
            billable.join(long.select("group").unique(), on="group", how="anti"),
        ]
    )
    base = df.select(
        "group",
        "id",
        "organizationID",
        "buyerID",
        "entitlementID",
        "status",
        "creationTime",
        _json(pl.exclude("group", "id", "organizationID", "buyerID", "entitlementID", "status", "records")),
    ).join(meta, on="group")
    start = pl.coalesce(_ts("ts"), _ts("creationTime"))
    return (
        rows.join(base, on="group")
        .sort("group")
        .select(
            pl.lit("suger").alias("provider"),
            pl.col("id").alias("record_id"),
            pl.col("organizationID").alias("account_id"),
            pl.col("buyerID").alias("customer_id"),
            pl.col("entitlementID").alias("resource_id"),
            "metric",
            start.alias("usage_start"),
            start.alias("usage_end"),
            "quantity",
            "status",
            (~pl.col("status").is_in(["DELETED", "INVALID"])).alias("billable"),
            "tags",
        )
    )


def polars_exabits(files: list[Path]) -> pl.DataFrame:
    df = _pages(files, "data")
    res = pl.col("resource")
    start = pl.from_epoch("created_time", time_unit="s").dt.replace_time_zone("UTC").dt.cast_time_unit("us")
    end = (
        pl.when(pl.col("terminated_time") > 0)
        .then(pl.from_epoch("terminated_time", time_unit="s"))
        .dt.replace_time_zone("UTC")
    )
    return df.select(
        pl.lit("exabits").alias("provider"),
        pl.col("id").alias("record_id"),
        res.struct.field("id").alias("resource_id"),
        pl.coalesce(res.struct.field("display_name"), res.struct.field("name")).alias("resource_name"),
        res.struct.field("type").alias("resource_type"),
        pl.lit("uptime").alias("metric"),
        start.alias("usage_start"),
        end.dt.cast_time_unit("us").alias("usage_end"),
        (pl.col("total_uptime") / 60).alias("quantity"),
        pl.lit("Hours").alias("unit"),
        # Floats: exact decimals are not what people write by hand here.
        pl.col("total_fee").cast(pl.Decimal(38, 9)).alias("cost"),
        (pl.col("per_minute_fee") * 60).cast(pl.Decimal(38, 9)).alias("unit_price"),
        pl.lit("USD").alias("currency"),
        "status",
        _json(res.struct.field("name").alias("resource.name")),
    )


def polars_vmware(files: list[Path]) -> pl.DataFrame:
    frames = []
    for f in files:
        page = pl.read_json(f)
        meta = page["metadata"].struct.unnest()
        items = (
            page.select(pl.col("content").explode())
            .unnest("content")
            .with_columns(metric=pl.lit(meta["metric_id"][0]), unit=pl.lit(meta["unit_of_measure_display_name"][0]))
        )
        frames.append(items)
    df = pl.concat(frames, how="diagonal_relaxed")
    start = _ts("usage_datetime")
    base = df.with_columns(
        usage_start=start,
        usage_end=start + pl.duration(hours=1),
        tags=_json("commitment", "overage", "resources", "usage"),
    )
    committed = base.with_columns(
        charge_type=pl.lit("committed"), quantity=(pl.col("usage") - pl.col("overage")).cast(pl.Float64)
    )
    overage = base.filter(pl.col("overage") > 0).with_columns(
        charge_type=pl.lit("overage"), quantity=pl.col("overage").cast(pl.Float64)
    )
    cols = ["metric", "charge_type", "usage_start", "usage_end", "quantity", "unit", "tags"]
    return pl.concat([committed.select(cols), overage.select(cols)]).with_columns(pl.lit("vmware").alias("provider"))


def polars_consumption_log(files: list[Path]) -> pl.DataFrame:
    df = _pages(files, "data")
    mapped = {"tenantId", "projectId", "resourceId", "metricType", "validFrom", "validTo", "value", "unit"}
    minutes = pl.col("unit").str.to_lowercase() == "minute"
    return df.select(
        pl.lit("consumption_log").alias("provider"),
        pl.col("tenantId").alias("account_id"),
        pl.col("projectId").alias("project_id"),
        pl.col("resourceId").alias("resource_id"),
        pl.col("metricType").alias("metric"),
        _ts("validFrom").alias("usage_start"),
        _ts("validTo").alias("usage_end"),
        pl.when(minutes).then(pl.col("value") / 60).otherwise(pl.col("value")).cast(pl.Float64).alias("quantity"),
        pl.when(minutes).then(pl.lit("Hours")).otherwise(pl.col("unit")).alias("unit"),
        _tags(df, mapped),
    )


def _results(files: list[Path]) -> pl.DataFrame:
    """The results of every bucket of every page, with the bucket's fields beside them."""
    frames = []
    for f in files:
        buckets = pl.read_json(f).select(pl.col("data").explode()).unnest("data")
        keep = [c for c in buckets.columns if c not in ("object", "results")]
        frames.append(buckets.select(*keep, pl.col("results")).explode("results").unnest("results"))
    return pl.concat(frames, how="diagonal_relaxed")


def polars_openai(files: list[Path]) -> pl.DataFrame:
    df = _results(files)
    counters = ["input_tokens", "output_tokens", "num_model_requests"]
    dims = ["object", "project_id", "user_id", "model", "start_time", "end_time"]
    mapped = {*counters, "project_id", "user_id", "model", "start_time", "end_time"}
    df = df.with_columns(_tags(df, mapped))
    long = df.unpivot(index=[*dims, "tags"], on=counters, variable_name="metric", value_name="quantity")
    return long.select(
        pl.lit("openai").alias("provider"),
        pl.col("project_id"),
        pl.col("user_id"),
        pl.col("metric"),
        pl.col("model").alias("sku"),
        pl.from_epoch("start_time", time_unit="s").dt.replace_time_zone("UTC").alias("usage_start"),
        pl.from_epoch("end_time", time_unit="s").dt.replace_time_zone("UTC").alias("usage_end"),
        pl.col("quantity").cast(pl.Float64),
        pl.when(pl.col("metric") == "num_model_requests").then(pl.lit("requests")).otherwise(pl.lit("tokens")).alias("unit"),
        pl.col("tags"),
    )


def polars_anthropic(files: list[Path]) -> pl.DataFrame:
    df = _results(files)
    df = df.with_columns(
        pl.col("cache_creation").struct.field("ephemeral_5m_input_tokens").alias("cache_creation.ephemeral_5m_input_tokens"),
        pl.col("cache_creation").struct.field("ephemeral_1h_input_tokens").alias("cache_creation.ephemeral_1h_input_tokens"),
        pl.col("server_tool_use").struct.field("web_search_requests").alias("server_tool_use.web_search_requests"),
    ).drop("cache_creation", "server_tool_use")
    counters = [
        "uncached_input_tokens",
        "cache_creation.ephemeral_5m_input_tokens",
        "cache_creation.ephemeral_1h_input_tokens",
        "cache_read_input_tokens",
        "output_tokens",
        "server_tool_use.web_search_requests",
    ]
    mapped = {*counters, "workspace_id", "account_id", "model", "starting_at", "ending_at"}
    df = df.with_columns(_tags(df, mapped))
    long = df.unpivot(
        index=["workspace_id", "account_id", "model", "starting_at", "ending_at", "tags"],
        on=counters,
        variable_name="metric",
        value_name="quantity",
    )
    return long.select(
        pl.lit("anthropic").alias("provider"),
        pl.col("workspace_id").alias("project_id"),
        pl.col("account_id").alias("user_id"),
        pl.col("metric"),
        pl.col("model").alias("sku"),
        _ts("starting_at").alias("usage_start"),
        _ts("ending_at").alias("usage_end"),
        pl.col("quantity").cast(pl.Float64),
        pl.when(pl.col("metric").str.starts_with("server_tool_use"))
        .then(pl.lit("requests"))
        .otherwise(pl.lit("tokens"))
        .alias("unit"),
        pl.col("tags"),
    )


def polars_github(files: list[Path]) -> pl.DataFrame:
    df = _pages(files, "usageItems")
    mapped = {"date", "product", "sku", "quantity", "unitType", "netAmount", "organizationName", "repositoryName"}
    minutes = pl.col("unitType").str.to_lowercase() == "minutes"
    day = _ts("date")
    return df.select(
        pl.lit("github").alias("provider"),
        pl.col("organizationName").alias("account_id"),
        pl.col("repositoryName").alias("project_id"),
        pl.col("product").alias("resource_type"),
        pl.col("sku").alias("metric"),
        pl.col("sku"),
        day.alias("usage_start"),
        day.alias("usage_end"),
        pl.when(minutes).then(pl.col("quantity") / 60).otherwise(pl.col("quantity")).alias("quantity"),
        pl.when(minutes).then(pl.lit("Hours")).otherwise(pl.col("unitType")).alias("unit"),
        pl.col("netAmount").cast(pl.Decimal(38, 9)).alias("cost"),
        pl.lit("USD").alias("currency"),
        _tags(df, mapped),
    )


# ---- pandas ---------------------------------------------------------------------------------


def _pandas_pages(files: list[Path], key: str, meta: list | None = None):
    import pandas as pd

    frames = []
    for f in files:
        with open(f) as fh:
            doc = json.load(fh)
        frames.append(pd.json_normalize(doc, record_path=key, meta=meta or []))
    return pd.concat(frames, ignore_index=True)


def _pd_ts(s):
    import pandas as pd

    return pd.to_datetime(s, utc=True, format="ISO8601")


def pandas_gitpod(files: list[Path]):
    df = _pandas_pages(files, "records")
    out = df.rename(
        columns={"id": "record_id", "userId": "user_id", "environmentId": "resource_id", "environmentClassId": "sku"}
    )
    out["project_id"] = df["projectId"].where(df["projectId"] != NIL)
    out["usage_start"] = _pd_ts(df["createdAt"])
    out["usage_end"] = _pd_ts(df["stoppedAt"])
    out["quantity"] = (out["usage_end"] - out["usage_start"]).dt.total_seconds() / 3600
    out["provider"], out["metric"], out["unit"] = "gitpod", "environment_runtime", "Hours"
    out["tags"] = df[["runnerId"]].to_json(orient="records", lines=True).splitlines()
    return out


def pandas_suger(files: list[Path]):
    import pandas as pd

    df = _pandas_pages(files, "usageRecordGroups")
    dims = [c for c in df.columns if c.startswith("records.")]
    long = df.melt(
        id_vars=["id", "organizationID", "buyerID", "entitlementID", "status", "metaInfo.timestamp", "creationTime"],
        value_vars=dims,
        var_name="metric",
        value_name="quantity",
    ).dropna(subset=["quantity"])
    long["metric"] = long["metric"].str.removeprefix("records.")
    with_records = set(long["id"])
    bill = df[~df["id"].isin(with_records)][
        [
            "id",
            "organizationID",
            "buyerID",
            "entitlementID",
            "status",
            "metaInfo.timestamp",
            "creationTime",
            "metaInfo.billableRecords",
        ]
    ].explode("metaInfo.billableRecords")
    bill = bill.dropna(subset=["metaInfo.billableRecords"])
    bill["metric"] = bill["metaInfo.billableRecords"].map(lambda b: b["key"])
    bill["quantity"] = bill["metaInfo.billableRecords"].map(lambda b: b["quantity"])
    out = pd.concat([long, bill.drop(columns=["metaInfo.billableRecords"])], ignore_index=True)
    out["usage_start"] = _pd_ts(out["metaInfo.timestamp"].fillna(out["creationTime"]))
    out["billable"] = ~out["status"].isin(["DELETED", "INVALID"])
    out["provider"] = "suger"
    return out


def pandas_exabits(files: list[Path]):
    import pandas as pd

    df = _pandas_pages(files, "data")
    df["usage_start"] = pd.to_datetime(df["created_time"], unit="s", utc=True)
    df["usage_end"] = pd.to_datetime(df["terminated_time"].where(df["terminated_time"] > 0), unit="s", utc=True)
    df["quantity"] = df["total_uptime"] / 60
    df["unit_price"] = df["per_minute_fee"] * 60
    df["provider"], df["metric"], df["unit"], df["currency"] = "exabits", "uptime", "Hours", "USD"
    return df


def pandas_vmware(files: list[Path]):
    import pandas as pd

    df = _pandas_pages(files, "content", meta=[["metadata", "metric_id"], ["metadata", "unit_of_measure_display_name"]])
    df["usage_start"] = _pd_ts(df["usage_datetime"])
    df["usage_end"] = df["usage_start"] + pd.Timedelta(hours=1)
    committed = df.assign(charge_type="committed", quantity=df["usage"] - df["overage"])
    overage = df[df["overage"] > 0].assign(charge_type="overage", quantity=lambda d: d["overage"])
    return pd.concat([committed, overage], ignore_index=True).assign(provider="vmware")


def pandas_consumption_log(files: list[Path]):
    df = _pandas_pages(files, "data")
    minutes = df["unit"].str.lower() == "minute"
    df["quantity"] = df["value"].where(~minutes, df["value"] / 60)
    df["usage_start"] = _pd_ts(df["validFrom"])
    df["usage_end"] = _pd_ts(df["validTo"])
    df["provider"] = "consumption_log"
    return df


def _pandas_results(files: list[Path]):
    import pandas as pd

    frames = []
    for f in files:
        with open(f) as fh:
            doc = json.load(fh)
        frames.append(pd.json_normalize(doc["data"], record_path="results"))
        times = [(b.get("start_time", b.get("starting_at")), b.get("end_time", b.get("ending_at"))) for b in doc["data"]
                 for _ in b["results"]]  # fmt: skip
        frames[-1]["_start"] = [t[0] for t in times]
        frames[-1]["_end"] = [t[1] for t in times]
    return pd.concat(frames, ignore_index=True)


def _pandas_counters(df, counters: list[str], provider: str, unit):
    import pandas as pd

    rest = [c for c in df.columns if c not in {*counters, "_start", "_end"}]
    df["tags"] = df[rest].to_json(orient="records", lines=True).splitlines()
    long = df.melt(id_vars=["_start", "_end", "tags"], value_vars=counters, var_name="metric", value_name="quantity")
    long["provider"] = provider
    long["unit"] = long["metric"].map(unit)
    for col in ("_start", "_end"):
        v = long[col]
        long[col] = pd.to_datetime(v, unit="s", utc=True) if v.dtype.kind in "iu" else pd.to_datetime(v, utc=True)
    return long


def pandas_openai(files: list[Path]):
    counters = ["input_tokens", "output_tokens", "num_model_requests"]
    return _pandas_counters(
        _pandas_results(files), counters, "openai", lambda m: "requests" if m == "num_model_requests" else "tokens"
    )


def pandas_anthropic(files: list[Path]):
    counters = [
        "uncached_input_tokens",
        "cache_creation.ephemeral_5m_input_tokens",
        "cache_creation.ephemeral_1h_input_tokens",
        "cache_read_input_tokens",
        "output_tokens",
        "server_tool_use.web_search_requests",
    ]
    return _pandas_counters(
        _pandas_results(files), counters, "anthropic", lambda m: "requests" if m.startswith("server") else "tokens"
    )


def pandas_github(files: list[Path]):
    import pandas as pd

    df = _pandas_pages(files, "usageItems")
    minutes = df["unitType"].str.lower() == "minutes"
    df["quantity"] = df["quantity"].where(~minutes, df["quantity"] / 60)
    df["unit"] = df["unitType"].where(~minutes, "Hours")
    df["usage_start"] = pd.to_datetime(df["date"], utc=True)
    df["provider"] = "github"
    return df


POLARS = {
    "gitpod": polars_gitpod,
    "suger": polars_suger,
    "exabits": polars_exabits,
    "vmware": polars_vmware,
    "consumption_log": polars_consumption_log,
    "openai": polars_openai,
    "anthropic": polars_anthropic,
    "github": polars_github,
}
PANDAS = {
    "gitpod": pandas_gitpod,
    "suger": pandas_suger,
    "exabits": pandas_exabits,
    "vmware": pandas_vmware,
    "consumption_log": pandas_consumption_log,
    "openai": pandas_openai,
    "anthropic": pandas_anthropic,
    "github": pandas_github,
}


def _lean(fn: Callable[[list[Path]], pl.DataFrame]) -> Callable[[list[Path]], pl.DataFrame]:
    def run(files: list[Path]) -> pl.DataFrame:
        global LEAN
        LEAN = True
        try:
            return fn(files)
        finally:
            LEAN = False

    return run


#: The same Polars code without the tags: what a user who needs the numbers, not every field,
#: writes. The leanest honest baseline.
POLARS_LEAN = {fmt: _lean(fn) for fmt, fn in POLARS.items()}

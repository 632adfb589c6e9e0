//! Gitpod `UsageService/ListEnvironmentUsageRecords`: one row per environment runtime record,
//! usage from `createdAt` to `stoppedAt` in hours. Fields follow proto3 JSON, so any key may be
//! missing; a record without `stoppedAt` is still running (usage_end null, quantity null).

use std::borrow::Cow;

use super::{absent, has_array, Format, FormatInfo, ReadOptions, WholeSource};
use crate::json::{FieldError, FieldResult, RawObject};
use crate::schema::Tags;
use crate::schema::{Row, HOURS};
use crate::time::MICROS_PER_HOUR;

pub struct Gitpod;

/// proto3's "no project": the all-zero UUID.
const NIL_UUID: &str = "00000000-0000-0000-0000-000000000000";

static INFO: std::sync::LazyLock<FormatInfo> = std::sync::LazyLock::new(|| {
    FormatInfo::builtin(
        "gitpod",
        "Gitpod environment runtime records",
        "POST gitpod.v1.UsageService/ListEnvironmentUsageRecords",
        ["Gitpod", "Gitpod Environments", "Developer Tools", "Development Environments", "environment"],
        &[
            ("record_id", "id"),
            ("project_id", "projectId (the all-zero UUID means none: null)"),
            ("user_id", "userId"),
            ("resource_id", "environmentId"),
            ("resource_type", "\"environment\""),
            ("metric", "\"environment_runtime\""),
            ("sku", "environmentClassId"),
            ("usage_start", "createdAt"),
            ("usage_end", "stoppedAt (null while running)"),
            ("quantity", "stoppedAt − createdAt in hours (null while running)"),
            ("unit", "\"Hours\""),
            ("status", "\"stopped\", or \"running\" without stoppedAt"),
            ("tags", "runnerId and any other field"),
        ],
    )
});

const MAPPED: &[&str] = &["id", "createdAt", "stoppedAt", "environmentClassId", "environmentId", "projectId", "userId"];

impl Format for Gitpod {
    type Page = ();

    fn info(&self) -> &FormatInfo {
        &INFO
    }

    fn records_key(&self) -> &str {
        "records"
    }

    /// A page holds `records`; proto3 JSON omits an empty list, so the last page of a listing
    /// (or a quiet day) is `{"pagination": {}}` or `{"pagination": {"nextToken": ""}}`.
    fn is_page(&self, obj: &RawObject) -> bool {
        has_array(obj, "records")
            || (absent(obj, "records") && obj.has("pagination") && !obj.has("createdAt") && !self.is_record(obj))
    }

    fn is_record(&self, obj: &RawObject) -> bool {
        ["environmentId", "environmentClassId", "runnerId"].iter().any(|k| obj.has(k))
            || (obj.has("createdAt") && obj.has("stoppedAt"))
    }

    fn page(&self, _: Option<&RawObject>, _: &[&str], _: &ReadOptions, _: &WholeSource) -> FieldResult<()> {
        Ok(())
    }

    fn rows<'a>(&self, rec: &RawObject<'a>, _: &(), out: &mut Vec<Row<'a>>) -> FieldResult<()> {
        let start = rec.time("createdAt")?.ok_or_else(|| FieldError::missing("createdAt", ""))?;
        let end = rec.time("stoppedAt")?;
        let mut row = Row::new("environment_runtime", start);
        if let Some(end) = end {
            if end < start {
                return Err(FieldError::new("stoppedAt", "ends before createdAt"));
            }
            row.quantity = Some((end - start) as f64 / MICROS_PER_HOUR as f64);
        }
        row.usage_end = end;
        row.record_id = rec.id("id")?;
        row.project_id = rec.str("projectId")?.filter(|p| p != NIL_UUID);
        row.user_id = rec.str("userId")?;
        row.resource_id = rec.str("environmentId")?;
        row.resource_type = Some(Cow::Borrowed("environment"));
        row.sku = rec.str("environmentClassId")?;
        row.unit = Some(Cow::Borrowed(HOURS));
        row.status = Some(Cow::Borrowed(if end.is_some() { "stopped" } else { "running" }));
        let mut tags = Tags::new();
        tags.rest(rec, MAPPED, "")?;
        row.tags = tags.finish();
        out.push(row);
        Ok(())
    }
}

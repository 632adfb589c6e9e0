//! The consumption-log API (`POST .../consumption/log/list`, `/my-list` pages with
//! `{offset, limit, data}`, and `/log/{id}` single objects). `unit` is matched without regard
//! to case; durations become Hours. A dimension the query aggregated ("all") comes back null
//! or missing and stays null; a log without `validFrom` (time aggregated) has no usage time
//! and is rejected with that reason.

use std::borrow::Cow;

use super::{
    absent, count_warning, duration_to_hours, first_item_is, has_array, Format, FormatInfo, ReadOptions, WholeSource,
};
use crate::json::{FieldError, FieldResult, RawObject};
use crate::schema::Tags;
use crate::schema::{Row, HOURS};

pub struct ConsumptionLog;

static INFO: std::sync::LazyLock<FormatInfo> = std::sync::LazyLock::new(|| {
    FormatInfo::builtin(
        "consumption_log",
        "Consumption log of compute minutes",
        "POST /api/consumption/log/list, /log/my-list, /log/{id}",
        ["Consumption Log", "Compute Time", "Compute", "Other (Compute)", "Compute Resource"],
        &[
            ("record_id", "id (single-log responses)"),
            ("account_id", "tenantId"),
            ("project_id", "projectId"),
            ("resource_id", "resourceId"),
            ("metric", "metricType (\"all\" when the query aggregated it away)"),
            ("usage_start", "validFrom"),
            ("usage_end", "validTo (null when missing: an open entry)"),
            ("quantity", "value (durations converted to Hours)"),
            ("unit", "unit, any case (durations as \"Hours\")"),
            ("tags", "operationId, billingInformation, client*, createdAt, tags{}, original unit"),
        ],
    )
});

const MAPPED: &[&str] =
    &["id", "tenantId", "projectId", "resourceId", "metricType", "validFrom", "validTo", "value", "unit"];

impl Format for ConsumptionLog {
    /// A warning when the page holds more records than its `limit`.
    type Page = Option<String>;

    fn info(&self) -> &FormatInfo {
        &INFO
    }

    fn records_key(&self) -> &str {
        "data"
    }

    fn is_page(&self, obj: &RawObject) -> bool {
        let paged = obj.has("offset") || obj.has("limit");
        // An empty page may omit `data` (or send null) and keep its offset and limit.
        ((has_array(obj, "data") && (paged || first_item_is(obj, "data", |r| self.is_record(r))))
            || (absent(obj, "data") && paged && !self.is_record(obj)))
            && !obj.has("status")
    }

    fn is_record(&self, obj: &RawObject) -> bool {
        ["metricType", "validFrom", "tenantId", "billingInformation", "operationId"].iter().any(|k| obj.has(k))
    }

    fn page(
        &self,
        envelope: Option<&RawObject>,
        records: &[&str],
        _: &ReadOptions,
        _: &WholeSource,
    ) -> FieldResult<Option<String>> {
        // `limit` 0 means "no limit" in the API's own examples.
        let limited = envelope.and_then(|e| e.number("limit").ok().flatten()).is_some_and(|l| l > 0.0);
        Ok(if limited { count_warning(envelope, "limit", records.len(), true) } else { None })
    }

    fn rows<'a>(&self, rec: &RawObject<'a>, page: &Option<String>, out: &mut Vec<Row<'a>>) -> FieldResult<()> {
        let start = rec
            .time("validFrom")?
            .ok_or_else(|| FieldError::missing("validFrom", " (a log aggregated over Time has no usage time)"))?;
        let end = rec.time("validTo")?;
        if end.is_some_and(|e| e < start) {
            return Err(FieldError::new("validTo", "ends before validFrom"));
        }
        let value = rec.number("value")?.ok_or_else(|| FieldError::missing("value", ""))?;
        if value < 0.0 {
            return Err(FieldError::new("value", format!("negative quantity {value}")));
        }
        let unit = rec.str("unit")?;
        let mut tags = Tags::new();
        let (quantity, unit) = match unit.as_deref().and_then(|u| duration_to_hours(value, u)) {
            Some(hours) => {
                if let Some(u) = rec.get("unit") {
                    tags.raw("unit", u)?;
                }
                (hours, Some(Cow::Borrowed(HOURS)))
            }
            None => (value, unit),
        };
        let metric = rec.str("metricType")?.filter(|m| !m.is_empty()).unwrap_or(Cow::Borrowed("all"));
        let mut row = Row::new(metric, start);
        row.usage_end = end;
        row.record_id = rec.id("id")?;
        row.account_id = rec.str("tenantId")?;
        row.project_id = rec.str("projectId")?;
        row.resource_id = rec.str("resourceId")?;
        row.quantity = Some(quantity);
        row.unit = unit;
        tags.rest(rec, MAPPED, "")?;
        if let Some(w) = page {
            tags.str("_page_warning", w);
        }
        row.tags = tags.finish();
        out.push(row);
        Ok(())
    }
}

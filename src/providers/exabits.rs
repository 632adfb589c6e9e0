//! Exabits GPU cloud `GET billing/resources/usage`: one row per resource usage item, quantity
//! = `total_uptime` minutes in hours, cost = `total_fee` read exactly from the number's text.
//! An error comes back as HTTP 200 with `{"status": false, "message": ...}`: that page is
//! rejected with the provider's message, never read as an empty page.

use std::borrow::Cow;

use super::{absent, count_warning, first_item_is, has_array, Format, FormatInfo, ReadOptions, WholeSource};
use crate::json::{FieldError, FieldResult, RawObject};
use crate::schema::Tags;
use crate::schema::{Row, HOURS};

pub struct Exabits;

static INFO: std::sync::LazyLock<FormatInfo> = std::sync::LazyLock::new(|| {
    FormatInfo::builtin(
        "exabits",
        "Exabits GPU cloud resource usage costs",
        "GET billing/resources/usage",
        ["Exabits", "Exabits GPU Cloud", "Compute", "Virtual Machines", "GPU Cloud Resource"],
        &[
            ("record_id", "id"),
            ("resource_id", "resource.id"),
            ("resource_name", "resource.display_name, else resource.name"),
            ("resource_type", "resource.type (vm, volume)"),
            ("metric", "\"uptime\""),
            ("usage_start", "created_time (unix seconds)"),
            ("usage_end", "terminated_time (null while active: 0 or missing)"),
            ("quantity", "total_uptime minutes / 60"),
            ("unit", "\"Hours\""),
            ("cost", "total_fee (exact decimal)"),
            ("unit_price", "per_minute_fee × 60 (per hour, exact decimal)"),
            ("currency", "\"USD\""),
            ("status", "status (active, terminated)"),
            ("tags", "resource.name, any other field"),
        ],
    )
});

const MAPPED: &[&str] =
    &["id", "resource", "created_time", "terminated_time", "status", "total_uptime", "total_fee", "per_minute_fee"];
const RESOURCE_MAPPED: &[&str] = &["id", "display_name", "type"];

impl Format for Exabits {
    /// A warning when the page's `total` is below the records it holds.
    type Page = Option<String>;

    fn info(&self) -> &FormatInfo {
        &INFO
    }

    fn records_key(&self) -> &str {
        "data"
    }

    fn is_page(&self, obj: &RawObject) -> bool {
        let error_page = obj.get("status").is_some_and(|s| s.get() == "false") && obj.has("message");
        let marked = obj.has("status") || obj.has("total") || obj.has("message");
        // An empty page may omit `data` (or send null) beside `status: true` and `total`.
        let empty_page = absent(obj, "data") && obj.get("status").is_some_and(|s| s.get() == "true");
        (error_page
            || (has_array(obj, "data") && (marked || first_item_is(obj, "data", |r| self.is_record(r))))
            || empty_page)
            && !obj.has("offset")
            && !obj.has("limit")
            && !self.is_record(obj)
    }

    fn is_record(&self, obj: &RawObject) -> bool {
        obj.has("resource")
            && ["total_uptime", "per_minute_fee", "total_fee", "created_time"].iter().any(|k| obj.has(k))
    }

    fn page(
        &self,
        envelope: Option<&RawObject>,
        records: &[&str],
        _: &ReadOptions,
        _: &WholeSource,
    ) -> FieldResult<Option<String>> {
        let Some(env) = envelope else { return Ok(None) };
        if env.bool("status")? == Some(false) {
            let message = env.str("message")?.unwrap_or_default();
            return Err(FieldError::new("status", format!("the API returned an error: {message}")));
        }
        Ok(count_warning(envelope, "total", records.len(), true))
    }

    fn rows<'a>(&self, rec: &RawObject<'a>, page: &Option<String>, out: &mut Vec<Row<'a>>) -> FieldResult<()> {
        let start = rec.time("created_time")?.ok_or_else(|| FieldError::missing("created_time", ""))?;
        let status = rec.str("status")?;
        let terminated = rec.time("terminated_time")?.filter(|t| *t != 0);
        let end = match status.as_deref() {
            Some("active") => None,
            _ => terminated,
        };
        if status.as_deref() == Some("terminated") && end.is_none() {
            return Err(FieldError::of(
                crate::json::ErrorKind::Missing,
                "terminated_time",
                "a terminated resource needs its terminated_time",
            ));
        }
        if end.is_some_and(|e| e < start) {
            return Err(FieldError::new("terminated_time", "ends before created_time"));
        }
        let minutes = rec.number("total_uptime")?.ok_or_else(|| FieldError::missing("total_uptime", ""))?;
        if minutes < 0.0 {
            return Err(FieldError::new("total_uptime", format!("negative uptime {minutes}")));
        }
        let resource = rec.object("resource")?.unwrap_or_default();
        let mut row = Row::new("uptime", start);
        row.usage_end = end;
        row.record_id = rec.id("id")?;
        row.resource_id = resource.id("id").map_err(|e| e.within("resource"))?;
        row.resource_name = match resource.str("display_name").map_err(|e| e.within("resource"))? {
            Some(d) if !d.is_empty() => Some(d),
            _ => resource.str("name").map_err(|e| e.within("resource"))?,
        };
        row.resource_type = resource.str("type").map_err(|e| e.within("resource"))?;
        row.quantity = Some(minutes / 60.0);
        // An active resource's row is a running total: more uptime is a later version.
        row.revision = Some((minutes * 1000.0).round() as i64);
        row.unit = Some(Cow::Borrowed(HOURS));
        row.cost = rec.decimal("total_fee")?;
        row.unit_price = rec
            .decimal("per_minute_fee")?
            .map(|p| {
                p.checked_mul_int(60).ok_or_else(|| FieldError::new("per_minute_fee", "per-hour price out of range"))
            })
            .transpose()?;
        row.currency = Some(Cow::Borrowed("USD"));
        let mut tags = Tags::new();
        if let Some(s) = status.as_deref().filter(|s| *s != "active" && *s != "terminated") {
            tags.str("_warning", &format!("unknown status {s}"));
        }
        row.status = status;
        tags.rest(rec, MAPPED, "")?;
        if let Some(t) = rec.get("terminated_time").filter(|_| end.is_none() && terminated.is_some()) {
            tags.raw("terminated_time", t)?;
        }
        tags.rest(&resource, RESOURCE_MAPPED, "resource.")?;
        if let Some(w) = page {
            tags.str("_page_warning", w);
        }
        row.tags = tags.finish();
        out.push(row);
        Ok(())
    }
}

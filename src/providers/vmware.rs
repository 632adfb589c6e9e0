//! VMware (Broadcom) Cloud Services `Get Historical Usage Records` (`HistoricalUsageResponse`).
//! The page does not say its aggregation period: it is taken from `period=`, else inferred
//! from the spacing of every `usage_datetime` in the whole source (1 h; a day of 23 to 25 h,
//! as local midnights across a DST change are; a month of 28 to 31 days), else from every
//! source of the call when this one has too few times (a last page saved as its own file),
//! else the API's default, HOURLY. A period ends where the next one in the source starts when that is one
//! period later (a DST day of 23 or 25 h), else one period after its start.
//!
//! With DAILY or MONTHLY aggregation `usage` is the period's average of the hourly values, not
//! a sum, so the quantity is `usage × the period's hours`: the sum of the hourly values, in
//! unit-hours (`GB-Hours`; a duration unit stays `Hours`). An hourly export and a daily export
//! of the same usage then sum to the same total. A content item becomes a `committed` row
//! (usage − overage) plus an `overage` row when overage > 0, so the two sum to `usage`; an
//! item without `commitment` is one `usage` row. `resources[]` is a breakdown of `usage`,
//! kept in tags, never added.

use std::borrow::Cow;

use super::{
    absent, count_warning, duration_to_hours, first_item_is, has_array, Format, FormatInfo, Period, ReadOptions,
    WholeSource,
};
use crate::json::{FieldError, FieldResult, RawObject};
use crate::schema::Tags;
use crate::schema::{charge_type, Row, HOURS};
use crate::time::{MICROS_PER_DAY, MICROS_PER_HOUR};
use chrono::{DateTime, Months};

pub struct Vmware;

static INFO: std::sync::LazyLock<FormatInfo> = std::sync::LazyLock::new(|| {
    FormatInfo::builtin(
        "vmware",
        "VMware Cloud Services historical usage",
        "Get Historical Usage Records (HistoricalUsageResponse)",
        ["VMware", "VMware Cloud Services", "Compute", "Other (Compute)", "Cloud Service Resource"],
        &[
            ("metric", "metadata.metric_id, else metadata.display_name, else \"usage\""),
            ("charge_type", "committed (usage − overage) and overage rows; usage without commitment"),
            ("resource_id", "resources[0].resource_id when the item has exactly one resource"),
            ("usage_start", "content[].usage_datetime"),
            ("usage_end", "the next period's start (given, inferred from the source's spacing, or HOURLY)"),
            ("quantity", "(usage − overage), overage, each × the period's hours (usage is the period's average)"),
            ("unit", "metadata.unit_of_measure_display_name + \"-Hours\" (durations as \"Hours\")"),
            (
                "tags",
                "commitment, usage, resources, period, metadata display_name, service_definition_id, charge_attributes",
            ),
        ],
    )
});

/// Item fields with a column; everything else (usage, commitment, overage, resources) is tagged.
const MAPPED: &[&str] = &["usage_datetime"];
const META_MAPPED: &[&str] = &["metric_id", "unit_of_measure_display_name"];

/// What a page shares with its content items.
pub struct Page {
    metric: String,
    unit: Option<String>,
    /// Multiplier to Hours when the unit is a duration.
    hours_factor: Option<f64>,
    period: Period,
    /// Every distinct record time of the source, sorted: where each period ends.
    times: std::sync::Arc<[i64]>,
    /// Page-level tag entries, as `,"key":value` JSON text.
    tags: String,
}

impl Format for Vmware {
    type Page = Page;

    fn info(&self) -> &FormatInfo {
        &INFO
    }

    fn records_key(&self) -> &str {
        "content"
    }

    /// A page holds `content`; an empty page may omit it (`"empty": true`) and keep its
    /// paging fields.
    fn is_page(&self, obj: &RawObject) -> bool {
        let paged = obj.has("metadata") || obj.has("pageable") || obj.has("total_elements") || obj.has("empty");
        (has_array(obj, "content") && (paged || first_item_is(obj, "content", |r| self.is_record(r))))
            || (absent(obj, "content") && paged && !self.is_record(obj))
    }

    fn is_record(&self, obj: &RawObject) -> bool {
        obj.has("usage_datetime")
    }

    fn page(
        &self,
        envelope: Option<&RawObject>,
        records: &[&str],
        options: &ReadOptions,
        whole: &WholeSource,
    ) -> FieldResult<Page> {
        let meta = match envelope {
            Some(env) => env.object("metadata")?.unwrap_or_default(),
            None => RawObject::default(),
        };
        let metric = match meta.str("metric_id").map_err(|e| e.within("metadata"))? {
            Some(m) if !m.is_empty() => m.into_owned(),
            _ => meta
                .str("display_name")
                .map_err(|e| e.within("metadata"))?
                .filter(|d| !d.is_empty())
                .map_or_else(|| "usage".to_string(), Cow::into_owned),
        };
        let raw_unit = meta.str("unit_of_measure_display_name").map_err(|e| e.within("metadata"))?;
        let hours_factor = raw_unit.as_deref().and_then(|u| duration_to_hours(1.0, u));
        let unit = match (&raw_unit, hours_factor) {
            (_, Some(_)) => Some(HOURS.to_string()),
            (Some(u), None) if !u.trim().is_empty() => Some(format!("{}-Hours", u.trim())),
            _ => None,
        };
        // The times of the whole source when it has any; else (a page read on its own) the page's.
        let mut times = whole.times(times_in);
        if times.is_empty() {
            times = whole_times(records);
        }
        let (period, how) = match options.period {
            Some(p) => (p, "given"),
            None => match infer_period(&times)? {
                Some(p) => (p, "inferred"),
                // Too few times in this source: every source of the call (a last page saved as
                // a file of its own), else the API's default.
                None => match whole.call_times(times_in).map(|t| infer_period(&t)) {
                    Some(Ok(Some(p))) => (p, "inferred_across_sources"),
                    _ => (Period::Hourly, "default"),
                },
            },
        };
        let mut tags = Tags::new();
        tags.str("period", period.name());
        let warning = count_warning(envelope, "number_of_elements", records.len(), false)
            .or_else(|| count_warning(envelope, "total_elements", records.len(), true));
        if let Some(w) = warning {
            tags.str("_page_warning", &w);
        }
        tags.str("period_source", how);
        tags.rest(&meta, META_MAPPED, "metadata.")?;
        if hours_factor.is_some() {
            if let Some(u) = meta.get("unit_of_measure_display_name") {
                tags.raw("metadata.unit_of_measure_display_name", u)?;
            }
        }
        let tags = tags.finish();
        // Keep the entries without the braces so records can append their own.
        let tags = format!(",{}", &tags[1..tags.len() - 1]);
        Ok(Page { metric, unit, hours_factor, period, times, tags })
    }

    fn rows<'a>(&self, rec: &RawObject<'a>, page: &Page, out: &mut Vec<Row<'a>>) -> FieldResult<()> {
        let start = rec.time("usage_datetime")?.ok_or_else(|| FieldError::missing("usage_datetime", ""))?;
        let usage = rec.number("usage")?.ok_or_else(|| FieldError::missing("usage", ""))?;
        let overage = rec.number("overage")?.unwrap_or(0.0);
        let commitment = rec.number("commitment")?;
        if usage < 0.0 {
            return Err(FieldError::new("usage", format!("negative usage {usage}")));
        }
        if overage < 0.0 || overage > usage {
            return Err(FieldError::new("overage", format!("overage {overage} is not within usage {usage}")));
        }
        let end = period_end(start, page.period, &page.times)
            .ok_or_else(|| FieldError::new("usage_datetime", "period end out of range"))?;
        // The period's average × its hours: the sum of its hourly values.
        let hours = (end - start) as f64 / MICROS_PER_HOUR as f64;
        let mut tags = Tags::new();
        tags.rest(rec, MAPPED, "")?;
        let mut tags = tags.finish();
        tags.pop();
        tags.push_str(if tags.len() > 1 { &page.tags } else { &page.tags[1..] });
        tags.push('}');

        let resources = rec.array("resources")?.unwrap_or_default();
        let resource_id = match resources.as_slice() {
            [only] => {
                RawObject::parse(*only, "resources[0]")?.id("resource_id").map_err(|e| e.within("resources[0]"))?
            }
            _ => None,
        };
        let scale = |q: f64| page.hours_factor.map_or(q, |f| q * f) * hours;
        let mut base = Row::new(Cow::Owned(page.metric.clone()), start);
        base.usage_end = Some(end);
        base.unit = page.unit.clone().map(Cow::Owned);
        base.resource_id = resource_id;
        base.tags = tags;
        match commitment {
            None => {
                base.quantity = Some(scale(usage));
                out.push(base);
            }
            Some(_) => {
                let mut committed = base.clone();
                committed.charge_type = charge_type::COMMITTED;
                committed.quantity = Some(scale(usage - overage));
                out.push(committed);
                if overage > 0.0 {
                    base.charge_type = charge_type::OVERAGE;
                    base.quantity = Some(scale(overage));
                    out.push(base);
                }
            }
        }
        Ok(())
    }
}

/// The end of the period that starts at `start` (UTC µs): the next record time of the source
/// when it is one period later, give or take a DST hour (a local day of 23 or 25 h), else
/// one period after `start` (a calendar month in UTC).
fn period_end(start: i64, period: Period, times: &[i64]) -> Option<i64> {
    let next = times.get(times.partition_point(|t| *t <= start)).copied();
    let (lo, hi) = match period {
        Period::Hourly => return start.checked_add(MICROS_PER_HOUR),
        Period::Daily => (MICROS_PER_DAY - MICROS_PER_HOUR, MICROS_PER_DAY + MICROS_PER_HOUR),
        Period::Monthly => (28 * MICROS_PER_DAY - MICROS_PER_HOUR, 31 * MICROS_PER_DAY + MICROS_PER_HOUR),
    };
    if let Some(next) = next.filter(|n| (lo..=hi).contains(&(n - start))) {
        return Some(next);
    }
    match period {
        Period::Daily => start.checked_add(MICROS_PER_DAY),
        _ => DateTime::from_timestamp_micros(start)?.checked_add_months(Months::new(1)).map(|t| t.timestamp_micros()),
    }
}

/// The sorted distinct `usage_datetime`s of some records.
fn whole_times(records: &[&str]) -> std::sync::Arc<[i64]> {
    super::sorted_distinct(
        records.iter().filter_map(|r| RawObject::from_validated(r)?.time("usage_datetime").ok()?).collect(),
    )
}

/// Every `"usage_datetime": "…"` (or an epoch number) in a source's text, found by its key
/// without parsing the rest: only VMware's items have that key.
fn times_in(text: &[u8]) -> Vec<i64> {
    const KEY: &[u8] = b"\"usage_datetime\"";
    let ws = |i: &mut usize| {
        while text.get(*i).is_some_and(|c| matches!(c, b' ' | b'\n' | b'\r' | b'\t')) {
            *i += 1;
        }
    };
    let mut out = Vec::new();
    for at in memchr::memmem::find_iter(text, KEY) {
        let mut i = at + KEY.len();
        ws(&mut i);
        if text.get(i) != Some(&b':') {
            continue;
        }
        i += 1;
        ws(&mut i);
        let rest = text.get(i..).unwrap_or_default();
        let value = if rest.first() == Some(&b'"') {
            memchr::memchr(b'"', &rest[1..]).and_then(|end| std::str::from_utf8(&rest[1..=end]).ok())
        } else {
            let end = rest.iter().position(|c| !(c.is_ascii_digit() || *c == b'.')).unwrap_or(rest.len());
            std::str::from_utf8(&rest[..end]).ok()
        };
        let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else { continue };
        let t = if value.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
            value.parse::<f64>().map_err(|_| "not a number").and_then(crate::time::from_epoch)
        } else {
            crate::time::parse_rfc3339(value)
        };
        if let Ok(t) = t {
            out.push(t);
        }
    }
    out
}

/// Infers the period from the smallest spacing between distinct record times (sorted): 1 h
/// (or whole hours, gaps), a day of 23 to 25 h (or whole days), a month of 28 to 31 days.
fn infer_period(times: &[i64]) -> FieldResult<Option<Period>> {
    let Some(step) = times.windows(2).map(|w| w[1] - w[0]).min() else { return Ok(None) };
    let days = |d: i64| d * MICROS_PER_DAY;
    // A whole number of days, give or take the DST hour.
    let whole_days = |s: i64| {
        let d = (s + MICROS_PER_DAY / 2) / MICROS_PER_DAY;
        d >= 1 && (s - days(d)).abs() <= MICROS_PER_HOUR && (s - days(d)) % MICROS_PER_HOUR == 0
    };
    match step {
        s if (days(28) - MICROS_PER_HOUR..=days(31) + MICROS_PER_HOUR).contains(&s) => Ok(Some(Period::Monthly)),
        s if s < days(1) - MICROS_PER_HOUR && s % MICROS_PER_HOUR == 0 => Ok(Some(Period::Hourly)),
        s if s < days(28) && whole_days(s) => Ok(Some(Period::Daily)),
        s => Err(FieldError::new(
            "content",
            format!("cannot infer the aggregation period from a spacing of {} s between usage_datetime values; pass period=", s / 1_000_000),
        )),
    }
}

//! VMware (Broadcom) Cloud Services `Get Historical Usage Records` (`HistoricalUsageResponse`).
//! The page does not say its aggregation period: it is taken from `period=`, else inferred
//! from the spacing of `usage_datetime` in the page (1 h, 1 d, or a calendar month), else the
//! API's default, HOURLY. A content item becomes a `committed` row (usage − overage) plus an
//! `overage` row when overage > 0, so the two sum to `usage`; an item without `commitment` is
//! one `usage` row. `resources[]` is a breakdown of `usage`, kept in tags, never added.

use std::borrow::Cow;

use super::{count_warning, duration_to_hours, first_item_is, has_array, Format, FormatInfo, Period, ReadOptions};
use crate::json::{FieldError, FieldResult, RawObject, Tags};
use crate::schema::{charge_type, Row, HOURS};
use crate::time::{MICROS_PER_DAY, MICROS_PER_HOUR};
use chrono::{DateTime, Months};

pub struct Vmware;

static INFO: FormatInfo = FormatInfo {
    id: "vmware",
    title: "VMware Cloud Services historical usage",
    api: "Get Historical Usage Records (HistoricalUsageResponse)",
    mapping: &[
        ("metric", "metadata.metric_id, else metadata.display_name, else \"usage\""),
        ("charge_type", "committed (usage − overage) and overage rows; usage without commitment"),
        ("resource_id", "resources[0].resource_id when the item has exactly one resource"),
        ("usage_start", "content[].usage_datetime"),
        ("usage_end", "usage_start + the period (given, inferred from spacing, or HOURLY)"),
        ("quantity", "usage − overage, overage (durations converted to Hours)"),
        ("unit", "metadata.unit_of_measure_display_name (durations as \"Hours\")"),
        (
            "tags",
            "commitment, usage, resources, period, metadata display_name, service_definition_id, charge_attributes",
        ),
    ],
};

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
    /// Page-level tag entries, as `,"key":value` JSON text.
    tags: String,
}

impl Format for Vmware {
    type Page = Page;

    fn info(&self) -> &'static FormatInfo {
        &INFO
    }

    fn records_key(&self) -> &'static str {
        "content"
    }

    fn is_page(&self, obj: &RawObject) -> bool {
        has_array(obj, "content")
            && (obj.has("metadata")
                || obj.has("pageable")
                || obj.has("total_elements")
                || first_item_is(obj, "content", |r| self.is_record(r)))
    }

    fn is_record(&self, obj: &RawObject) -> bool {
        obj.has("usage_datetime")
    }

    fn page(&self, envelope: Option<&RawObject>, records: &[&str], options: &ReadOptions) -> FieldResult<Page> {
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
        let unit = if hours_factor.is_some() { Some(HOURS.to_string()) } else { raw_unit.map(Cow::into_owned) };
        let (period, how) = match options.period {
            Some(p) => (p, "given"),
            None => match infer_period(records)? {
                Some(p) => (p, "inferred"),
                None => (Period::Hourly, "default"),
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
        Ok(Page { metric, unit, hours_factor, period, tags })
    }

    fn rows<'a>(&self, rec: &RawObject<'a>, page: &Page, out: &mut Vec<Row<'a>>) -> FieldResult<()> {
        let start = rec
            .time("usage_datetime")?
            .ok_or_else(|| FieldError::new("usage_datetime", "required field is missing"))?;
        let usage = rec.number("usage")?.ok_or_else(|| FieldError::new("usage", "required field is missing"))?;
        let overage = rec.number("overage")?.unwrap_or(0.0);
        let commitment = rec.number("commitment")?;
        if usage < 0.0 {
            return Err(FieldError::new("usage", format!("negative usage {usage}")));
        }
        if overage < 0.0 || overage > usage {
            return Err(FieldError::new("overage", format!("overage {overage} is not within usage {usage}")));
        }
        let end = period_end(start, page.period)
            .ok_or_else(|| FieldError::new("usage_datetime", "period end out of range"))?;
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
        let scale = |q: f64| page.hours_factor.map_or(q, |f| q * f);
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

/// The end of the period that starts at `start` (UTC µs).
fn period_end(start: i64, period: Period) -> Option<i64> {
    match period {
        Period::Hourly => start.checked_add(MICROS_PER_HOUR),
        Period::Daily => start.checked_add(MICROS_PER_DAY),
        Period::Monthly => {
            DateTime::from_timestamp_micros(start)?.checked_add_months(Months::new(1)).map(|t| t.timestamp_micros())
        }
    }
}

/// Infers the period from the smallest spacing between distinct `usage_datetime`s.
fn infer_period(records: &[&str]) -> FieldResult<Option<Period>> {
    let mut times: Vec<i64> =
        records.iter().filter_map(|r| RawObject::from_validated(r)?.time("usage_datetime").ok()?).collect();
    times.sort_unstable();
    times.dedup();
    let Some(step) = times.windows(2).map(|w| w[1] - w[0]).min() else { return Ok(None) };
    match step {
        MICROS_PER_HOUR => Ok(Some(Period::Hourly)),
        MICROS_PER_DAY => Ok(Some(Period::Daily)),
        s if (28 * MICROS_PER_DAY..=31 * MICROS_PER_DAY).contains(&s) => Ok(Some(Period::Monthly)),
        s if s % MICROS_PER_HOUR == 0 && s < MICROS_PER_DAY => Ok(Some(Period::Hourly)),
        s if s % MICROS_PER_DAY == 0 && s < 28 * MICROS_PER_DAY => Ok(Some(Period::Daily)),
        s => Err(FieldError::new(
            "content",
            format!("cannot infer the aggregation period from a spacing of {} s between usage_datetime values; pass period=", s / 1_000_000),
        )),
    }
}

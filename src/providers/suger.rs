//! Suger `GET /org/:orgId/usageRecordGroup`: one row per dimension of a group's `records`
//! (per `metaInfo.billableRecords` entry when `records` is empty). `metaInfo.originRecords`
//! (the pre-adjustment copy) and the `metronome*` running totals go to tags, never to rows.

use std::borrow::Cow;

use super::{absent, has_array, Format, FormatInfo, ReadOptions, WholeSource};
use crate::json::{FieldError, FieldResult, RawObject};
use crate::schema::Row;
use crate::schema::Tags;

pub struct Suger;

static INFO: std::sync::LazyLock<FormatInfo> = std::sync::LazyLock::new(|| {
    FormatInfo::builtin(
        "suger",
        "Suger marketplace usage record groups",
        "GET /org/:orgId/usageRecordGroup",
        ["Suger", "Suger Marketplace Usage", "Business Applications", "Other (Business Applications)", "entitlement"],
        &[
        ("record_id", "id (one row per dimension, all sharing the group's id)"),
        ("account_id", "organizationID"),
        ("customer_id", "buyerID"),
        ("resource_id", "entitlementID"),
        ("resource_type", "\"entitlement\""),
        ("metric", "the dimension key of records (else metaInfo.billableRecords[].key)"),
        ("usage_start", "metaInfo.timestamp, else creationTime"),
        ("usage_end", "= usage_start (a point-in-time report)"),
        ("quantity", "records[dimension] (else metaInfo.billableRecords[].quantity)"),
        ("status", "status"),
        ("billable", "false for DELETED and INVALID groups"),
        ("tags", "partner, source, lastUpdateTime, metaInfo.* (metronome amounts, originRecords), billable record properties, ..."),
        ],
    )
});

const MAPPED: &[&str] = &["id", "organizationID", "buyerID", "entitlementID", "records", "status", "metaInfo"];
const META_MAPPED: &[&str] = &["timestamp", "billableRecords"];
const STATUSES: &[&str] = &["CREATED", "DELETED", "INVALID", "REPORTED", "REPORT_PENDING", "REPORT_FAILED"];

impl Format for Suger {
    type Page = ();

    fn info(&self) -> &FormatInfo {
        &INFO
    }

    fn records_key(&self) -> &str {
        "usageRecordGroups"
    }

    /// A page holds `usageRecordGroups`; an empty page may omit it and keep `nextOffset`.
    fn is_page(&self, obj: &RawObject) -> bool {
        has_array(obj, "usageRecordGroups")
            || (absent(obj, "usageRecordGroups")
                && (obj.has("usageRecordGroups") || obj.has("nextOffset"))
                && !self.is_record(obj))
    }

    fn is_record(&self, obj: &RawObject) -> bool {
        ["entitlementID", "buyerID", "usageRecordReportID", "metaInfo", "organizationID"].iter().any(|k| obj.has(k))
            || obj.get("records").is_some_and(|r| r.get().starts_with('{'))
    }

    fn page(&self, _: Option<&RawObject>, _: &[&str], _: &ReadOptions, _: &WholeSource) -> FieldResult<()> {
        Ok(())
    }

    fn rows<'a>(&self, rec: &RawObject<'a>, _: &(), out: &mut Vec<Row<'a>>) -> FieldResult<()> {
        let meta = rec.object("metaInfo")?.unwrap_or_default();
        let start = match meta.time("timestamp").map_err(|e| e.within("metaInfo"))? {
            Some(t) => t,
            None => rec
                .time("creationTime")?
                .ok_or_else(|| FieldError::missing("metaInfo.timestamp", " (and so is creationTime)"))?,
        };
        let status = rec.str("status")?;
        let billable = !matches!(status.as_deref(), Some("DELETED") | Some("INVALID"));

        let mut tags = Tags::new();
        tags.rest(rec, MAPPED, "")?;
        tags.rest(&meta, META_MAPPED, "metaInfo.")?;
        if let Some(s) = status.as_deref().filter(|s| !STATUSES.contains(s)) {
            tags.str("_warning", &format!("unknown status {s}"));
        }

        let mut base = Row::new("", start);
        base.usage_end = Some(start);
        base.record_id = rec.id("id")?;
        base.account_id = rec.str("organizationID")?;
        base.customer_id = rec.str("buyerID")?;
        base.resource_id = rec.str("entitlementID")?;
        base.resource_type = Some(Cow::Borrowed("entitlement"));
        base.status = status;
        base.billable = billable;
        base.revision = rec.time("lastUpdateTime")?;

        let dimensions = rec.object("records")?.unwrap_or_default();
        let billable_records = meta.array("billableRecords").map_err(|e| e.within("metaInfo"))?.unwrap_or_default();
        let first = out.len();
        if !dimensions.is_empty() {
            if let Some(b) = meta.get("billableRecords").filter(|_| !billable_records.is_empty()) {
                tags.raw("metaInfo.billableRecords", b)?;
            }
            let tags = tags.finish();
            for (key, _) in dimensions.entries() {
                let quantity = non_negative(dimensions.number(&key), &key).map_err(|e| e.within("records"))?;
                let mut row = base.clone();
                row.metric = key;
                row.quantity = Some(quantity);
                row.tags = tags.clone();
                out.push(row);
            }
        } else {
            for (i, item) in billable_records.iter().enumerate() {
                let at = format!("metaInfo.billableRecords[{i}]");
                let item = RawObject::parse(*item, "").map_err(|e| e.within(&at))?;
                let key = item.str("key").map_err(|e| e.within(&at))?;
                let key = key.filter(|k| !k.is_empty()).ok_or_else(|| FieldError::missing("key", "").within(&at))?;
                let quantity = non_negative(item.number("quantity"), "quantity").map_err(|e| e.within(&at))?;
                let mut row = base.clone();
                row.metric = key;
                row.quantity = Some(quantity);
                let mut t = tags.clone();
                if let Some(p) = item.get("properties") {
                    t.raw("billableRecord.properties", p)?;
                }
                row.tags = t.finish();
                out.push(row);
            }
        }
        if out.len() == first {
            return Err(FieldError::new(
                "records",
                "the group has no quantities in records or metaInfo.billableRecords",
            ));
        }
        Ok(())
    }
}

/// A quantity that must be present and not negative.
fn non_negative(q: FieldResult<Option<f64>>, key: &str) -> FieldResult<f64> {
    match q? {
        None => Err(FieldError::of(crate::json::ErrorKind::Missing, key, "quantity is missing")),
        Some(v) if v < 0.0 => Err(FieldError::new(key, format!("negative quantity {v}"))),
        Some(v) => Ok(v),
    }
}

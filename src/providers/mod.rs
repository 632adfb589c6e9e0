//! The provider formats: one file per provider, each implementing `Format`, registered once in
//! `REGISTRY`. The driver (`crate::normalize`) knows nothing provider-specific: it asks the
//! registry which format a document is, where its records are, and how a record becomes rows.

use crate::json::{FieldResult, Raw, RawObject};
use crate::schema::Row;

pub mod consumption_log;
pub mod exabits;
pub mod gitpod;
pub mod suger;
pub mod vmware;

/// Options a format may need while reading a page.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// VMware's aggregation period when the caller states it (`period=`).
    pub period: Option<Period>,
}

impl ReadOptions {
    /// Options with VMware's period given by name (`HOURLY`, `DAILY`, `MONTHLY`), if any.
    pub fn with_period(period: Option<&str>) -> crate::Result<ReadOptions> {
        let period = period
            .map(|p| {
                Period::parse(p).ok_or_else(|| {
                    crate::Error::InvalidArgument(format!("period must be HOURLY, DAILY or MONTHLY, not {p:?}"))
                })
            })
            .transpose()?;
        Ok(ReadOptions { period })
    }
}

/// An aggregation period of a provider's pre-aggregated records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Hourly,
    Daily,
    Monthly,
}

impl Period {
    /// A period by its name (`HOURLY`, `DAILY`, `MONTHLY`, or `HOUR`, `DAY`, `MONTH`, any case),
    /// or as a bucket size of one of them (`1h`, `1d`, `1mo`, read by `time::Every`).
    pub fn parse(s: &str) -> Option<Period> {
        use crate::time::{Every, MICROS_PER_HOUR};
        match s.to_ascii_uppercase().as_str() {
            "HOURLY" | "HOUR" => Some(Period::Hourly),
            "DAILY" | "DAY" => Some(Period::Daily),
            "MONTHLY" | "MONTH" => Some(Period::Monthly),
            _ => match Every::parse(&s.to_ascii_lowercase()).ok()? {
                Every::SubDay(MICROS_PER_HOUR) => Some(Period::Hourly),
                Every::Days(1) => Some(Period::Daily),
                Every::Months(1) => Some(Period::Monthly),
                _ => None,
            },
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Period::Hourly => "HOURLY",
            Period::Daily => "DAILY",
            Period::Monthly => "MONTHLY",
        }
    }
}

/// The whole text of the source a page comes from (of the NDJSON block, for a file read in
/// blocks), for what a format learns from every record of it rather than from one page:
/// VMware infers its aggregation period from the spacing of all the source's record times, so
/// that a last page of one item, or a page of a DST day, is read like the rest. Computed once
/// per source, on first use, by the format that needs it.
pub struct WholeSource<'d> {
    text: &'d [u8],
    times: std::sync::OnceLock<std::sync::Arc<[i64]>>,
    /// Every source of the call, for a source too short to learn from on its own.
    call: Option<&'d CallTimes<'d>>,
}

/// A scan of a source's text for record times.
pub type ScanTimes = fn(&[u8]) -> Vec<i64>;
/// Runs a scan over the text of every source of a call.
pub type LoadTimes<'a> = dyn Fn(ScanTimes) -> Vec<i64> + Sync + 'a;

/// The record times of every source of one `normalize` call, for a source too short to infer
/// a period from alone: a DAILY export whose last page was saved as a file of one item. The
/// sources are read again for it, lazily, only when a format asks.
pub struct CallTimes<'d> {
    load: &'d LoadTimes<'d>,
    times: std::sync::OnceLock<std::sync::Arc<[i64]>>,
}

impl<'d> CallTimes<'d> {
    /// `load(scan)` runs `scan` over the text of every source of the call.
    pub fn new(load: &'d LoadTimes<'d>) -> CallTimes<'d> {
        CallTimes { load, times: std::sync::OnceLock::new() }
    }
}

pub(crate) fn sorted_distinct(mut t: Vec<i64>) -> std::sync::Arc<[i64]> {
    t.sort_unstable();
    t.dedup();
    t.into()
}

impl<'d> WholeSource<'d> {
    pub const fn new(text: &'d [u8]) -> WholeSource<'d> {
        WholeSource { text, times: std::sync::OnceLock::new(), call: None }
    }

    /// The text of one source of a call (`None`: read on its own).
    pub fn within(text: &'d [u8], call: Option<&'d CallTimes<'d>>) -> WholeSource<'d> {
        WholeSource { text, times: std::sync::OnceLock::new(), call }
    }

    /// The sorted distinct record times `scan` finds in every source of the call (computed
    /// once per call), `None` outside a call.
    pub fn call_times(&self, scan: fn(&[u8]) -> Vec<i64>) -> Option<std::sync::Arc<[i64]>> {
        let call = self.call?;
        Some(call.times.get_or_init(|| sorted_distinct((call.load)(scan))).clone())
    }

    /// The sorted distinct record times `scan` finds in the text (computed once).
    pub fn times(&self, scan: fn(&[u8]) -> Vec<i64>) -> std::sync::Arc<[i64]> {
        self.times.get_or_init(|| sorted_distinct(scan(self.text))).clone()
    }
}

/// A source with no text to learn from (tests, the fuzzer).
pub static NO_SOURCE: WholeSource<'static> = WholeSource::new(b"");

/// How a format maps onto the canonical schema, for `usagenorm.formats()` and the README.
pub struct FormatInfo {
    pub id: &'static str,
    pub title: &'static str,
    /// The API call whose responses this format reads.
    pub api: &'static str,
    /// `(canonical column, where its value comes from)`.
    pub mapping: &'static [(&'static str, &'static str)],
    /// How FOCUS output names the provider and its service.
    pub focus: FocusNames,
}

/// The FOCUS display names of a format's rows: ProviderName (and PublisherName), ServiceName,
/// ServiceCategory (one of FOCUS's allowed values).
pub struct FocusNames {
    pub provider: &'static str,
    pub service: &'static str,
    pub category: &'static str,
}

/// One provider format. `Page` is what the format reads once per page (the envelope's
/// metadata, an inferred period) and then shares with every record of that page.
pub trait Format: Sync {
    type Page: Sync;

    fn info(&self) -> &'static FormatInfo;

    /// The envelope key that holds the records array.
    fn records_key(&self) -> &'static str;

    /// Whether a top-level object is one of this format's response pages.
    fn is_page(&self, obj: &RawObject) -> bool;

    /// Whether an object is one of this format's bare records.
    fn is_record(&self, obj: &RawObject) -> bool;

    /// Reads what a page shares with its records. `envelope` is `None` for bare records;
    /// `records` are the page's records as JSON text (used, e.g., to infer VMware's period).
    /// An error rejects the whole page.
    fn page(
        &self,
        envelope: Option<&RawObject>,
        records: &[&str],
        options: &ReadOptions,
        whole: &WholeSource,
    ) -> FieldResult<Self::Page>;

    /// Turns one record into its canonical rows (at least one).
    fn rows<'a>(&self, record: &RawObject<'a>, page: &Self::Page, out: &mut Vec<Row<'a>>) -> FieldResult<()>;
}

/// The object-safe face of a `Format`, used by the registry and the driver.
pub trait Provider: Sync {
    fn info(&self) -> &'static FormatInfo;
    fn id(&self) -> &'static str {
        self.info().id
    }
    fn records_key(&self) -> &'static str;
    fn is_page(&self, obj: &RawObject) -> bool;
    fn is_record(&self, obj: &RawObject) -> bool;
    /// Reads a page's shared part and hands a record reader to `f`.
    fn with_page<'d>(
        &self,
        envelope: Option<&RawObject<'d>>,
        records: &[&'d str],
        options: &ReadOptions,
        whole: &WholeSource,
        f: &mut dyn FnMut(&(dyn RecordReader + '_)),
    ) -> FieldResult<()>;
}

/// Reads the records of one page (after `Provider::with_page`).
pub trait RecordReader: Sync {
    fn rows<'a>(&self, record: &RawObject<'a>, out: &mut Vec<Row<'a>>) -> FieldResult<()>;
}

struct PageReader<'p, F: Format> {
    format: &'p F,
    page: F::Page,
}

impl<F: Format> RecordReader for PageReader<'_, F> {
    fn rows<'a>(&self, record: &RawObject<'a>, out: &mut Vec<Row<'a>>) -> FieldResult<()> {
        self.format.rows(record, &self.page, out)
    }
}

impl<F: Format> Provider for F {
    fn info(&self) -> &'static FormatInfo {
        Format::info(self)
    }
    fn records_key(&self) -> &'static str {
        Format::records_key(self)
    }
    fn is_page(&self, obj: &RawObject) -> bool {
        Format::is_page(self, obj)
    }
    fn is_record(&self, obj: &RawObject) -> bool {
        Format::is_record(self, obj)
    }
    fn with_page<'d>(
        &self,
        envelope: Option<&RawObject<'d>>,
        records: &[&'d str],
        options: &ReadOptions,
        whole: &WholeSource,
        f: &mut dyn FnMut(&(dyn RecordReader + '_)),
    ) -> FieldResult<()> {
        let page = self.page(envelope, records, options, whole)?;
        f(&PageReader { format: self, page });
        Ok(())
    }
}

/// Every format usagenorm reads. A new format is a new module plus one line here.
pub static REGISTRY: &[&dyn Provider] =
    &[&gitpod::Gitpod, &suger::Suger, &exabits::Exabits, &vmware::Vmware, &consumption_log::ConsumptionLog];

pub fn by_id(id: &str) -> Option<&'static dyn Provider> {
    REGISTRY.iter().copied().find(|p| p.id() == id)
}

pub fn ids() -> Vec<&'static str> {
    REGISTRY.iter().map(|p| p.id()).collect()
}

/// The first element of a raw JSON array, read without reading the rest.
pub fn first_element(raw: Raw) -> Option<Raw> {
    crate::json::scan::first_element(raw.get())
}

/// Whether `obj[key]` is an array whose first element, an object, satisfies `test`.
pub fn first_item_is(obj: &RawObject, key: &str, test: impl Fn(&RawObject) -> bool) -> bool {
    obj.get(key).and_then(first_element).and_then(|first| RawObject::parse(first, "").ok()).is_some_and(|o| test(&o))
}

/// Whether `obj[key]` is absent or null: a page whose list is empty may omit it (proto3 JSON
/// omits every field that has its default value).
pub fn absent(obj: &RawObject, key: &str) -> bool {
    obj.get(key).is_none_or(|v| v.get() == "null")
}

/// Whether `obj[key]` is present and a JSON array.
pub fn has_array(obj: &RawObject, key: &str) -> bool {
    obj.get(key).is_some_and(|v| v.get().starts_with('['))
}

/// A warning when a page's own count (`key` in the envelope) disagrees with the records it
/// holds: `at_least` counts (a total over all pages) may exceed them, exact counts may not.
/// Such pages are read all the same; their records carry the warning in tags.
pub fn count_warning(envelope: Option<&RawObject>, key: &str, held: usize, at_least: bool) -> Option<String> {
    let count = envelope?.number(key).ok()??;
    let disagrees = if at_least { count < held as f64 } else { count != held as f64 };
    disagrees.then(|| format!("the page's {key} is {count} but it holds {held} records"))
}

/// Converts a quantity in a duration unit to hours: `Some((hours, "Hours"))` for durations.
pub fn duration_to_hours(quantity: f64, unit: &str) -> Option<f64> {
    let (hours, per) = crate::time::hours_per(unit)?;
    Some(quantity * (hours as f64 / per as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_element_reads_only_the_first() {
        let raw: &serde_json::value::RawValue = serde_json::from_str(r#"[ {"a":1}, {"b":2} ]"#).unwrap();
        assert_eq!(first_element(raw.into()).unwrap().get(), r#"{"a":1}"#);
        let empty: &serde_json::value::RawValue = serde_json::from_str("[ ]").unwrap();
        assert!(first_element(empty.into()).is_none());
    }

    #[test]
    fn registry_ids_are_unique() {
        let mut ids = ids();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), REGISTRY.len());
    }

    #[test]
    fn periods_parse_by_name_or_as_a_bucket_size() {
        for (text, want) in [
            ("HOURLY", Period::Hourly),
            ("hour", Period::Hourly),
            ("1h", Period::Hourly),
            ("1H", Period::Hourly),
            ("Daily", Period::Daily),
            ("1d", Period::Daily),
            ("MONTHLY", Period::Monthly),
            ("1mo", Period::Monthly),
            ("1MO", Period::Monthly),
        ] {
            assert_eq!(Period::parse(text), Some(want), "{text}");
        }
        for text in ["2h", "1w", "30m", "1y", "weekly", ""] {
            assert_eq!(Period::parse(text), None, "{text}");
        }
    }

    #[test]
    fn durations_convert_to_hours() {
        assert_eq!(duration_to_hours(90.0, "Minute"), Some(1.5));
        assert_eq!(duration_to_hours(2.0, "days"), Some(48.0));
        assert_eq!(duration_to_hours(1.0, "GB"), None);
    }
}

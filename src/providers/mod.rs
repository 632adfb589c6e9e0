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
    /// The columns the call hands on (a scan's projection, without dedupe: the content dedupe
    /// compares is every column). A format leaves the `tags` column `{}` when they do not
    /// include it; the batch stores the others left out as nulls where they may be null.
    pub kept: crate::schema::Kept,
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
        Ok(ReadOptions { period, kept: crate::schema::Kept::ALL })
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
#[derive(Debug, Clone)]
pub struct FormatInfo {
    /// The format's id: the `provider` column's value (interned, so rows can share it).
    pub id: &'static str,
    pub title: String,
    /// The API call whose responses this format reads.
    pub api: String,
    /// `(canonical column, where its value comes from)`.
    pub mapping: Vec<(String, String)>,
    /// How FOCUS output names the provider and its service.
    pub focus: FocusNames,
    /// Where the format is defined: `built-in` (Rust), or the file or package of a format file.
    pub origin: String,
}

impl FormatInfo {
    /// A built-in format's description.
    /// `focus`: ProviderName, ServiceName, ServiceCategory, ServiceSubcategory, and the
    /// ResourceType of rows that name a resource but no type.
    pub fn builtin(id: &str, title: &str, api: &str, focus: [&str; 5], mapping: &[(&str, &str)]) -> FormatInfo {
        FormatInfo {
            id: intern(id),
            title: title.to_string(),
            api: api.to_string(),
            mapping: mapping.iter().map(|(c, f)| (c.to_string(), f.to_string())).collect(),
            focus: FocusNames {
                provider: focus[0].to_string(),
                service: focus[1].to_string(),
                category: focus[2].to_string(),
                subcategory: focus[3].to_string(),
                resource_type: focus[4].to_string(),
            },
            origin: "built-in".to_string(),
        }
    }
}

/// The FOCUS display names of a format's rows: ProviderName (and PublisherName), ServiceName,
/// ServiceCategory and ServiceSubcategory (one of FOCUS's allowed pairs, [`focus_subcategories`]),
/// and the ResourceType of a row that names a resource but no type (FOCUS wants one there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FocusNames {
    pub provider: String,
    pub service: String,
    pub category: String,
    pub subcategory: String,
    pub resource_type: String,
}

/// FOCUS 1.2's ServiceCategory values, each with its allowed ServiceSubcategory values.
pub const FOCUS_CATEGORIES: &[(&str, &[&str])] = &[
    (
        "AI and Machine Learning",
        &[
            "AI Platforms",
            "Bots",
            "Generative AI",
            "Machine Learning",
            "Natural Language Processing",
            "Other (AI and Machine Learning)",
        ],
    ),
    (
        "Analytics",
        &[
            "Analytics Platforms",
            "Business Intelligence",
            "Data Processing",
            "Search",
            "Streaming Analytics",
            "Other (Analytics)",
        ],
    ),
    ("Business Applications", &["Productivity and Collaboration", "Other (Business Applications)"]),
    (
        "Compute",
        &[
            "Containers",
            "End User Computing",
            "Quantum Compute",
            "Serverless Compute",
            "Virtual Machines",
            "Other (Compute)",
        ],
    ),
    (
        "Databases",
        &[
            "Caching",
            "Data Warehouses",
            "Ledger Databases",
            "NoSQL Databases",
            "Relational Databases",
            "Time Series Databases",
            "Other (Databases)",
        ],
    ),
    (
        "Developer Tools",
        &[
            "Developer Platforms",
            "Continuous Integration and Deployment",
            "Development Environments",
            "Source Code Management",
            "Quality Assurance",
            "Other (Developer Tools)",
        ],
    ),
    ("Identity", &["Identity and Access Management", "Other (Identity)"]),
    ("Integration", &["API Management", "Messaging", "Workflow Orchestration", "Other (Integration)"]),
    ("Internet of Things", &["IoT Analytics", "IoT Platforms", "Other (Internet of Things)"]),
    (
        "Management and Governance",
        &[
            "Architecture",
            "Compliance",
            "Cost Management",
            "Data Governance",
            "Disaster Recovery",
            "Endpoint Management",
            "Observability",
            "Support",
            "Other (Management and Governance)",
        ],
    ),
    ("Media", &["Content Creation", "Gaming", "Media Streaming", "Mixed Reality", "Other (Media)"]),
    ("Migration", &["Data Migration", "Resource Migration", "Other (Migration)"]),
    ("Mobile", &["Other (Mobile)"]),
    ("Multicloud", &["Multicloud Integration", "Other (Multicloud)"]),
    (
        "Networking",
        &[
            "Application Networking",
            "Content Delivery",
            "Network Connectivity",
            "Network Infrastructure",
            "Network Routing",
            "Network Security",
            "Other (Networking)",
        ],
    ),
    (
        "Security",
        &["Secret Management", "Security Posture Management", "Threat Detection and Response", "Other (Security)"],
    ),
    (
        "Storage",
        &["Backup Storage", "Block Storage", "File Storage", "Object Storage", "Storage Platforms", "Other (Storage)"],
    ),
    ("Web", &["Application Platforms", "Other (Web)"]),
    ("Other", &["Other (Other)"]),
];

/// The allowed FOCUS subcategories of a ServiceCategory (`None`: not a FOCUS category).
pub fn focus_subcategories(category: &str) -> Option<&'static [&'static str]> {
    FOCUS_CATEGORIES.iter().find(|(c, _)| *c == category).map(|(_, s)| *s)
}

/// The one `&'static str` of each distinct text a format names (its id, a format file's
/// constants), so that rows, rejections and statistics can hold it without a copy per row.
/// Such texts are few (what the formats compiled in the process say); each distinct one is kept
/// once, for the life of the process: compiling the same file again adds nothing.
pub fn intern(text: &str) -> &'static str {
    static TEXTS: std::sync::Mutex<Option<std::collections::HashSet<&'static str>>> = std::sync::Mutex::new(None);
    let mut texts = TEXTS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let texts = texts.get_or_insert_with(Default::default);
    if let Some(known) = texts.get(text) {
        return known;
    }
    let leaked: &'static str = Box::leak(text.to_string().into_boxed_str());
    texts.insert(leaked);
    leaked
}

/// A format written in Rust: `Page` is what it reads once per page (the envelope's metadata,
/// an inferred period) and then shares with every record of that page. Every `Format` is a
/// `FormatReader`, the object-safe face the registry holds.
pub trait Format: Send + Sync {
    type Page: Sync;

    fn info(&self) -> &FormatInfo;

    /// The envelope key that holds the records array.
    fn records_key(&self) -> &str;

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

/// A format as the registry and the driver see it: detection, where the records are, and a
/// reader of one page's records. Rust formats get it from `Format`; format files
/// (`crate::spec`) implement it directly.
pub trait FormatReader: Send + Sync {
    fn info(&self) -> &FormatInfo;
    fn id(&self) -> &'static str {
        self.info().id
    }
    /// The envelope key that holds the records array.
    fn records_key(&self) -> &str;
    fn is_page(&self, obj: &RawObject) -> bool;
    fn is_record(&self, obj: &RawObject) -> bool;
    /// The records of a page: the array at `records_key` unless the format nests them deeper.
    fn page_records<'d>(&self, page: &RawObject<'d>) -> FieldResult<PageRecords<'d>> {
        Ok(PageRecords::Array(page.array(self.records_key())?.unwrap_or_default()))
    }
    /// Small documents this format detects, `(is a page, JSON text)`, to find formats whose
    /// detection overlaps when one is registered. Rust formats give none.
    fn probes(&self) -> Vec<(bool, String)> {
        Vec::new()
    }
    /// Reads a page's shared part (`envelope` is `None` for bare records) and returns the reader
    /// of its records. An error rejects the whole page.
    /// `nested` is where the records sit when `page_records` found them nested deeper.
    fn open_page<'s>(
        &'s self,
        envelope: Option<&RawObject>,
        records: &[&str],
        nested: Option<&Nested>,
        options: &ReadOptions,
        whole: &WholeSource,
    ) -> FieldResult<Box<dyn RecordReader + 's>>;
}

/// The records of one page.
pub enum PageRecords<'d> {
    /// The elements of the array at the format's `records_key`.
    Array(Vec<Raw<'d>>),
    /// Records nested deeper (OpenAI's `data[].results[]`), with where each sits.
    Nested(Vec<Raw<'d>>, Nested<'d>),
}

/// Records found in the elements of an outer array (OpenAI's `data[].results[]`): the outer
/// elements, parsed once (their `$parent` values are read from them), and each record's place.
/// A record's path is only written when it is rejected.
pub struct Nested<'d> {
    /// The outer array's elements, in order.
    pub parents: Vec<RawObject<'d>>,
    /// Per record: the index of its parent in `parents`, and its own in the parent's array.
    pub places: Vec<(u32, u32)>,
    /// The outer and the inner array's paths (`data`, `results`).
    pub outer: String,
    pub inner: String,
}

impl Nested<'_> {
    /// Record `k`'s path in the page (`data[0].results[3]`).
    pub fn path(&self, k: usize) -> Option<String> {
        let (i, j) = self.places.get(k)?;
        Some(format!("{}[{i}].{}[{j}]", self.outer, self.inner))
    }
}

/// Reads the records of one page (from `FormatReader::open_page`).
pub trait RecordReader: Sync {
    /// Turns one record into its canonical rows (none for a record with nothing to report);
    /// `index` is its position among the page's records (0 for a bare record).
    fn rows<'a>(&self, record: &RawObject<'a>, index: usize, out: &mut Vec<Row<'a>>) -> FieldResult<()>;
}

struct PageReader<'p, F: Format> {
    format: &'p F,
    page: F::Page,
}

impl<F: Format> RecordReader for PageReader<'_, F> {
    fn rows<'a>(&self, record: &RawObject<'a>, _: usize, out: &mut Vec<Row<'a>>) -> FieldResult<()> {
        self.format.rows(record, &self.page, out)
    }
}

impl<F: Format> FormatReader for F {
    fn info(&self) -> &FormatInfo {
        Format::info(self)
    }
    fn records_key(&self) -> &str {
        Format::records_key(self)
    }
    fn is_page(&self, obj: &RawObject) -> bool {
        Format::is_page(self, obj)
    }
    fn is_record(&self, obj: &RawObject) -> bool {
        Format::is_record(self, obj)
    }
    fn open_page<'s>(
        &'s self,
        envelope: Option<&RawObject>,
        records: &[&str],
        _: Option<&Nested>,
        options: &ReadOptions,
        whole: &WholeSource,
    ) -> FieldResult<Box<dyn RecordReader + 's>> {
        let page = self.page(envelope, records, options, whole)?;
        Ok(Box::new(PageReader { format: self, page }))
    }
}

/// The formats one call reads: the built-in ones, then any added at run time (format files).
/// Cheap to clone; carried in `NormalizeOptions`.
#[derive(Clone)]
pub struct Registry {
    formats: Vec<std::sync::Arc<dyn FormatReader>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.ids()).finish()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry::builtin()
    }
}

impl Registry {
    /// The formats built into usagenorm: the Rust ones (a new one is a module plus one line
    /// here), then the format files shipped with it (`crate::spec::SHIPPED`).
    pub fn builtin() -> Registry {
        static BUILTIN: std::sync::LazyLock<Registry> = std::sync::LazyLock::new(|| {
            let rust: Vec<std::sync::Arc<dyn FormatReader>> = vec![
                std::sync::Arc::new(gitpod::Gitpod),
                std::sync::Arc::new(suger::Suger),
                std::sync::Arc::new(exabits::Exabits),
                std::sync::Arc::new(vmware::Vmware),
                std::sync::Arc::new(consumption_log::ConsumptionLog),
            ];
            let mut registry = Registry { formats: rust };
            for (name, text) in crate::spec::SHIPPED {
                // The shipped files are part of the build: `spec::tests` compiles and registers
                // every one, so neither step can fail at run time.
                let format = crate::spec::shipped(name, text).expect("a shipped format file compiles");
                registry = registry.with(std::sync::Arc::new(format)).expect("shipped formats do not overlap");
            }
            registry
        });
        BUILTIN.clone()
    }

    /// This registry with the format of the same id replaced by `format` (in its place).
    pub fn replaced(&self, format: std::sync::Arc<dyn FormatReader>) -> crate::Result<Registry> {
        let at = self
            .formats
            .iter()
            .position(|f| f.id() == format.id())
            .ok_or_else(|| crate::Error::InvalidArgument(format!("no format {:?} to replace", format.id())))?;
        let mut formats = self.formats.clone();
        formats[at] = format;
        Ok(Registry { formats })
    }

    /// This registry and `format` after it. An id already taken is refused, and so is a format
    /// whose detection overlaps another's: a page or record of one that the other also takes.
    pub fn with(&self, format: std::sync::Arc<dyn FormatReader>) -> crate::Result<Registry> {
        if let Some(taken) = self.get(format.id()) {
            return Err(crate::Error::InvalidArgument(format!(
                "a format with id {:?} is already registered ({})",
                format.id(),
                taken.info().origin
            )));
        }
        for other in self.iter() {
            overlap(&*format, other).or_else(|| overlap(other, &*format)).map_or(Ok(()), Err)?;
        }
        let mut formats = self.formats.clone();
        formats.push(format);
        Ok(Registry { formats })
    }

    pub fn iter(&self) -> impl Iterator<Item = &dyn FormatReader> + '_ {
        self.formats.iter().map(|f| &**f)
    }

    pub fn get(&self, id: &str) -> Option<&dyn FormatReader> {
        self.iter().find(|f| f.id() == id)
    }

    pub fn ids(&self) -> Vec<&'static str> {
        self.iter().map(|f| f.id()).collect()
    }

    pub fn len(&self) -> usize {
        self.formats.len()
    }

    pub fn is_empty(&self) -> bool {
        self.formats.is_empty()
    }
}

/// An error when a probe of `a` (a page or a record it detects) is also taken by `b`.
fn overlap(a: &dyn FormatReader, b: &dyn FormatReader) -> Option<crate::Error> {
    a.probes().into_iter().find_map(|(page, text)| {
        let obj = RawObject::from_validated(&text)?;
        let taken = if page { b.is_page(&obj) } else { b.is_record(&obj) && !b.is_page(&obj) };
        taken.then(|| {
            crate::Error::InvalidArgument(format!(
                "format {:?} ({}) overlaps format {:?} ({}): {} {text} of the first is also detected as the second's; \
                 make its detection stricter",
                a.id(),
                a.info().origin,
                b.id(),
                b.info().origin,
                if page { "the page" } else { "the record" },
            ))
        })
    })
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
        let registry = Registry::builtin();
        let mut ids = registry.ids();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), registry.len());
        let again = registry.with(std::sync::Arc::new(gitpod::Gitpod)).unwrap_err().to_string();
        assert!(again.contains("\"gitpod\" is already registered (built-in)"), "{again}");
    }

    #[test]
    fn ids_are_interned_once() {
        let a = intern(&String::from("acme"));
        let b = intern(&String::from("acme"));
        assert!(std::ptr::eq(a, b));
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
